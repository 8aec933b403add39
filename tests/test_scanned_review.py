"""How sure the reading was flows into the review: a value the summary takes from a line the OCR read with low
confidence is an O1 warning naming the page, even though it matches the extracted text; the history keeps the
record's provenance, so a reopened or exported record is reviewed the same."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from inference.checks.validation import validate
from inference.documents import make_document
from inference.history.exports import exported_version
from inference.history.store import HistoryStore
from inference.record.provenance import LOW_CONFIDENCE, Provenance, SourceLine
from inference.record.status import DraftStatus
from tests.conftest import SAMPLE_RECORD
from tests.history_helpers import SAMPLE_SUMMARY, sample_report


def _scanned(text: str, doubtful: str, confidence: float):
    """The sample record as if read from a photo: one SourceLine a line, the line holding ``doubtful`` read with
    ``confidence``, every other line with 0.99."""
    lines, offset = [], 0
    for number, line in enumerate(text.split("\n")):
        score = confidence if doubtful in line else 0.99
        lines.append(SourceLine(offset, offset + len(line), "外院病历.jpg", 1 + number // 2, (10, 20 * number, 500, 20 * number + 18),
                                score))
        offset += len(line) + 1
    return make_document(text, "外院病历.jpg", "ocr", Provenance(tuple(lines), ocr_pages=2, pages=2))


def test_a_value_read_with_low_confidence_is_a_warning_with_its_page() -> None:
    text = SAMPLE_RECORD.read_text(encoding="utf-8").strip()
    document = _scanned(text, "肌酐", 0.62)
    findings = validate(SAMPLE_SUMMARY, document.text, provenance=document.provenance).findings
    doubtful = [f for f in findings if f.rule_id == "O1"]
    assert [(f.section, f.severity) for f in doubtful] == [("auxiliary_exams", "warning")] * 3  # the whole line's values
    assert "原件识别不确定，请核对原件（外院病历.jpg 第 2 页，识别置信度 0.62）" in doubtful[0].message
    assert {SAMPLE_SUMMARY.auxiliary_exams[f.index].name for f in doubtful} == {"NT-proBNP", "LVEF", "肌酐"}
    sure = _scanned(text, "肌酐", LOW_CONFIDENCE + 0.01)
    assert not [f for f in validate(SAMPLE_SUMMARY, sure.text, provenance=sure.provenance).findings if f.rule_id == "O1"]
    assert not [f for f in validate(SAMPLE_SUMMARY, text).findings if f.rule_id == "O1"]  # typed text: nothing to doubt


def test_words_without_values_on_a_doubtful_line_are_not_flagged() -> None:
    text = SAMPLE_RECORD.read_text(encoding="utf-8").strip()
    document = _scanned(text, "初步诊断", 0.5)
    doubtful = [f for f in validate(SAMPLE_SUMMARY, document.text, provenance=document.provenance).findings
                if f.rule_id == "O1"]
    assert doubtful == []  # diagnoses carry no value, dose or date: a misread word shows in F1/G1/T3 instead


def test_the_history_keeps_provenance_and_an_export_carries_the_warning(tmp_path: Path) -> None:
    text = SAMPLE_RECORD.read_text(encoding="utf-8").strip()
    document = _scanned(text, "肌酐", 0.62)
    store = HistoryStore.open(tmp_path / "history.db")
    report = sample_report()
    report = replace(report, document=document)
    report.validation = validate(SAMPLE_SUMMARY, document.text, provenance=document.provenance)
    recorded = store.record_run(report.run_record(), {})
    reopened = store.opened_document(recorded.document_id)
    assert reopened.provenance == document.provenance and reopened.encoding == "ocr"
    exported = exported_version(store, recorded.document_id)
    assert exported.status == DraftStatus.DRAFT
    assert sum(f["rule_id"] == "O1" for f in exported.findings) == 3


def test_a_history_from_before_provenance_opens_and_its_records_have_none(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "history.db"
    store = HistoryStore.open(path)
    document_id = store.record_run(sample_report().run_record(), {}).document_id
    store.close()
    with sqlite3.connect(path) as db:  # as MedBrief wrote it before migration 0006
        db.execute("ALTER TABLE documents DROP COLUMN provenance")
        db.execute("UPDATE alembic_version SET version_num = '0005'")
    reopened = HistoryStore.open(path)
    try:
        assert any("备份" in notice for notice in reopened.notices)
        document = reopened.opened_document(document_id)
        assert not document.provenance and document.text.startswith("患者男性")
        assert not [f for f in exported_version(reopened, document_id).findings if f["rule_id"] == "O1"]
    finally:
        reopened.close()
