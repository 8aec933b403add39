"""Records that arrive as structured documents: OFD (GB/T 33190, a zip of XML pages), HL7 CDA XML (WS/T 500
电子病历共享文档), and FHIR R4 JSON (Bundle, Composition, DocumentReference). XML is parsed by defusedxml with
DTDs forbidden: no entity is expanded, nothing is fetched. Each gives the record's text in reading order with its
own headings (a CDA section's title, a Composition section's title); a FHIR attachment that is a PDF is handed
back to be read as one.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import posixpath
import re
import zipfile
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from inference.documents.pages import Page, group_lines
from inference.errors import InputError

_BLOCK_END = re.compile(r"<\s*(br\s*/?|/p|/div|/li|/tr|/h\d|/title|/caption)\s*>", re.IGNORECASE)
_CELL_END = re.compile(r"<\s*/t[dh]\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def _xml(data: bytes, what: str, name: str) -> Element:
    try:
        return fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise InputError(f"{what}含有 DTD/实体声明或外部引用，已拒绝 / the {what} declares a DTD, entities or external "
                         f"references: {name}") from None
    except (ParseError, ValueError):
        raise InputError(f"{what}已损坏，不是有效的 XML / the {what} is not well-formed XML: {name}") from None


def _local(element: Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _children(element: Element, local: str) -> list[Element]:
    return [child for child in element if _local(child) == local]


def _find(element: Element, *path: str) -> Element | None:
    for local in path:
        found = _children(element, local)
        if not found:
            return None
        element = found[0]
    return element


def _text_of(element: Element) -> str:
    return " ".join("".join(element.itertext()).split())


# -- OFD -------------------------------------------------------------------------------------------------------

def read_ofd(archive: zipfile.ZipFile, name: str) -> list[Page]:
    """The pages of an OFD file, its text objects grouped into lines (boxes in millimetres, as OFD gives them)."""
    what = "OFD 文件"
    root = _xml(_member(archive, "OFD.xml", name), what, name)
    doc_root = _find(root, "DocBody", "DocRoot")
    if doc_root is None or not (doc_root.text or "").strip():
        raise InputError(f"OFD 文件缺少 DocRoot，无法找到文档 / the OFD names no document: {name}")
    document_path = doc_root.text.strip().lstrip("/")
    document = _xml(_member(archive, document_path, name), what, name)
    page_list = _find(document, "Pages")
    entries = _children(page_list, "Page") if page_list is not None else []
    if not entries:
        raise InputError(f"OFD 文件没有任何页面 / the OFD has no pages: {name}")
    pages = []
    for number, entry in enumerate(entries, 1):
        location = (entry.get("BaseLoc") or "").strip()
        path = location.lstrip("/") if location.startswith("/") else posixpath.join(
            posixpath.dirname(document_path), location)
        try:
            content = _member(archive, posixpath.normpath(path), name)
        except InputError:
            raise InputError(f"OFD 文件缺少第 {number} 页（{location or '未给出位置'}）/ the OFD lacks page {number}: "
                             f"{name}") from None
        runs = []
        for text_object in _xml(content, what, name).iter():
            if _local(text_object) != "TextObject":
                continue
            text = "".join("".join(code.itertext()) for code in text_object.iter() if _local(code) == "TextCode")
            box = _boundary(text_object.get("Boundary", ""))
            if text.strip() and box is not None:
                runs.append((box, text, None))
        pages.append(Page(number, tuple(group_lines(runs)), file_name=name))
    return pages


def _member(archive: zipfile.ZipFile, path: str, name: str) -> bytes:
    try:
        return archive.read(path)
    except (KeyError, zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError):
        raise InputError(f"OFD 文件缺少部件 {path} 或已损坏 / the OFD lacks {path}: {name}") from None


def _boundary(value: str) -> tuple[float, float, float, float] | None:
    try:
        x, y, width, height = (float(v) for v in value.split())
    except ValueError:
        return None
    return (x, y, x + width, y + height)


# -- CDA -------------------------------------------------------------------------------------------------------

def read_cda(data: bytes, name: str) -> str:
    """A CDA document's sections as the record's headings: 出院诊断：… (narrative text, or the entries' coded
    values where a WS/T 500 section carries no narrative)."""
    root = _xml(data, "CDA 文档", name)
    if _local(root) != "ClinicalDocument":
        raise InputError(f"不是 CDA 文档（根元素不是 ClinicalDocument）/ not a CDA document: {name}")
    lines = []
    title = _find(root, "title")
    if title is not None and _text_of(title):
        lines.append(_text_of(title))
    patient = _find(root, "recordTarget", "patientRole", "patient")
    if patient is not None:
        gender = _find(patient, "administrativeGenderCode")
        age = _find(patient, "age")
        bits = [gender.get("displayName", "") if gender is not None else "",
                f"{age.get('value', '')}{age.get('unit', '')}" if age is not None and age.get("value") else ""]
        if any(bits):
            lines.append("患者：" + "，".join(bit for bit in bits if bit))
    body = _find(root, "component", "structuredBody")
    sections = [line for element in (body.iter() if body is not None else ()) if _local(element) == "section"
                for line in _cda_section(element)]
    if not any(line.strip() for line in sections):
        raise InputError(f"CDA 文档没有正文（structuredBody 中无内容）/ the CDA document has no body text: {name}")
    return "\n".join(line for line in lines + sections if line.strip())


def _cda_section(section: Element) -> list[str]:
    title = _find(section, "title")
    code = _find(section, "code")
    heading = _text_of(title) if title is not None else (code.get("displayName", "") if code is not None else "")
    narrative = _find(section, "text")
    body = _narrative(narrative) if narrative is not None else ""
    if not body.strip():
        body = "\n".join(_entry_line(entry) for entry in _children(section, "entry"))
    body = "\n".join(line.strip() for line in body.splitlines() if line.strip())
    if not body:
        return [f"{heading}：" if heading else ""]
    return [f"{heading}：{body}" if heading else body]


def _narrative(element: Element) -> str:
    """A narrative block with its paragraphs, list items and table rows on lines of their own."""
    lines, current = [], []
    for piece in _walk(element):
        if piece == "\n":
            lines.append("".join(current))
            current = []
        else:
            current.append(piece)
    lines.append("".join(current))
    return "\n".join(" ".join(line.split()) for line in lines if line.strip())


def _walk(element: Element) -> list[str]:
    pieces = [element.text or ""]
    for child in element:
        pieces += _walk(child)
        if _local(child) in ("paragraph", "item", "tr", "br", "caption"):
            pieces.append("\n")
        elif _local(child) in ("td", "th"):
            pieces.append("\t")
        pieces.append(child.tail or "")
    return pieces


def _entry_line(entry: Element) -> str:
    """An entry's observation as 名称：值 单位 (a coded value by its display name)."""
    for observation in entry.iter():
        if _local(observation) not in ("observation", "act", "substanceAdministration"):
            continue
        code = _find(observation, "code")
        label = code.get("displayName", "") if code is not None else ""
        values = []
        for value in _children(observation, "value"):
            if value.get("value") is not None:
                values.append(f"{value.get('value')}{(' ' + value.get('unit', '')) if value.get('unit') else ''}")
            elif value.get("displayName"):
                values.append(value.get("displayName", ""))
            elif _text_of(value):
                values.append(_text_of(value))
        text = _find(observation, "text")
        if text is not None and _text_of(text):
            values.append(_text_of(text))
        if label or values:
            return f"{label}：{'，'.join(values)}" if label and values else label or "，".join(values)
    return _text_of(entry)


# -- FHIR ------------------------------------------------------------------------------------------------------

def read_fhir(data: bytes, name: str) -> str | bytes:
    """A FHIR R4 resource's text: a Composition's sections, a DocumentReference's text attachment, any
    resource's narrative; a Bundle's resources in order. Returns the bytes of an attached PDF to be read as one."""
    try:
        resource = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputError(f"FHIR 文件不是有效的 JSON / not valid FHIR JSON: {name}") from None
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise InputError(f"不是 FHIR 资源（缺少 resourceType）/ not a FHIR resource: {name}")
    texts: list[str] = []
    pdfs: list[bytes] = []
    resources = [resource]
    if resource["resourceType"] == "Bundle":
        resources = [entry.get("resource") for entry in _list(resource.get("entry")) if isinstance(entry, dict)]
    for item in resources:
        if isinstance(item, dict):
            _fhir_resource(item, texts, pdfs, name)
    text = "\n".join(t for t in texts if t.strip())
    if text.strip():
        return text
    if pdfs:
        return pdfs[0]
    raise InputError(f"FHIR 资源中没有病历文字（无 narrative、section 或附件内容）/ the FHIR resource holds no record "
                     f"text: {name}")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _fhir_resource(resource: dict[str, Any], texts: list[str], pdfs: list[bytes], name: str) -> None:
    kind = resource.get("resourceType")
    if kind == "Composition":
        if isinstance(resource.get("title"), str):
            texts.append(resource["title"])
        _fhir_sections(_list(resource.get("section")), texts, depth=0)
    elif kind == "DocumentReference":
        for content in _list(resource.get("content")):
            attachment = content.get("attachment") if isinstance(content, dict) else None
            if isinstance(attachment, dict):
                _attachment(attachment, texts, pdfs, name)
    else:
        texts.append(_div(resource.get("text")))


def _fhir_sections(sections: list[Any], texts: list[str], depth: int) -> None:
    for section in sections:
        if not isinstance(section, dict) or depth > 8:
            continue
        title = section.get("title") if isinstance(section.get("title"), str) else ""
        body = _div(section.get("text"))
        texts.append(f"{title}：{body}" if title else body)
        _fhir_sections(_list(section.get("section")), texts, depth + 1)


def _div(narrative: Any) -> str:
    if not isinstance(narrative, dict) or not isinstance(narrative.get("div"), str):
        return ""
    text = _CELL_END.sub("\t", _BLOCK_END.sub("\n", narrative["div"]))
    lines = (" ".join(html.unescape(_TAG.sub("", line)).split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _attachment(attachment: dict[str, Any], texts: list[str], pdfs: list[bytes], name: str) -> None:
    kind = str(attachment.get("contentType", "")).split(";")[0].strip().lower()
    data = attachment.get("data")
    if not isinstance(data, str):
        if attachment.get("url"):
            raise InputError(f"FHIR 附件只有链接（{str(attachment['url'])[:80]}），没有内容；MedBrief 不联网获取 / the "
                             f"attachment is a link, and MedBrief fetches nothing: {name}")
        return
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"FHIR 附件内容不是有效的 base64 / the attachment's data is not base64: {name}") from None
    if kind == "application/pdf" or raw.startswith(b"%PDF-"):
        pdfs.append(raw)
    elif kind.startswith("text/"):
        try:
            texts.append(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise InputError(f"FHIR 文本附件不是 UTF-8 / the text attachment is not UTF-8: {name}") from None
    else:
        raise InputError(f"FHIR 附件格式 {kind or '未注明'} 不支持；支持 text/plain 与 application/pdf / unsupported "
                         f"attachment type {kind or '(none)'}: {name}")
