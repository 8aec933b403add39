"""Records load from UTF-8, UTF-8 with BOM, GBK/GB18030 and .docx; bad files get one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from docx import Document as DocxDocument
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.documents import MAX_FILE_BYTES, MAX_TEXT_CHARS, load_document
from inference.errors import InputError
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    ("encoding", "expected_label"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_text_records_decode_in_every_hospital_encoding(
    tmp_path: Path, sample_text: str, encoding: str, expected_label: str
) -> None:
    path = tmp_path / "record.txt"
    path.write_bytes(sample_text.replace("μ", "u" if encoding == "gbk" else "μ").encode(encoding))
    document = load_document(path)
    assert document.encoding == expected_label
    assert "NT-proBNP 4500 pg/mL" in document.text
    assert "慢性心力衰竭急性加重" in document.text


def test_docx_record_keeps_paragraphs_and_tables(tmp_path: Path, sample_text: str) -> None:
    docx = DocxDocument()
    for line in sample_text.splitlines():
        docx.add_paragraph(line)
    table = docx.add_table(rows=1, cols=3)
    for cell, text in zip(table.rows[0].cells, ["血红蛋白", "98", "g/L"]):
        cell.text = text
    path = tmp_path / "record.docx"
    docx.save(path)
    document = load_document(path)
    assert document.encoding == "docx"
    assert "LVEF 38%" in document.text
    assert "血红蛋白\t98\tg/L" in document.text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"  \n\t \n", "empty"),
        ("image.txt", bytes(range(256)) * 8, "binary"),
        ("latin.txt", "Ärztlicher Befund: Herzinsuffizienz ÄÖÜ äöüß".encode("latin-1") * 3, "encoding"),
        ("fake.docx", b"not a zip at all", "docx"),
    ],
)
def test_bad_input_is_refused_with_a_reason(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_document(path)


def test_oversized_files_and_texts_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (MAX_FILE_BYTES + 1))
    with pytest.raises(InputError, match="too large"):
        load_document(big)
    long_text = tmp_path / "long.txt"
    long_text.write_text("病" * (MAX_TEXT_CHARS + 1), encoding="utf-8")
    with pytest.raises(InputError, match="too long"):
        load_document(long_text)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_document(tmp_path / "nope.txt")


@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 4])
def test_cli_bad_record_is_one_line_exit_3_without_loading_the_model(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "inference", "summarize", str(path)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
    )
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_usage_error_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "inference", "summarize"], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_help_documents_exit_codes() -> None:
    proc = subprocess.run([sys.executable, "-m", "inference", "--help"], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 0
    for code in ("3", "4", "5", "130"):
        assert f"  {code:>3}  " in proc.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--n-ctx", "100"], 2, "n_ctx"),
        (["--out", "/nonexistent-dir/summary.txt"], 3, "output folder does not exist"),
        (["--max-tokens", "0"], 2, "max_tokens"),
    ],
)
def test_cli_bad_options_fail_fast_in_one_line(args: list[str], code: int, message: str) -> None:
    from tests.conftest import SAMPLE_RECORD

    proc = subprocess.run([sys.executable, "-m", "inference", "summarize", str(SAMPLE_RECORD), "--quiet", *args],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == code
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_unreadable_config_file_is_reported_not_a_traceback(tmp_path: Path, monkeypatch) -> None:
    from tests.conftest import SAMPLE_RECORD

    config = tmp_path / "config"
    config.mkdir()
    (config / "config.json").write_text("{broken", encoding="utf-8")
    monkeypatch.setenv("MEDBRIEF_CONFIG_DIR", str(config))
    proc = subprocess.run([sys.executable, "-m", "inference", "summarize", str(SAMPLE_RECORD), "--quiet"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 4 and "config" in proc.stderr and "Traceback" not in proc.stderr


def test_every_engine_setting_is_a_flag_of_summarize() -> None:
    from inference.cli.engine_options import engine_settings
    from inference.cli.main import build_parser
    from inference.llm.settings import EngineSettings

    parser = build_parser()
    defaults = parser.parse_args(["summarize", "x.txt"])
    assert all(hasattr(defaults, name) for name in EngineSettings.model_fields)
    args = parser.parse_args(["summarize", "x.txt", "--draft-tokens", "0", "--no-flash-attn", "--kv-cache-type",
                              "f16", "--temperature", "0.3", "--gpu-layers", "0", "--model", "/models/x.gguf"])
    settings = engine_settings(args)
    assert (settings.draft_tokens, settings.flash_attn, settings.temperature, settings.n_gpu_layers) == (0, False, 0.3, 0)
    assert str(settings.model_path) == "/models/x.gguf"


# -- a record is recognised by its content, not its name ------------------------------------------------------

from tests.record_files import zip_of as _zip  # noqa: E402

_PDF_SKELETON = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" * 30 + b"%%EOF\n"


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "旧版 Word .doc"),
        ("record.txt", b"{\\rtf1\\ansi " + "主诉".encode("gbk"), "RTF"),
        ("labs.docx", _zip({"xl/workbook.xml": b"<workbook/>"}), "Excel 表格"),
        ("bundle.txt", _zip({"a.txt": "患者男".encode()}), "zip 压缩包"),
        ("records.gz", b"\x1f\x8b\x08\x00" + bytes(32), "gzip 压缩包"),
        ("records.7z", b"7z\xbc\xaf\x27\x1c" + bytes(32), "7z 压缩包"),
    ],
)
def test_a_format_that_is_not_read_is_named_with_the_formats_that_are(tmp_path: Path, name: str, content: bytes,
                                                                        kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"不支持的文件格式：{kind}.*；支持文本.*Word .docx、PDF、图片.*OFD、CDA XML 与 FHIR JSON") \
            as caught:
        load_document(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("content", "kind"), [
    (_PDF_SKELETON, "pdf"), (b"\x89PNG\r\n\x1a\n" + bytes(64), "image"), (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image"),
    (b"II*\x00\x08\x00", "image"), (b"BM" + (100).to_bytes(4, "little") + bytes(8), "image"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image"), (_zip({"OFD.xml": b"<ofd:OFD/>"}), "ofd"),
    ('<?xml version="1.0"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">'.encode(), "cda"),
    (b'{\n  "resourceType": "Bundle", "type": "document"}', "fhir"), ("主诉：胸痛。".encode(), "text"),
])
def test_a_record_file_is_told_by_its_content_not_its_name(content: bytes, kind: str) -> None:
    from inference.documents import record_format

    assert record_format(content, "出院记录.txt").kind == kind


def test_a_pdf_skeleton_is_not_read_as_a_text_record(tmp_path: Path) -> None:
    path = tmp_path / "出院记录.txt"  # before: its ASCII read as a record, four 原文未记载 and exit 0
    path.write_bytes(_PDF_SKELETON)
    with pytest.raises(InputError, match="PDF 文件已损坏"):
        load_document(path)


def test_a_docx_under_another_name_is_read_as_the_docx_it_is(tmp_path: Path) -> None:
    docx = DocxDocument()
    docx.add_paragraph("主诉：胸闷气促3年，加重1周。")
    docx.save(tmp_path / "record.docx")
    renamed = tmp_path / "record.txt"
    renamed.write_bytes((tmp_path / "record.docx").read_bytes())
    document = load_document(renamed)
    assert document.encoding == "docx" and document.text == "主诉：胸闷气促3年，加重1周。"


@pytest.mark.parametrize("text", ["BMI 24.1，血压 150/90mmHg。", "GIF 检查：无。", "{体温 36.8℃}", "<主诉>胸痛2小时</主诉>",
                                  "PK 值升高", "%PDF 误粘贴的一行，其后是病历：患者男，68岁。"])
def test_text_records_that_begin_like_a_signature_are_still_read(tmp_path: Path, text: str) -> None:
    path = tmp_path / "record.txt"
    path.write_text(text, encoding="utf-8")
    assert load_document(path).text == text


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from([b"%PDF-", b"PK\x03\x04", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"{", b"<", b""]),
       body=st.binary(max_size=600))
def test_any_bytes_are_a_format_or_one_input_error(prefix: bytes, body: bytes) -> None:
    from inference.documents import record_format

    try:
        found = record_format(prefix + body, "x.txt")
        assert found.kind in ("text", "docx", "pdf", "image", "ofd", "cda", "fhir")
        assert (found.archive is not None) == (found.kind in ("docx", "ofd"))
    except InputError as error:
        assert "\n" not in str(error)


def test_cli_a_corrupt_pdf_is_one_line_exit_3_without_loading_the_model(tmp_path: Path) -> None:
    path = tmp_path / "出院记录.pdf"
    path.write_bytes(_PDF_SKELETON)
    proc = subprocess.run([sys.executable, "-m", "inference", "summarize", str(path)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"medbrief: PDF 文件已损坏，无法读取 / corrupt PDF: {path.name}"]
