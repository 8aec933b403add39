"""The pages of a scan or a photo (PNG, JPEG, TIFF with one page a frame, BMP, WebP, GIF) by OCR. Runs only in the
bounded reader process (``documents.sandbox``). The image's size is read from its header and refused above
``limits.IMAGE_PIXELS`` before a pixel is decoded (a 30,000 × 30,000 PNG of a few KB would take 2.7 GB); a
phone photo's EXIF orientation is applied, so a portrait photo is read upright.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from inference import limits
from inference.documents.ocr import read_image
from inference.documents.pages import Page, check_length
from inference.documents.pdf import check_page_count
from inference.documents.sandbox import Report
from inference.errors import InputError

Image.MAX_IMAGE_PIXELS = limits.IMAGE_PIXELS


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


def _corrupt(name: str) -> str:
    return f"图片文件已损坏或无法识别 / corrupt or unreadable image: {name}"


def read_scan(data: bytes, name: str, max_pages: int, report: Report) -> list[Page]:
    image = open_image(data, name)
    frames = getattr(image, "n_frames", 1)
    if frames < 1:
        raise InputError(f"图片文件没有任何页面 / the image has no pages: {name}")
    check_page_count(frames, max_pages, name)
    pages = []
    for index in range(frames):
        report(index + 1, frames, "文字识别")
        try:
            image.seek(index)
            if image.width * image.height > limits.IMAGE_PIXELS:
                raise Image.DecompressionBombError(name)
            frame = ImageOps.exif_transpose(image.copy())
        except Image.DecompressionBombError:
            raise InputError(f"图片第 {index + 1} 页像素过多，已拒绝 / page {index + 1} has too many pixels: {name}") from None
        except (OSError, ValueError, EOFError, SyntaxError):
            raise InputError(_corrupt(name)) from None
        pages.append(Page(index + 1, tuple(read_image(frame)), ocr=True, file_name=name))
        check_length(pages, name)
    return pages
