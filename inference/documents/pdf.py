"""The pages of a PDF: its text layer where it has a readable one (PDFium through pypdfium2), OCR where it has
none (a scan) or where its fonts extract as garbage (no ToUnicode map: (cid:…), private-use characters).
Runs only in the bounded reader process (``documents.sandbox`` imports it there: the app itself never loads
PDFium); a page limit is checked before any page is read.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pypdfium2.raw as pdfium_c

from inference import limits
from inference.documents.originals import open_pdf, page_count
from inference.documents.pages import Line, Page, check_length, group_lines
from inference.documents.sandbox import Report

_MIN_TEXT_CHARS = 10  # fewer characters on a page with an image: a scan (a scanner's "Page 1" stamp aside)
_MAX_GARBAGE_SHARE = 0.05


def read_pdf(data: bytes, name: str, max_pages: int, report: Report) -> list[Page]:
    pdf = open_pdf(data, name)
    count = page_count(len(pdf), max_pages, name)
    pages = []
    for index in range(count):
        report(index + 1, count, "读取")
        page = pdf[index]
        lines = _text_lines(page)
        if _needs_ocr(page, lines):
            report(index + 1, count, "文字识别")
            pages.append(Page(index + 1, tuple(_ocr_lines(page)), ocr=True, file_name=name))
        else:
            pages.append(Page(index + 1, tuple(lines), file_name=name))
        check_length(pages, name)
    return pages


def _text_lines(page: Any) -> list[Line]:
    """The text layer's runs grouped into lines top to bottom, left to right, boxes from the page's top-left."""
    textpage = page.get_textpage()
    height = page.get_height()
    runs = []
    for index in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(index)
        text = textpage.get_text_bounded(left, bottom, right, top).replace("\r", " ").replace("\n", " ").strip()
        text = text.replace("\x02", "-")  # PDFium gives a hyphen that ends a line as 0x02 (a soft hyphen)
        if text:
            runs.append(((left, height - top, right, height - bottom), text, None))
    return group_lines(runs)


def _needs_ocr(page: Any, lines: list[Line]) -> bool:
    text = "".join(line.text for line in lines)
    if "(cid:" in text or _garbage_share(text) > _MAX_GARBAGE_SHARE:
        return True
    if len(text.strip()) >= _MIN_TEXT_CHARS:
        return False
    return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2))


def _garbage_share(text: str) -> float:
    """Characters no record holds: replacement marks, private-use glyph codes, controls."""
    if not text:
        return 0.0
    bad = sum(1 for char in text if char == "\ufffd" or unicodedata.category(char) in ("Co", "Cc", "Cn"))
    return bad / len(text)


def _ocr_lines(page: Any) -> list[Line]:
    from inference.documents.ocr import read_image  # start-up time: onnxruntime loads for a scanned page only

    width, height = page.get_size()
    scale = min(limits.PDF_RENDER_DPI / 72, (limits.OCR_PIXELS / max(1.0, width * height)) ** 0.5)
    image = page.render(scale=scale).to_pil()
    # boxes back in the page's points, as the text layer's are
    return [Line(line.text, tuple(v / scale for v in line.box), line.confidence)  # type: ignore[arg-type]
            for line in read_image(image)]
