"""Load a medical record as it arrives on a ward PC, told apart by its content, not its name: text (UTF-8,
GBK/GB18030), Word .docx, PDF (its text layer, or OCR for scanned pages), scans and photos (OCR), OFD, CDA XML
and FHIR JSON; or a patient folder of several such files, one record with a heading per file.

Whatever the file holds, the outcome is a ``Document`` or an ``InputError`` (exit 3) within the bounds of
``limits``: containers are checked before anything is inflated, and PDFium and the OCR run in a child process
bounded in memory and time (``documents.sandbox``). A record read from pages keeps where each of its lines
stands in the original (``Provenance``: file, page, box, the OCR's confidence).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from inference import limits
from inference.documents.formats import (
    CDA,
    DOCX,
    FHIR,
    IMAGE,
    OFD,
    PDF,
    SUPPORTED_SUFFIXES,
    check_zip_bounds,
    docx_text,
    read_bound,
    record_format,
)
from inference.documents.pages import Page, join_pages
from inference.documents.sandbox import Report, run_bounded
from inference.documents.structured import read_cda, read_fhir, read_ofd
from inference.documents.text import check_regular_file, decode_text, read_bounded
from inference.errors import InputError
from inference.record.provenance import Provenance, SourceLine

__all__ = ["Document", "ReadOptions", "check_regular_file", "check_zip_bounds", "decode_text", "document_from_text",
           "load_document", "load_documents", "make_document", "page_image", "PageImage", "read_bounded", "read_record",
           "reads_pages", "record_format", "SUPPORTED_SUFFIXES", "MAX_FILE_BYTES", "MAX_TEXT_CHARS"]

MAX_FILE_BYTES = limits.RECORD_FILE_BYTES
MAX_TEXT_CHARS = limits.RECORD_CHARS
_PAGED_TASKS = {PDF: "inference.documents.pdf:read_pdf", IMAGE: "inference.documents.images:read_scan"}


@dataclass(frozen=True)
class Document:
    text: str
    file_name: str
    encoding: str  # a text file's encoding, or how the text was read: docx, pdf, ocr, ofd, cda, fhir, folder
    sha256: str
    provenance: Provenance = field(default_factory=Provenance)  # file, page and box of each line read from pages
    source_paths: tuple[str, ...] = ()  # the files it was read from, this session (the history keeps no paths)

    def source_path(self, file_name: str) -> Path | None:
        """The file a line's ``SourceLine.file_name`` names, when the record was opened from files."""
        return next((Path(p) for p in self.source_paths if Path(p).name == file_name), None)


@dataclass(frozen=True)
class PageImage:
    png: bytes
    scale: float  # from the page's units (those of SourceLine.box) to the image's pixels


@dataclass(frozen=True)
class ReadOptions:
    max_pages: int = limits.RECORD_PAGES  # the page-limit setting, for PDFs and multi-page scans
    on_page: Report | None = None  # (page, pages, phase: 读取 / 文字识别), from the reader process
    cancelled: Callable[[], bool] | None = None  # asked between pages


def load_document(path: str | Path, options: ReadOptions | None = None) -> Document:
    path = Path(path)
    check_regular_file(path)
    document = read_record(read_bounded(path, read_bound(_head(path)), "病历"), path.name, options or ReadOptions())
    return replace(document, source_paths=(str(path),))


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(2048)
    except (OSError, ValueError):
        return b""  # reading it whole says why


def page_image(path: Path, page: int) -> PageImage:
    """One page of the original (a PDF's, a scan's, a FHIR document's attached PDF), rendered in the bounded reader
    process for the window's 原件 view."""
    check_regular_file(path)
    data = read_bounded(path, limits.RECORD_SCAN_FILE_BYTES, "病历")
    kind = record_format(data, path.name).kind
    if kind == FHIR:
        attached = read_fhir(data, path.name)
        data, kind = (attached, PDF) if isinstance(attached, bytes) else (data, kind)
    if kind not in (PDF, IMAGE):
        raise InputError(f"该文件没有可显示的页面图像（{kind}）/ no page image for this format: {path.name}")
    png, scale = run_bounded("inference.documents.page_image:render_page", data, path.name, page,
                             seconds=limits.READER_PAGE_SECONDS)
    return PageImage(png, scale)


def read_record(data: bytes, name: str, options: ReadOptions) -> Document:
    bound = read_bound(data[:2048])
    if len(data) > bound:  # bytes handed in, not read within the bound: a test, an attachment
        raise InputError(f"病历文件过大（上限 {bound // 1024} KB）/ file too large: {name}")
    found = record_format(data, name)
    if found.kind == DOCX:
        return make_document(docx_text(found.archive, data, name), name, "docx")
    if found.kind in _PAGED_TASKS:
        return _paged(_read_pages(found.kind, data, name, options), name, "pdf" if found.kind == PDF else "ocr")
    if found.kind == OFD:
        return _paged(read_ofd(found.archive, name), name, "ofd")
    if found.kind == CDA:
        return make_document(read_cda(data, name), name, "cda")
    if found.kind == FHIR:
        text = read_fhir(data, name)
        if isinstance(text, bytes):  # a DocumentReference whose content is a PDF
            return _paged(_read_pages(PDF, text, name, options), name, "fhir-pdf")
        return make_document(text, name, "fhir")
    text, encoding = decode_text(data, name)
    return make_document(text, name, encoding)


def _read_pages(kind: str, data: bytes, name: str, options: ReadOptions) -> list[Page]:
    return run_bounded(_PAGED_TASKS[kind], data, name, options.max_pages, seconds=limits.READER_PAGE_SECONDS,
                       on_page=options.on_page, cancelled=options.cancelled)


def _paged(pages: list[Page], name: str, encoding: str) -> Document:
    text, provenance = join_pages(pages)
    if not text.strip():
        raise InputError(f"文件中没有读出任何文字（{len(pages)} 页均为空白或没有可识别的文字）/ no text found on any of "
                         f"its {len(pages)} pages: {name}")
    return make_document(text, name, encoding, provenance)


def load_documents(paths: Sequence[str | Path], options: ReadOptions | None = None) -> Document:
    """A patient folder: the files given (or a folder's files, by name), one record with a heading per file
    (【外院CT报告.jpg】), in the order given. One unreadable file refuses the whole, naming it: a record missing
    its 外院 pages is not the patient's record."""
    options = options or ReadOptions()
    files = _patient_files([Path(p) for p in paths])
    if len(files) == 1:
        return load_document(files[0], options)
    parts: list[str] = []
    lines: list[SourceLine] = []
    pages = ocr_pages = 0
    offset = 0
    for path in files:
        remaining = options.max_pages - pages
        document = load_document(path, replace(options, max_pages=max(1, remaining)))
        if document.provenance.pages > remaining:
            raise InputError(f"文件夹共超过页数上限 {options.max_pages} 页 / the files hold more than the page limit "
                             f"{options.max_pages} (max_record_pages): {path.name}")
        heading = f"【{path.name}】\n"
        start = offset + (2 if parts else 0) + len(heading)
        parts.append(heading + document.text)
        lines += [replace(line, start=line.start + start, end=line.end + start) for line in document.provenance.lines]
        pages += document.provenance.pages
        ocr_pages += document.provenance.ocr_pages
        offset = start + len(document.text)
    name = files[0].parent.name if len(paths) == 1 else f"{files[0].name} 等 {len(files)} 个文件"
    document = make_document("\n\n".join(parts), name, "folder", Provenance(tuple(lines), ocr_pages, pages))
    return replace(document, source_paths=tuple(str(path) for path in files))


def _patient_files(paths: list[Path]) -> list[Path]:
    if not paths:
        raise InputError("没有给出病历文件 / no record file given")
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        try:
            paths = sorted((p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()),
                           key=lambda p: p.name)
        except OSError as exc:
            raise InputError(f"无法读取文件夹 / cannot read the folder {folder}: {exc.strerror or exc}") from None
        if not paths:
            raise InputError(f"文件夹中没有病历文件 / the folder holds no files: {folder}")
    if len(paths) > limits.PATIENT_FILES:
        raise InputError(f"一次最多合并 {limits.PATIENT_FILES} 个文件（给出 {len(paths)} 个）/ at most "
                         f"{limits.PATIENT_FILES} files make one record")
    return paths


def reads_pages(path: Path) -> bool:
    """Whether opening this takes seconds (a folder, a PDF, a scan, a FHIR document that may carry one) rather than
    milliseconds: the window reads those off its GUI thread. Told by the first bytes, as ``record_format`` does."""
    try:
        if path.is_dir():
            return True
    except (OSError, ValueError):
        return False  # opening it says why, at once
    return read_bound(_head(path)) > MAX_FILE_BYTES


def document_from_text(text: str, file_name: str = "粘贴文本") -> Document:
    """A record pasted by the user."""
    return make_document(text, file_name, "utf-8")


def make_document(text: str, file_name: str, encoding: str, provenance: Provenance | None = None) -> Document:
    if provenance is None:  # text and markup: the line breaks are normalised, the ends trimmed
        text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text.strip():
        raise InputError(f"病历内容为空 / the record is empty: {file_name}")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"病历过长（{len(text)} 字，上限 {MAX_TEXT_CHARS}）/ record too long: {file_name}")
    return Document(text=text, file_name=file_name, encoding=encoding,
                    sha256=hashlib.sha256(text.encode()).hexdigest(), provenance=provenance or Provenance())
