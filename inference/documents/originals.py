"""The original's bytes opened within bounds, for reading (``pdf``, ``images``) and for showing (``page_image``):
a PDF by PDFium, an image by Pillow with its size read from the header before a pixel is decoded (a 30,000 ×
30,000 PNG of a few KB would take 2.7 GB), a frame with a phone photo's EXIF orientation applied. Runs only in the
bounded reader process; nothing here loads the OCR.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import pypdfium2 as pdfium
from PIL import Image, ImageOps, UnidentifiedImageError

from inference import limits
from inference.errors import InputError

Image.MAX_IMAGE_PIXELS = limits.IMAGE_PIXELS


def open_pdf(data: bytes, name: str) -> Any:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise InputError(f"PDF 已加密，需要密码，无法读取；请导出未加密的 PDF / encrypted PDF: {name}") from None
        raise InputError(f"PDF 文件已损坏，无法读取 / corrupt PDF: {name}") from None


def open_image(data: bytes, name: str) -> Image.Image:
    """The image, its header read and its size checked; no pixel decoded yet."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            getattr(image, "n_frames", 1)
            return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"图片像素过多（上限 {limits.IMAGE_PIXELS // 1_000_000} 百万像素），已拒绝 / the image has more "
                         f"than {limits.IMAGE_PIXELS // 1_000_000} megapixels: {name}") from None
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError):
        raise InputError(_corrupt(name)) from None


def frame(image: Image.Image, index: int, name: str) -> Image.Image:
    """Frame ``index`` (0-based) of a multi-page image, decoded within the pixel bound, upright by its EXIF."""
    try:
        image.seek(index)
        if image.width * image.height > limits.IMAGE_PIXELS:
            raise Image.DecompressionBombError(name)
        return ImageOps.exif_transpose(image.copy())
    except Image.DecompressionBombError:
        raise InputError(f"图片第 {index + 1} 页像素过多，已拒绝 / page {index + 1} has too many pixels: {name}") from None
    except (OSError, ValueError, EOFError, SyntaxError):
        raise InputError(_corrupt(name)) from None


def page_count(count: int, max_pages: int, name: str) -> int:
    """The pages a file has, refused when none or more than the page limit."""
    if count < 1:
        raise InputError(f"文件没有任何页面 / the file has no pages: {name}")
    if count > max_pages:
        raise InputError(f"文件共 {count} 页，超过页数上限 {max_pages} 页（设置中的“页数上限”）/ {count} pages, more than "
                         f"the page limit {max_pages} (max_record_pages): {name}")
    return count


def _corrupt(name: str) -> str:
    return f"图片文件已损坏或无法识别 / corrupt or unreadable image: {name}"
