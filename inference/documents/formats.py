"""A record file's format, told by its content, not its name, and the zip containers (.docx, OFD) checked
within bounds before anything in them is inflated.
"""

from __future__ import annotations

import codecs
import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import docx

from inference import limits
from inference.errors import InputError

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument

TEXT, DOCX, PDF, IMAGE, OFD, CDA, FHIR = "text", "docx", "pdf", "image", "ofd", "cda", "fhir"
SUPPORTED_CHINESE = "支持文本（UTF-8、GBK/GB18030）、Word .docx、PDF、图片（PNG/JPEG/TIFF/BMP/WebP/GIF）、OFD、CDA XML 与 FHIR JSON"
SUPPORTED_ENGLISH = "text (UTF-8, GBK/GB18030), Word .docx, PDF, images (PNG/JPEG/TIFF/BMP/WebP/GIF), OFD, CDA XML and FHIR JSON"
# What the open dialog and a batch folder offer; any file is read by its content whatever its name.
SUPPORTED_SUFFIXES = (".txt", ".docx", ".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif",
                      ".ofd", ".xml", ".json")
_IMAGES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
# Leading bytes of formats a record arrives in that are not read: (signature, Chinese name, English name).
_UNSUPPORTED = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "旧版 Word .doc 或 Excel .xls", "legacy .doc/.xls"), (b"{\\rtf", "RTF", "RTF"),
    (b"Rar!\x1a\x07", "RAR 压缩包", "RAR archive"), (b"7z\xbc\xaf\x27\x1c", "7z 压缩包", "7z archive"), (b"\x1f\x8b", "gzip 压缩包", "gzip"),
)


@dataclass(frozen=True)
class Format:
    kind: str
    archive: zipfile.ZipFile | None = None  # a .docx's or an OFD's container, checked within bounds


def record_format(data: bytes, name: str) -> Format:
    """What the file is, by its content; a format not read is an InputError naming it. A file named .docx that is
    not a zip is reported as the corrupt .docx it claims to be."""
    if data.startswith(b"PK\x03\x04") or name.lower().endswith(".docx"):
        if not data.startswith(b"PK\x03\x04"):
            raise InputError(f"Word 文件已损坏或不是 .docx / corrupt or not a .docx file: {name}")
        archive = check_zip_bounds(data, name, "压缩文件")
        names = set(archive.namelist())
        if "word/document.xml" in names:
            return Format(DOCX, archive)
        if "OFD.xml" in names:
            return Format(OFD, archive)
        if "xl/workbook.xml" in names:
            _unsupported("Excel 表格", "Excel workbook", name)
        _unsupported("zip 压缩包", "zip archive", name)
    if data.startswith(b"%PDF-"):
        return Format(PDF)
    if is_image(data):
        return Format(IMAGE)
    for signature, chinese, english in _UNSUPPORTED:
        if data.startswith(signature):
            _unsupported(chinese, english, name)
    head = data[:2048].removeprefix(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"<") and b"ClinicalDocument" in head:
        return Format(CDA)
    if looks_fhir(data):
        return Format(FHIR)
    return Format(TEXT)


def looks_fhir(data: bytes) -> bool:
    head = data[:2048].removeprefix(codecs.BOM_UTF8).lstrip()
    return head.startswith(b"{") and b'"resourceType"' in head


def read_bound(head: bytes) -> int:
    """The most bytes read of a record that begins so: a PDF or an image may hold many scanned pages, a FHIR
    document a PDF in base64; everything else is a text record's 10 MB (a .docx bomb is refused by its size)."""
    if head.startswith(b"%PDF-") or is_image(head):
        return limits.RECORD_SCAN_FILE_BYTES
    return limits.FHIR_FILE_BYTES if looks_fhir(head) else limits.RECORD_FILE_BYTES


def is_image(data: bytes) -> bool:
    return (any(data.startswith(signature) for signature in _IMAGES)
            or data.startswith(b"BM") and data[6:10] == bytes(4)  # "BMI 24.1" is a record, a bitmap is not
            or data.startswith(b"RIFF") and data[8:12] == b"WEBP")


def _unsupported(chinese: str, english: str, name: str) -> None:
    raise InputError(f"不支持的文件格式：{chinese}；{SUPPORTED_CHINESE} / unsupported format {english}: MedBrief reads "
                     f"{SUPPORTED_ENGLISH}: {name}")


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


def docx_text(archive: zipfile.ZipFile, data: bytes, name: str) -> str:
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
