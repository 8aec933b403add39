"""One page of the original as an image, for the window's 原件 view: a PDF page rendered by PDFium, a scan's or
photo's frame as taken (EXIF orientation applied, as the OCR read it). Runs in the bounded reader process, without
loading the OCR; the image is at most ``_LONG_SIDE`` pixels on its long side and comes back as PNG with the factor
that maps the page's units (PDF points, image pixels: those of ``SourceLine.box``) to its pixels.
"""

from __future__ import annotations

import io

from inference.documents.originals import frame, open_image, open_pdf
from inference.documents.sandbox import Report
from inference.errors import InputError

_LONG_SIDE = 1800


def render_page(data: bytes, name: str, page: int, report: Report) -> tuple[bytes, float]:
    no_page = f"原件没有第 {page} 页 / the file has no page {page}: {name}"
    if data.startswith(b"%PDF-"):
        pdf = open_pdf(data, name)
        if not 1 <= page <= len(pdf):
            raise InputError(no_page)
        width, height = pdf[page - 1].get_size()
        scale = _LONG_SIDE / max(width, height, 1.0)
        image = pdf[page - 1].render(scale=scale).to_pil()
    else:
        source = open_image(data, name)
        if not 1 <= page <= getattr(source, "n_frames", 1):
            raise InputError(no_page)
        taken = frame(source, page - 1, name)
        scale = min(1.0, _LONG_SIDE / max(taken.width, taken.height, 1))
        image = taken.resize((max(1, round(taken.width * scale)), max(1, round(taken.height * scale))))
    out = io.BytesIO()
    image.convert("RGB").save(out, "PNG")
    return out.getvalue(), scale

