"""The pages of a scan or a photo (PNG, JPEG, TIFF with one page a frame, BMP, WebP, GIF) by OCR, opened within
bounds by ``originals``. Runs only in the bounded reader process (``documents.sandbox``).
"""

from __future__ import annotations

from inference.documents.ocr import read_image
from inference.documents.originals import frame, open_image, page_count
from inference.documents.pages import Page, check_length
from inference.documents.sandbox import Report


def read_scan(data: bytes, name: str, max_pages: int, report: Report) -> list[Page]:
    image = open_image(data, name)
    frames = page_count(getattr(image, "n_frames", 1), max_pages, name)
    pages = []
    for index in range(frames):
        report(index + 1, frames, "文字识别")
        pages.append(Page(index + 1, tuple(read_image(frame(image, index, name))), ocr=True, file_name=name))
        check_length(pages, name)
    return pages
