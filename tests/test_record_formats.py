"""Records as they arrive on a ward PC: a PDF's text layer, scanned pages and photos by OCR, OFD, CDA and FHIR,
and a patient folder of several files — each read offline into one record that keeps, line by line, the
file, page and box it came from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inference.documents import ReadOptions, load_document, load_documents
from inference.errors import GenerationCancelled, InputError
from tests import record_files

COURSE = ("入院后予呋塞米20mg静脉注射每日一次利尿，螺内酯20mg口服每日一次，监测电解质。第3天复查肌酐 126 μmol/L，"
          "血钾 3.9 mmol/L，双下肢水肿减轻。")
DISCHARGE = "出院情况：患者胸闷气促明显缓解，双下肢无水肿，HR 76次/分，BP 132/80mmHg。出院诊断：慢性心力衰竭急性加重。"


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def three_pages(sample_text_module: str) -> list[str]:
    return [sample_text_module, COURSE, DISCHARGE]


@pytest.fixture(scope="module")
def sample_text_module() -> str:
    from inference.paths import sample_record_path

    return sample_record_path().read_text(encoding="utf-8").strip()


def test_a_text_layer_pdf_reads_as_its_source_with_header_once_and_page_numbers_gone(
        tmp_path: Path, three_pages: list[str]) -> None:
    path = tmp_path / "出院记录.pdf"
    path.write_bytes(record_files.text_pdf(three_pages))
    document = load_document(path)
    assert document.encoding == "pdf"
    assert squeeze(document.text) == squeeze(record_files.HEADER + "".join(three_pages))
    assert document.text.count("住院号") == 1 and "第 2 页" not in document.text and "共 3 页" not in document.text
    assert "查体:BP 150/90mmHg,颈静脉怒张" in document.text  # a line the page width broke is one sentence again
    provenance = document.provenance
    assert (provenance.pages, provenance.ocr_pages) == (3, 0)
    for line in provenance.lines:
        assert document.text[line.start:line.end].strip() and line.confidence is None
    creatinine = document.text.index("肌酐 126")
    assert [line.page for line in provenance.overlapping(creatinine, creatinine + 6)] == [2]


def test_a_two_page_pdf_keeps_its_header_once_and_its_hyphens(tmp_path: Path) -> None:
    path = tmp_path / "两页.pdf"
    pages = ["主诉：胸闷气促3年。血压150/90mmHg，" + "患者既往有高血压病史-" * 6, "出院诊断：慢性心力衰竭。"]
    path.write_bytes(record_files.text_pdf(pages))
    document = load_document(path)
    assert document.text.count("住院号") == 1 and "\x02" not in document.text
    assert squeeze(document.text) == squeeze(record_files.HEADER + "".join(pages))


def test_a_scanned_pdf_is_read_by_ocr_with_page_boxes_and_scores(tmp_path: Path, sample_text_module: str) -> None:
    path = tmp_path / "扫描件.pdf"
    path.write_bytes(record_files.scanned_pdf([record_files.page_image(sample_text_module, 200)]))
    seen: list[tuple[int, int, str]] = []
    document = load_document(path, ReadOptions(on_page=lambda *page: seen.append(page)))
    assert document.encoding == "pdf" and document.provenance.ocr_pages == 1
    assert seen == [(1, 1, "读取"), (1, 1, "文字识别")]
    for value in ("NT-proBNP4500pg/mL", "LVEF38%", "肌酐138μmol/L", "BP150/90mmHg", "慢性心力衰竭急性加重"):
        assert value in squeeze(document.text)  # the OCR keeps no space it cannot see
    line = document.provenance.overlapping(document.text.index("LVEF"), document.text.index("LVEF") + 4)[0]
    assert line.page == 1 and 0.9 < line.confidence <= 1.0
    x0, y0, x1, y1 = line.box  # in the page's points, as a text layer's are
    assert 0 < x0 < x1 <= 595 and 0 < y0 < y1 <= 842


def test_a_text_layer_that_extracts_as_garbage_is_read_by_ocr(tmp_path: Path, sample_text_module: str) -> None:
    path = tmp_path / "乱码.pdf"
    path.write_bytes(record_files.garbled_pdf(record_files.page_image(sample_text_module, 200)))
    document = load_document(path)
    assert document.provenance.ocr_pages == 1 and "LVEF38%" in squeeze(document.text)
    assert not any(ord(char) < 32 and char != "\n" for char in document.text)


@pytest.mark.parametrize("turn", [90, 180])
def test_a_photo_taken_sideways_or_upside_down_is_read_upright(tmp_path: Path, sample_text_module: str,
                                                               turn: int) -> None:
    page = record_files.page_image(sample_text_module, 150).rotate(turn, expand=True)
    path = tmp_path / "photo.jpg"
    path.write_bytes(record_files.photo_of(page, angle=1.5))
    document = load_document(path)
    assert document.encoding == "ocr"
    assert document.text.startswith("患者男性") and document.text.splitlines()[-1].startswith("初步诊断")
    assert "LVEF38%" in squeeze(document.text) and len(document.text.splitlines()) >= 4
    image_width, image_height = record_files.photo_size(path.read_bytes())
    for line in document.provenance.lines:  # boxes on the photo as it was taken
        x0, y0, x1, y1 = line.box
        assert 0 <= x0 < x1 <= image_width and 0 <= y0 < y1 <= image_height
        assert ((y1 - y0) > (x1 - x0)) == (turn == 90)  # sideways text stands in tall boxes


def test_a_multi_page_tiff_is_one_record_page_by_page(tmp_path: Path, three_pages: list[str]) -> None:
    path = tmp_path / "scan.tif"
    path.write_bytes(record_files.tiff_pages([record_files.page_image(t, 150) for t in three_pages[1:]]))
    document = load_document(path)
    assert document.provenance.pages == 2 and {line.page for line in document.provenance.lines} == {1, 2}
    assert document.text.index("呋塞米") < document.text.index("出院诊断")


def test_an_ofd_file_is_read_in_reading_order(tmp_path: Path) -> None:
    path = tmp_path / "病历.ofd"
    path.write_bytes(record_files.ofd([["主诉：胸闷气促3年，加重1周。", "现病史：患者3年前出现胸闷。", "辅助检查：LVEF 38%。"],
                                       ["初步诊断：慢性心力衰竭。"]]))
    document = load_document(path)
    assert document.encoding == "ofd"
    assert document.text.splitlines() == ["主诉：胸闷气促3年，加重1周。", "现病史：患者3年前出现胸闷。", "辅助检查：LVEF 38%。",
                                          "初步诊断：慢性心力衰竭。"]
    assert document.provenance.lines[-1].page == 2


def test_cda_and_fhir_documents_read_their_sections_as_headings(tmp_path: Path) -> None:
    sections = [("入院情况", "胸闷气促3年，加重1周。"), ("出院诊断", "慢性心力衰竭急性加重")]
    (tmp_path / "出院小结.xml").write_bytes(record_files.cda(sections))
    (tmp_path / "composition.json").write_bytes(record_files.fhir_composition(sections))
    cda = load_document(tmp_path / "出院小结.xml")
    assert cda.encoding == "cda"
    assert cda.text.splitlines() == ["出院小结", "患者：男性，68岁", "入院情况：胸闷气促3年，加重1周。", "出院诊断：慢性心力衰竭急性加重"]
    fhir = load_document(tmp_path / "composition.json")
    assert fhir.encoding == "fhir"
    assert fhir.text.splitlines() == ["出院小结", "入院情况：胸闷气促3年，加重1周。", "出院诊断：慢性心力衰竭急性加重"]


def test_a_fhir_document_reference_carries_its_text_or_its_pdf(tmp_path: Path, three_pages: list[str]) -> None:
    (tmp_path / "text.json").write_bytes(record_files.fhir_document_reference("主诉：胸痛2小时。".encode(), "text/plain"))
    assert load_document(tmp_path / "text.json").text == "主诉：胸痛2小时。"
    pdf = record_files.text_pdf(three_pages[1:], header="")
    (tmp_path / "pdf.json").write_bytes(record_files.fhir_document_reference(pdf, "application/pdf"))
    document = load_document(tmp_path / "pdf.json")
    assert document.encoding == "fhir-pdf" and "螺内酯20mg" in document.text and document.provenance.pages == 2


def test_a_patient_folder_is_one_record_with_a_heading_per_file(tmp_path: Path, three_pages: list[str]) -> None:
    folder = tmp_path / "张某某"
    folder.mkdir()
    (folder / "1-本院病历.pdf").write_bytes(record_files.text_pdf(three_pages[:2]))
    (folder / "2-外院出院小结.png").write_bytes(record_files.image_bytes(record_files.page_image(three_pages[2], 150)))
    (folder / "3-护理记录.txt").write_text("体温 36.8℃，无不适。", encoding="utf-8")
    document = load_documents([folder])
    assert document.encoding == "folder" and document.file_name == "张某某"
    headings = [line for line in document.text.splitlines() if line.startswith("【")]
    assert headings == ["【1-本院病历.pdf】", "【2-外院出院小结.png】", "【3-护理记录.txt】"]
    assert document.provenance.pages == 3 and document.provenance.ocr_pages == 1
    for line in document.provenance.lines:  # every line's offsets still point at its own text after the joining
        assert document.text[line.start:line.end].strip()
    discharge = document.text.index("出院诊断")
    assert [(line.file_name, line.page) for line in document.provenance.overlapping(discharge, discharge + 4)] == [
        ("2-外院出院小结.png", 1)]
    reordered = load_documents([folder / "3-护理记录.txt", folder / "1-本院病历.pdf"])
    assert reordered.text.startswith("【3-护理记录.txt】\n体温 36.8℃") and reordered.file_name == "3-护理记录.txt 等 2 个文件"


def test_reading_stops_between_pages_when_cancelled(tmp_path: Path, three_pages: list[str]) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(record_files.scanned_pdf([record_files.page_image(t, 100) for t in three_pages]))
    pages: list[int] = []
    with pytest.raises(GenerationCancelled):
        load_document(path, ReadOptions(on_page=lambda page, _n, _phase: pages.append(page),
                                        cancelled=lambda: bool(pages)))
    assert pages and max(pages) < 3


def test_the_page_limit_is_a_setting_with_a_clear_message(tmp_path: Path, three_pages: list[str]) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(record_files.text_pdf(three_pages))
    with pytest.raises(InputError, match="文件共 3 页，超过页数上限 2 页"):
        load_document(path, ReadOptions(max_pages=2))


def test_the_sample_as_a_scanned_pdf_gives_the_text_records_summary_on_the_real_model(
        tmp_path: Path, demo_engine, sample_text_module: str) -> None:
    from inference.documents import document_from_text
    from inference.pipeline import run_pipeline

    path = tmp_path / "扫描件.pdf"
    path.write_bytes(record_files.scanned_pdf([record_files.page_image(sample_text_module, 300)]))
    scanned = run_pipeline(load_document(path), demo_engine, table=None)
    typed = run_pipeline(document_from_text(sample_text_module), demo_engine, table=None)

    def facts(report) -> tuple[set[tuple[str, str, str]], list[str]]:
        summary = report.result.summary
        return ({(i.name, i.value, i.unit) for i in summary.auxiliary_exams}, [d.name for d in summary.diagnoses])

    assert facts(scanned) == facts(typed)
    assert not [f for f in scanned.validation.findings if f.severity == "error"]
    output = scanned.as_json()
    assert output["source"]["encoding"] == "pdf" and (output["source"]["pages"], output["source"]["ocr_pages"]) == (1, 1)
    lvef = next(item for item in output["auxiliary_exams"] if item["name"] == "LVEF")
    original = lvef["sources"][0]["original"][0]  # where the value stands on the page, for an EMR to point at
    assert original["file"] == "扫描件.pdf" and original["page"] == 1 and 0.9 <= original["confidence"] <= 1
    assert "original" not in typed.as_json()["auxiliary_exams"][0]["sources"][0]


def test_ocr_runs_with_no_network_at_all(tmp_path: Path) -> None:
    """RapidOCR's models are inside its package: the whole read, reader process included, in a namespace with no
    network device (nothing to download from, nothing to send to)."""
    import shutil
    import subprocess
    import sys

    from inference.paths import sample_scan_path

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode:
        pytest.skip("unshare -rn (a user and network namespace) is not available here")
    script = ("import socket, sys\nfrom inference.documents import load_document\n"
              "if __name__ == '__main__':\n"
              "    try:\n        socket.create_connection(('pypi.org', 443), timeout=3)\n        sys.exit('network reachable')\n"
              "    except OSError:\n        pass\n"
              f"    print(load_document({str(sample_scan_path())!r}).text)\n")
    (tmp_path / "offline.py").write_text(script, encoding="utf-8")
    proc = subprocess.run(["unshare", "-rn", sys.executable, str(tmp_path / "offline.py")], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "LVEF" in proc.stdout and "慢性心力衰竭急性加重" in proc.stdout


def test_reading_a_scan_writes_nothing_in_the_users_home(tmp_path: Path) -> None:
    """onnxruntime 1.29 and later queue telemetry in ~/.cache/Microsoft (the packaging test found it): the pinned
    onnxruntime has none, and the reader process switches it off should a newer one be installed."""
    import os
    import subprocess
    import sys

    import onnxruntime

    from inference.paths import sample_scan_path

    assert tuple(int(part) for part in onnxruntime.__version__.split(".")[:2]) < (1, 25)
    home = tmp_path / "home"
    home.mkdir()
    script = ("from inference.documents import load_document\nif __name__ == '__main__':\n"
              f"    print(load_document({str(sample_scan_path())!r}).text)\n")
    (tmp_path / "read.py").write_text(script, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("XDG_", "ORT_"))}
    proc = subprocess.run([sys.executable, str(tmp_path / "read.py")], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**env, "HOME": str(home)})
    assert proc.returncode == 0 and "LVEF" in proc.stdout, proc.stderr[-2000:]
    assert not list(home.rglob("*"))
