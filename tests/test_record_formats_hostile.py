"""The new ways a record comes in, tried as an attacker or a broken scanner would: encrypted, truncated and
corrupt PDFs, a 2,000-page PDF, blank scans, a 0-page TIFF, a 30,000 × 30,000 image, a content-stream bomb, an
OFD missing a page, CDA with external entities, FHIR with no text — each one line (exit 3 from the CLI), no
traceback, nothing half-read; and the reader process itself held to its memory and time bounds."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference import limits
from inference.documents import load_document, read_record
from inference.documents.pages import Line, Page, join_pages
from inference.documents.sandbox import run_bounded
from inference.documents.structured import read_cda, read_fhir
from inference.errors import InputError
from tests import record_files
from tests.conftest import REPO_ROOT

RECORD = "主诉：胸闷气促3年，加重1周。辅助检查：LVEF 38%，肌酐 138 μmol/L。"
XXE = '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
LAUGHS = '<!DOCTYPE r [<!ENTITY a "哈哈哈哈哈哈哈哈"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'


def _pdf_pages(count: int) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    for _ in range(count):
        pdf.drawString(72, 720, "page")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def _cases() -> list[tuple[str, bytes, str]]:
    text_pdf = record_files.text_pdf([RECORD], header="")
    blank = record_files.page_image("", 100)
    return [
        ("encrypted.pdf", record_files.text_pdf([RECORD], password="secret"), "PDF 已加密"),
        ("truncated.pdf", text_pdf[: len(text_pdf) // 3], "PDF 文件已损坏|没有读出任何文字"),
        ("corrupt.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40, "PDF 文件已损坏"),
        ("2000.pdf", _pdf_pages(2000), "文件共 2000 页，超过页数上限 200 页"),
        ("blank-scan.pdf", record_files.scanned_pdf([blank, blank]), "没有读出任何文字（2 页"),
        ("zero.tif", b"II*\x00\x00\x00\x00\x00", "图片文件已损坏"),
        ("huge.png", record_files.png_header(30_000, 30_000), "像素过多"),
        ("truncated.png", record_files.image_bytes(blank)[:300], "图片文件已损坏|没有读出任何文字"),
        ("missing-page.ofd", record_files.ofd([["主诉：胸痛。"], ["诊断：心绞痛。"]], drop_page=1), "OFD 文件缺少第 2 页"),
        ("no-root.ofd", record_files.zip_of({"OFD.xml": b"<OFD/>"}), "OFD 文件缺少 DocRoot"),
        ("xxe.xml", record_files.cda([("主诉", "&x;")], preamble=XXE), "DTD/实体声明"),
        ("laughs.xml", record_files.cda([("主诉", "&b;")], preamble=LAUGHS), "DTD/实体声明"),
        ("broken.xml", record_files.cda([("主诉", "胸痛")])[:-30], "不是有效的 XML"),
        ("empty-cda.xml", record_files.cda([]), "CDA 文档没有正文"),
        ("no-text.json", json.dumps({"resourceType": "Observation", "status": "final"}).encode(), "没有病历文字"),
        ("link.json", json.dumps({"resourceType": "DocumentReference", "content": [
            {"attachment": {"contentType": "application/pdf", "url": "http://his.example/1.pdf"}}]}).encode(), "只有链接"),
        ("bad-base64.json", json.dumps({"resourceType": "DocumentReference", "content": [
            {"attachment": {"contentType": "text/plain", "data": "!!!"}}]}).encode(), "不是有效的 base64"),
        ("deep.json", b'{"resourceType": "Bundle", "entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "不是有效的 JSON"),
    ]


@pytest.mark.parametrize(("name", "data", "message"), _cases(), ids=[case[0] for case in _cases()])
def test_a_hostile_record_file_is_one_line(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=message) as caught:
        load_document(path)
    assert "\n" not in caught.value.message and name in caught.value.message


def test_cli_an_encrypted_pdf_is_exit_3_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "encrypted.pdf"
    path.write_bytes(record_files.text_pdf([RECORD], password="secret"))
    proc = subprocess.run([sys.executable, "-m", "inference", "summarize", str(path)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"medbrief: PDF 已加密，需要密码，无法读取；请导出未加密的 PDF / encrypted PDF: "
                                                f"{path.name}"]


def test_a_content_stream_bomb_meets_the_readers_memory_bound_and_a_real_pdf_does_not() -> None:
    bound = 1024 * limits.MIB
    pages = run_bounded("inference.documents.pdf:read_pdf", record_files.text_pdf([RECORD]), "real.pdf", 10,
                        seconds=60, memory=bound)
    assert "LVEF 38%" in join_pages(pages)[0]
    started = time.monotonic()
    with pytest.raises(InputError, match="1024 MB") as caught:  # 200 MB of operators from 0.4 MB: 8 GB in PDFium
        run_bounded("inference.documents.pdf:read_pdf", record_files.content_bomb_pdf(200), "bomb.pdf", 10,
                    seconds=60, memory=bound)
    assert time.monotonic() - started < 30 and "\n" not in caught.value.message


@pytest.mark.parametrize(("reader", "data", "message"), [
    ("sleepy_reader", b"30", "一页超过 2 秒"),
    ("hungry_reader", str(4 * 1024 * limits.MIB).encode(), "内存超出上限（512 MB）"),
    ("crashing_reader", b"", "解析进程异常退出"),
])
def test_the_reader_process_is_held_to_its_bounds(reader: str, data: bytes, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(InputError, match=message):
        run_bounded(f"tests.record_files:{reader}", data, "x.pdf", None, seconds=2, memory=512 * limits.MIB)
    assert time.monotonic() - started < 20


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=9, max_value=3000), noise=st.binary(min_size=1, max_size=64),
       at=st.integers(min_value=0, max_value=3000))
def test_a_damaged_pdf_is_a_record_or_one_line(cut: int, noise: bytes, at: int) -> None:
    pdf = record_files.text_pdf([RECORD], header="")
    damaged = pdf[:at] + noise + pdf[at + len(noise):] if cut % 2 else pdf[:cut]
    try:
        document = read_record(damaged, "damaged.pdf", _options())
    except InputError as error:
        assert "\n" not in error.message
    else:
        assert document.text.strip()


def _options():
    from inference.documents import ReadOptions

    return ReadOptions(max_pages=5)


_LINE = st.builds(Line, st.text(max_size=12), st.tuples(*[st.floats(0, 800, allow_nan=False)] * 4),
                  st.none() | st.floats(0, 1))


@settings(max_examples=300, deadline=None)
@given(pages=st.lists(st.lists(_LINE, max_size=6), max_size=5))
def test_joined_pages_keep_every_lines_offsets(pages: list[list[Line]]) -> None:
    text, provenance = join_pages([Page(n, tuple(lines)) for n, lines in enumerate(pages, 1)])
    for line in provenance.lines:
        assert text[line.start:line.end].strip() and "\n" not in text[line.start:line.end]
    assert [line.start for line in provenance.lines] == sorted(line.start for line in provenance.lines)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                         st.sampled_from(["resourceType", "section", "title", "text", "div", "entry", "resource",
                                          "content", "attachment", "data", "contentType", "url"]), inner, max_size=5),
                     max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(value=_JSON, kind=st.sampled_from(["Bundle", "Composition", "DocumentReference", "Observation"]))
def test_any_fhir_json_is_text_or_one_line(value: object, kind: str) -> None:
    resource = value if isinstance(value, dict) else {"section": value, "entry": value, "content": value}
    resource = {**resource, "resourceType": kind}
    try:
        read = read_fhir(json.dumps(resource).encode(), "x.json")
    except InputError as error:
        assert "\n" not in error.message
    else:
        assert isinstance(read, bytes) or read.strip()


@settings(max_examples=300, deadline=None)
@given(body=st.text(alphabet=st.sampled_from(list("<>/=\"' abcsectiontlparagrph&;主诉胸痛\n")), max_size=200))
def test_any_cda_is_text_or_one_line(body: str) -> None:
    try:
        text = read_cda(f'<ClinicalDocument xmlns="urn:hl7-org:v3">{body}</ClinicalDocument>'.encode(), "x.xml")
    except InputError as error:
        assert "\n" not in error.message
    else:
        assert text.strip()


def test_a_folder_with_one_unreadable_file_is_refused_whole_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "患者"
    folder.mkdir()
    (folder / "1.txt").write_text(RECORD, encoding="utf-8")
    (folder / "2.pdf").write_bytes(record_files.text_pdf([RECORD], password="secret"))
    proc = subprocess.run([sys.executable, "-m", "inference", "summarize", str(folder)], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["medbrief: PDF 已加密，需要密码，无法读取；请导出未加密的 PDF / encrypted PDF: 2.pdf"]


@pytest.mark.parametrize("pages", ["0", "2001", "many"])
def test_a_page_limit_out_of_range_is_a_usage_error(tmp_path: Path, pages: str) -> None:
    path = tmp_path / "r.txt"
    path.write_text(RECORD, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "inference", "summarize", str(path), "--max-pages", pages],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("line", "read", "doubted"), [
    ("体温36.4C；脉搏80次/分", "体温36.4C；脉搏80次/分", True), ("T:36.5°CP:61次/分", "T:36.5°CP:61次/分", True),
    ("T:36.4°℃，P:80次/分", "T:36.4℃，P:80次/分", False), ("WBC 10.84X109/L", "WBC 10.84×109/L", True),
    ("RBC3.57x1012/L", "RBC3.57×1012/L", True), ("Bp160/95mmHgo", "Bp160/95mmHg。", False),
    ("血红蛋白80g/Lo", "血红蛋白80g/L。", False), ("体温 36.4℃", "体温 36.4℃", False), ("HbA1C 7.2%", "HbA1C 7.2%", False),
    ("X线胸片示Echo", "X线胸片示Echo", False), ("肿块3X10cm", "肿块3X10cm", False)])
def test_certain_misreadings_are_put_right_and_the_others_doubted(line: str, read: str, doubted: bool) -> None:
    from inference.documents.ocr import _read
    from inference.record.provenance import LOW_CONFIDENCE

    got = _read(Line(line, (0, 0, 10, 10), 0.99))
    assert got.text == read and (got.confidence < LOW_CONFIDENCE) == doubted


def test_a_pdf_with_more_text_than_a_record_stops_in_the_reader() -> None:
    pages = ["主诉：胸闷气促3年，加重1周。血压150/90mmHg。" * 40] * 90  # 1,200 characters a page, 108,000 in all
    with pytest.raises(InputError, match="病历过长"):
        run_bounded("inference.documents.pdf:read_pdf", record_files.text_pdf(pages, header=""), "long.pdf", 200,
                    seconds=60)
