"""One review path: the same summary of the same record gets the same findings however it is reviewed —
when generated, after an edit that changes nothing, reopened from the history, and by `medbrief validate`
on its `summarize --json`. On the real demo model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from desktop.history_controller import HistoryController
from inference.checks.findings import Finding
from inference.checks.validation import validate
from inference.history.store import HistoryStore
from inference.pipeline import run_pipeline
from inference.record.summary import ABSENT, Diagnosis, StructuredSummary
from tests.conftest import REPO_ROOT, SAMPLE_RECORD
from tests.test_desktop import _generate, _ready, make_window  # noqa: F401  (fixture)

NO_DIAGNOSIS_RECORD = '患者女,30岁,因"咳嗽2天"就诊。2天前受凉后咳嗽,无发热,无咳痰。查体:T 36.8℃,双肺呼吸音清,未闻及干湿啰音。'


def keys(findings: list[Finding] | list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    rows = [f if isinstance(f, dict) else f.as_dict() for f in findings]
    return [(f["rule_id"], f["severity"], f["section"], f["index"], f["message"], tuple(f["details"])) for f in rows]


@pytest.fixture
def history(tmp_path: Path):
    store = HistoryStore.open(tmp_path / "history.sqlite")
    yield store
    store.close()


@pytest.mark.parametrize("record", ["sample", "no_diagnosis"])
def test_a_summary_gets_the_same_findings_on_every_path(qtbot, make_window, demo_engine, history, icd_data: Path,  # noqa: F811
                                                        tmp_path: Path, record: str) -> None:
    path = tmp_path / "record.txt"
    path.write_text(SAMPLE_RECORD.read_text(encoding="utf-8") if record == "sample" else NO_DIAGNOSIS_RECORD,
                    encoding="utf-8")

    def real_pipeline(document, _fake_engine, context, **options):
        return run_pipeline(document, demo_engine, context, **options)

    window = make_window(job=real_pipeline)
    controller = HistoryController(window, history)
    _ready(qtbot, window)
    window.open_file(str(path))
    report = _generate(qtbot, window, timeout=600_000)
    generated = keys(report.validation.findings)

    editor = window.summary_pane.editors["chief_complaint"]  # an edit, then its undo: the same summary again
    with qtbot.waitSignal(window.reviewed, timeout=30_000):
        editor.insertPlainText("字")
        editor.undo()
    assert window.current_summary() == report.result.summary
    assert keys(window.record.validation.findings) == generated

    qtbot.waitUntil(lambda: controller.document_id is not None, timeout=5_000)
    with qtbot.waitSignal(window.reviewed, timeout=30_000):
        controller.reopen(controller.document_id)
    assert keys(window.record.validation.findings) == generated

    summary_json = tmp_path / "summary.json"
    summary_json.write_text(json.dumps(report.as_json(), ensure_ascii=False), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "inference", "validate", str(summary_json), "--source", str(path),
                           "--json"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
                          env={**os.environ, "MEDBRIEF_DATA_DIR": str(icd_data)})
    findings = json.loads(proc.stdout)["findings"]
    assert proc.returncode == (1 if any(f["severity"] == "error" for f in findings) else 0), proc.stderr
    assert keys(findings) == generated


def test_the_absent_marker_is_not_a_diagnosis_without_support() -> None:
    """【初步诊断】原文未记载 is how the README says a record without a diagnosis is written."""
    summary = StructuredSummary(chief_complaint="咳嗽2天", present_illness="2天前受凉后咳嗽,无发热,无咳痰。",
                                auxiliary_exams=[], diagnoses=[Diagnosis(name=ABSENT)])
    assert not [f for f in validate(summary, NO_DIAGNOSIS_RECORD).findings if f.rule_id == "G2"]
    invented = summary.model_copy(update={"diagnoses": [Diagnosis(name="急性上呼吸道感染")]})
    assert [f.rule_id for f in validate(invented, NO_DIAGNOSIS_RECORD).findings if f.rule_id == "G2"] == ["G2"]
