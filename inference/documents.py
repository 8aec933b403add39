"""Load a medical record: text in UTF-8 (with or without BOM) or GB18030/GBK, or a Word .docx — told apart by
their content, not their names. Any other format (a PDF, a scan, an old .doc, an OFD or CDA archive) is refused
by name with the formats that are read, never decoded as text (a PDF's ASCII skeleton passed as a record).

Hospital EMR exports are often GBK. GB18030 decodes almost any byte string, so after decoding the
text must also *look* like text (mostly CJK, ASCII and punctuation) or it is refused. Whatever the file holds,
the outcome is a ``Document`` or an ``InputError`` (exit 3) within the bounds of ``limits``: a .docx is checked
as a zip container (members and inflated sizes) before python-docx inflates anything.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docx

from inference import limits
from inference.errors import InputError

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument

MAX_FILE_BYTES = limits.RECORD_FILE_BYTES
MAX_TEXT_CHARS = limits.RECORD_CHARS
SUPPORTED_SUFFIXES = (".txt", ".docx")
# Leading bytes of formats a record arrives in that are not read (yet): (signature, Chinese name, English name).
_SIGNATURES = (
    (b"%PDF-", "PDF", "PDF"), (b"\x89PNG\r\n\x1a\n", "PNG 图片", "PNG image"), (b"\xff\xd8\xff", "JPEG 图片", "JPEG image"),
    (b"GIF87a", "GIF 图片", "GIF image"), (b"GIF89a", "GIF 图片", "GIF image"), (b"II*\x00", "TIFF 图片", "TIFF image"),
    (b"MM\x00*", "TIFF 图片", "TIFF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "旧版 Word .doc 或 Excel .xls", "legacy .doc/.xls"), (b"{\\rtf", "RTF", "RTF"),
    (b"Rar!\x1a\x07", "RAR 压缩包", "RAR archive"), (b"7z\xbc\xaf\x27\x1c", "7z 压缩包", "7z archive"), (b"\x1f\x8b", "gzip 压缩包", "gzip"),
)
_MIN_TEXT_LIKE_RATIO = 0.95


@dataclass(frozen=True)
class Document:
    text: str
    file_name: str
    encoding: str
    sha256: str


def load_document(path: str | Path) -> Document:
    path = Path(path)
    check_regular_file(path)
    data = read_bounded(path, MAX_FILE_BYTES, "病历")
    archive = record_format(data, path.name)
    if archive is not None:
        text, encoding = _docx_text(archive, data, path.name), "docx"
    else:
        text, encoding = decode_text(data, path.name)
    return make_document(text, path.name, encoding)


def record_format(data: bytes, name: str) -> zipfile.ZipFile | None:
    """A .docx (its container, checked within bounds) or text (None), by the file's content; any other format is
    an InputError naming it. A file named .docx that is not a zip is reported as the corrupt .docx it claims
    to be."""
    if data.startswith(b"PK\x03\x04") or name.lower().endswith(".docx"):
        if not data.startswith(b"PK\x03\x04"):
            raise InputError(f"Word 文件已损坏或不是 .docx / corrupt or not a .docx file: {name}")
        archive = check_zip_bounds(data, name, "压缩文件")
        names = set(archive.namelist())
        if "word/document.xml" in names:
            return archive
        if "xl/workbook.xml" in names:
            _unsupported("Excel 表格", "Excel workbook", name)
        if "OFD.xml" in names:
            _unsupported("OFD 版式文件", "OFD document", name)
        _unsupported("zip 压缩包", "zip archive", name)
    for signature, chinese, english in _SIGNATURES:
        if data.startswith(signature):
            _unsupported(chinese, english, name)
    if data.startswith(b"BM") and data[6:10] == b"\x00\x00\x00\x00":  # a bitmap; "BMI 24.1" is a record
        _unsupported("BMP 图片", "BMP image", name)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        _unsupported("WebP 图片", "WebP image", name)
    head = data[:2048].removeprefix(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"<") and b"ClinicalDocument" in head:
        _unsupported("CDA 文档（XML）", "CDA document (XML)", name)
    if head.startswith(b"{") and b'"resourceType"' in head:
        _unsupported("FHIR 资源（JSON）", "FHIR resource (JSON)", name)
    return None


def _unsupported(chinese: str, english: str, name: str) -> None:
    raise InputError(f"不支持的文件格式：{chinese}；目前支持文本（UTF-8、GBK/GB18030）与 Word .docx / unsupported format "
                     f"{english}: MedBrief reads text (UTF-8, GBK/GB18030) and Word .docx: {name}")


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


def document_from_text(text: str, file_name: str = "粘贴文本") -> Document:
    """A record pasted by the user."""
    return make_document(text, file_name, "utf-8")


def make_document(text: str, file_name: str, encoding: str) -> Document:
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise InputError(f"病历内容为空 / the record is empty: {file_name}")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"病历过长（{len(text)} 字，上限 {MAX_TEXT_CHARS}）/ record too long: {file_name}")
    return Document(text=text, file_name=file_name, encoding=encoding, sha256=hashlib.sha256(text.encode()).hexdigest())


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


def check_zip_bounds(data: bytes, name: str, what: str) -> zipfile.ZipFile:
    """A zip container (.docx, .xlsx) whose members, as it declares them, stay within ``limits`` — checked
    before anything is inflated. Raises InputError."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        raise InputError(f"{what}已损坏或不是 zip 格式 / corrupt container: {name}") from exc
    inflated = sum(member.file_size for member in members)
    if len(members) > limits.ZIP_MEMBERS or inflated > limits.ZIP_INFLATED_BYTES or any(
            member.file_size > limits.ZIP_MEMBER_INFLATED_BYTES for member in members):
        raise InputError(f"{what}解压后过大（{len(members)} 个部件，共 {inflated // limits.MIB} MB，上限 "
                         f"{limits.ZIP_INFLATED_BYTES // limits.MIB} MB）/ the container inflates beyond the bound "
                         f"(a zip bomb?): {name}")
    return archive


def _docx_text(archive: zipfile.ZipFile, data: bytes, name: str) -> str:
    """The text of a .docx whose container ``record_format`` checked."""
    corrupt = f"Word 文件已损坏或不是 .docx / corrupt or not a .docx file: {name}"
    try:
        body = archive.read("word/document.xml")
    except (KeyError, zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise InputError(corrupt) from exc
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:  # Word never writes one; an entity is an attack or a loss
        raise InputError(f"Word 文件含有 DTD/实体声明，已拒绝 / the .docx declares a DTD or entities: {name}")
    try:
        return _docx_lines(docx.Document(io.BytesIO(data)))
    except Exception as exc:  # noqa: BLE001 - python-docx and lxml fail on a malformed part in many types
        raise InputError(corrupt) from exc


def _docx_lines(document: DocxDocument) -> str:
    lines = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            cells: list[str] = []
            for cell in row.cells:
                if cell.text not in cells:  # merged cells repeat their text
                    cells.append(cell.text)
            lines.append("\t".join(cells))
    return "\n".join(line for line in lines if line.strip())
