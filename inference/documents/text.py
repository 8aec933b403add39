"""Bytes of a user-given file, read within a bound, and text records decoded: UTF-8 (with or without BOM),
UTF-16 with its BOM, or GB18030/GBK.

Hospital EMR exports are often GBK. GB18030 decodes almost any byte string, so after decoding the text must
also *look* like text (mostly CJK, ASCII and punctuation) or it is refused.
"""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path

from inference.errors import InputError

_MIN_TEXT_LIKE_RATIO = 0.95


def check_regular_file(path: Path) -> None:
    """A file that exists and is a regular file: not a folder, a device (/dev/zero), a pipe or a name the
    system refuses (too long, a NUL byte)."""
    try:
        exists, regular = path.exists(), path.is_file()
    except (OSError, ValueError) as exc:
        raise InputError(f"无法读取文件 / cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not exists:
        raise InputError(f"文件不存在 / file not found: {path}")
    if not regular:
        raise InputError(f"不是文件 / not a file: {path}")


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a user-given file, refused with a reason when it is too large or cannot be read (a file
    that grows while it is read is refused too: at most ``limit`` bytes are ever read)."""
    too_large = f"{what}文件过大（上限 {limit // 1024} KB）/ file too large: {path.name}"
    try:
        if path.stat().st_size > limit:
            raise InputError(too_large)
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except PermissionError:
        raise InputError(f"没有读取该文件的权限 / permission denied: {path}") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"无法读取文件 / cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(data) > limit:
        raise InputError(too_large)
    return data


def decode_text(data: bytes, name: str) -> tuple[str, str]:
    if not data.strip():
        raise InputError(f"文件为空 / the file is empty: {name}")
    try:
        if data.startswith(codecs.BOM_UTF8):
            return _checked(data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict"), name), "utf-8-sig"
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return _checked(data.decode("utf-16"), name), "utf-16"
    except UnicodeDecodeError:  # a BOM, then bytes that are not that encoding (an odd length, a lone surrogate)
        raise InputError(f"文件开头标明的编码与内容不符，无法解码 / the file's byte-order mark does not match its "
                         f"content: {name}") from None
    if b"\x00" in data:
        raise InputError(f"这是二进制文件，不是文本病历 / binary file, not a text record: {name}")
    for encoding in ("utf-8", "gb18030"):
        try:
            text = data.decode(encoding, errors="strict")
        except UnicodeDecodeError:
            continue
        if _text_like_ratio(text) >= _MIN_TEXT_LIKE_RATIO:
            return text, encoding
    raise InputError(f"无法识别文件编码（支持 UTF-8、GBK/GB18030）/ unknown text encoding: {name}")


def _checked(text: str, name: str) -> str:
    if _text_like_ratio(text) < _MIN_TEXT_LIKE_RATIO:
        raise InputError(f"这是二进制文件，不是文本病历 / binary file, not a text record: {name}")
    return text


def _text_like_ratio(text: str) -> float:
    if not text:
        return 0.0
    good = 0
    for char in text:
        category = unicodedata.category(char)
        if char in "\n\r\t" or category[0] in "LNPSZ" and category not in ("Co", "Cn"):
            good += 1
    return good / len(text)
