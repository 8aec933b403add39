"""Hostile files, made by code: the seed corpus of the fuzz tests and the named cases of the hostile tests.

Each maker returns bytes (or writes a file) shaped like a real input of one of MedBrief's doors — a record, a
.docx, a GGUF header, a code table, a config, a model server's stream — and wrong in one chosen way.
"""

from __future__ import annotations

import codecs
import io
import struct
import zipfile
from dataclasses import dataclass

# -- records -------------------------------------------------------------------------------------------------

RECORD = "患者男，68岁，因“反复胸闷气促3年，加重1周”入院。BP 150/90mmHg，NT-proBNP 4500 pg/mL。诊断：慢性心力衰竭。"

UNDECODABLE_RECORDS: dict[str, bytes] = {
    "utf16_bom_odd_length": codecs.BOM_UTF16_LE + RECORD.encode("utf-16-le") + b"\x41",
    "utf16_bom_lone_surrogate": codecs.BOM_UTF16_LE + RECORD.encode("utf-16-le") + b"\x00\xd8\x41\x00",
    "utf8_bom_then_ff": codecs.BOM_UTF8 + RECORD.encode("utf-8") + b"\xff\xfe\xff",
    "utf16be_bom_odd_length": codecs.BOM_UTF16_BE + RECORD.encode("utf-16-be") + b"\x00",
}


def docx_bytes(text: str = RECORD) -> bytes:
    from docx import Document

    buffer = io.BytesIO()
    document = Document()
    for line in text.split("。"):
        document.add_paragraph(line)
    document.save(buffer)
    return buffer.getvalue()


def rezip(data: bytes, replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = (),
          add: dict[str, bytes] | None = None) -> bytes:
    """A zip container with members replaced, dropped or added (each member written anew: CRCs stay right)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename in drop:
                continue
            target.writestr(item.filename, (replace or {}).get(item.filename, source.read(item.filename)))
        for name, content in (add or {}).items():
            target.writestr(name, content)
    return out.getvalue()


_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def hostile_docx() -> dict[str, bytes]:
    base = docx_bytes()
    return {
        "root_not_w_document": rezip(base, {"word/document.xml": b'<?xml version="1.0"?><foo xmlns="x"/>'}),
        "no_body": rezip(base, {"word/document.xml": f'<?xml version="1.0"?><w:document {_W}/>'.encode()}),
        "no_document_part": rezip(base, drop=("word/document.xml",)),
        "empty_content_types": rezip(base, {"[Content_Types].xml": b""}),
        "garbage_document": rezip(base, {"word/document.xml": b"\xff\xfe not xml at all"}),
        "internal_entity": rezip(base, {"word/document.xml": (
            f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "患者">]><w:document {_W}><w:body><w:p><w:r>'
            '<w:t>&e;</w:t></w:r></w:p></w:body></w:document>').encode()}),
        "external_entity": rezip(base, {"word/document.xml": (
            f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><w:document {_W}>'
            '<w:body><w:p><w:r><w:t>&e;</w:t></w:r></w:p></w:body></w:document>').encode()}),
        "not_a_zip": b"PK\x03\x04" + b"\x00" * 200,
        "truncated": base[: len(base) // 2],
    }


def zip_bomb(member: str, inflated_bytes: int, container: bytes | None = None) -> bytes:
    """A container whose one member inflates to ``inflated_bytes`` of zeros (a 3 GB .docx in 3 MB, scaled)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        if container is not None:
            source = zipfile.ZipFile(io.BytesIO(container))
            for item in source.infolist():
                if item.filename != member:
                    archive.writestr(item.filename, source.read(item.filename))
        with archive.open(member, "w", force_zip64=True) as handle:
            block = b"\0" * (1 << 20)
            for _ in range(inflated_bytes // len(block)):
                handle.write(block)
    return out.getvalue()


def lying_zip(member: str, declared_bytes: int) -> bytes:
    """A small member whose central directory claims ``declared_bytes``: refused by what it declares."""
    data = bytearray()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(member, b"<x/>")
    data = bytearray(out.getvalue())
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, min(declared_bytes, 0xFFFFFFFE))  # uncompressed size
    return bytes(data)


# -- GGUF headers --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Typed:
    """A GGUF metadata value with its type id spelled out (0 uint8 … 12 float64, 8 string, 9 array)."""

    type_id: int
    payload: bytes


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def gguf_value(value: object) -> tuple[int, bytes]:
    if isinstance(value, Typed):
        return value.type_id, value.payload
    if isinstance(value, bool):
        return 7, struct.pack("<?", value)
    if isinstance(value, str):
        return 8, _string(value)
    if isinstance(value, float):
        try:
            return 6, struct.pack("<f", value)
        except OverflowError:  # beyond float32
            return 12, struct.pack("<d", value)
    if isinstance(value, int):
        if 0 <= value < 1 << 32:
            return 4, struct.pack("<I", value)
        return (11, struct.pack("<q", max(value, -(1 << 63)))) if value < 0 else (10, struct.pack("<Q", min(value, (1 << 64) - 1)))
    if isinstance(value, list):
        kinds = {gguf_value(item)[0] for item in value} or {4}
        payload = struct.pack("<IQ", kinds.pop(), len(value)) + b"".join(gguf_value(item)[1] for item in value)
        return 9, payload
    raise TypeError(value)


def gguf_bytes(metadata: dict[str, object], tensors: int = 1, tensor_bytes: int = 64) -> bytes:
    """A GGUF v3 file: the metadata (any shape, see ``Typed``) and ``tensors`` F32 tensors."""
    body = b"".join(_string(key) + struct.pack("<I", gguf_value(value)[0]) + gguf_value(value)[1]
                    for key, value in metadata.items())
    table = b"".join(_string("token_embd.weight" if i == 0 else f"blk.{i - 1}.attn_q.weight")
                     + struct.pack("<I", 1) + struct.pack("<Q", tensor_bytes // 4) + struct.pack("<I", 0)
                     + struct.pack("<Q", i * tensor_bytes) for i in range(tensors))
    header = b"GGUF" + struct.pack("<I", 3) + struct.pack("<QQ", tensors, len(metadata)) + body + table
    return header + b"\0" * (-len(header) % 32) + b"\0" * (tensor_bytes * tensors)


QWEN = {"general.architecture": "qwen2", "qwen2.context_length": 32768, "qwen2.block_count": 2,
        "general.file_type": 15, "tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}


def nested_arrays(depth: int) -> Typed:
    """An array of an array of … ``depth`` levels (GGUF nests one)."""
    return Typed(9, struct.pack("<IQ", 9, 1) * (depth - 1) + struct.pack("<IQ", 4, 0))


def hostile_gguf() -> dict[str, bytes]:
    def with_(**changes: object) -> bytes:
        return gguf_bytes({**QWEN, **{key.replace("__", "."): value for key, value in changes.items()}})

    return {
        "alignment_zero": with_(general__alignment=0),
        "alignment_not_power_of_two": with_(general__alignment=48),
        "alignment_as_text": with_(general__alignment="32"),
        "context_as_text": with_(qwen2__context_length="32768"),
        "context_nan": with_(qwen2__context_length=Typed(12, struct.pack("<d", float("nan")))),
        "context_infinite": with_(qwen2__context_length=Typed(6, struct.pack("<f", float("inf")))),
        "context_negative": with_(qwen2__context_length=Typed(11, struct.pack("<q", -1))),
        "file_type_as_array": with_(general__file_type=[15, 15]),
        "block_count_absurd": with_(qwen2__block_count=Typed(10, struct.pack("<Q", 1 << 40))),
        "nested_50000_deep": with_(tokenizer__ggml__merges=nested_arrays(50_000)),
        "chat_template_as_int": with_(tokenizer__chat_template=7),
        "chat_template_not_jinja": with_(tokenizer__chat_template="{% for %}"),
        "chat_template_loops_for_ever": with_(tokenizer__chat_template="{% for i in range(10**12) %}x{% endfor %}"),
        "architecture_as_array": with_(general__architecture=["qwen2"]),
        "unknown_value_type": gguf_bytes({**QWEN, "x": Typed(99, b"")}),
        "string_claims_a_terabyte": gguf_bytes({**QWEN, "x": Typed(8, struct.pack("<Q", 1 << 40))}),
        "array_claims_a_trillion_items": gguf_bytes({**QWEN, "x": Typed(9, struct.pack("<IQ", 8, 1 << 40))}),
        "head_count_as_text": with_(qwen2__attention__head_count="forty"),
        "truncated_header": gguf_bytes(QWEN)[:40],
        "not_gguf": b"GGML" + b"\0" * 60,
    }


# -- code tables ---------------------------------------------------------------------------------------------

def xlsx_bytes(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


TABLE_ROWS = [["编码", "名称"], ["I50.900", "心力衰竭"], ["I10.x00", "原发性高血压"], ["N19.x00", "肾衰竭"]]


def hostile_xlsx() -> dict[str, bytes]:
    base = xlsx_bytes(TABLE_ROWS)
    sheet = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        sheet_xml = archive.read(sheet)
    entity = sheet_xml.replace(b"<worksheet", b'<!DOCTYPE w [<!ENTITY e "x">]><worksheet', 1).replace(
        "心力衰竭".encode(), b"&e;", 1)
    return {
        "truncated": base[: len(base) // 2],
        "no_sheet": rezip(base, drop=(sheet,)),
        "workbook_without_sheets": rezip(base, {"xl/workbook.xml": b'<?xml version="1.0"?><workbook xmlns='
                                                b'"http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                                                b"<sheets/></workbook>"}),
        "entity_in_sheet": rezip(base, {sheet: entity}),
        "garbage_sheet": rezip(base, {sheet: b"\x00\x01 not xml"}),
    }


def csv_with_unterminated_quote(rows: int = 100) -> str:
    lines = [f"I{10 + i % 80}.{i % 10}00,诊断名称{i}" for i in range(rows)]
    lines[50] = 'I60.900,"未闭合的引号'
    return "\n".join(lines) + "\n"


# -- a model server's stream ---------------------------------------------------------------------------------

def sse(*events: object) -> bytes:
    """Server-sent events as llama.cpp's servers send them: one ``data:`` line per JSON chunk, then [DONE]."""
    import json

    lines = [f"data: {json.dumps(event, ensure_ascii=False)}\n\n" if not isinstance(event, bytes) else event.decode()
             for event in events]
    return "".join(lines).encode() + b"data: [DONE]\n\n"
