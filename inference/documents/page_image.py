"""One page of the original as an image, for the window's 原件 view: a PDF page rendered by PDFium, a scan's or
photo's frame as taken (EXIF orientation applied, as the OCR read it). Runs in the bounded reader process; the
image is at most ``_LONG_SIDE`` pixels on its long side and comes back as PNG with the factor that maps the
page's units (PDF points, image pixels: those of ``SourceLine.box``) to its pixels.
"""

from __future__ import annotations

import io

import pypdfium2 as pdfium
from PIL import ImageOps

from inference.documents.images import open_image
from inference.documents.sandbox import Report
from inference.errors import InputError

_LONG_SIDE = 1800


def render_page(data: bytes, name: str, page: int, report: Report) -> tuple[bytes, float]:
    if data.startswith(b"%PDF-"):
        try:
            pdf = pdfium.PdfDocument(data)
            if not 1 <= page <= len(pdf):
                raise InputError(f"原件没有第 {page} 页 / the file has no page {page}: {name}")
            width, height = pdf[page - 1].get_size()
            scale = _LONG_SIDE / max(width, height, 1.0)
            image = pdf[page - 1].render(scale=scale).to_pil()
        except pdfium.PdfiumError:
            raise InputError(f"PDF 文件已损坏，无法显示原件 / corrupt PDF: {name}") from None
    else:
        source = open_image(data, name)
        if not 1 <= page <= getattr(source, "n_frames", 1):
            raise InputError(f"原件没有第 {page} 页 / the file has no page {page}: {name}")
        source.seek(page - 1)
        frame = ImageOps.exif_transpose(source.copy())
        scale = min(1.0, _LONG_SIDE / max(frame.width, frame.height, 1))
        image = frame.resize((max(1, round(frame.width * scale)), max(1, round(frame.height * scale))))
    out = io.BytesIO()
    image.convert("RGB").save(out, "PNG")
    return out.getvalue(), scale

