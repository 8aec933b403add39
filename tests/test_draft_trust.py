"""A draft that does not come from the record is refused; what the record does not say leaves the draft.

The verdict, the draft guard and the part-scoped value check on real record text (the sample record and
records in its style); the CLI's exit code and the history's rejected status on a real run's report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.checks.findings import OK, REJECTED, WARNINGS
from inference.checks.validation import validate
from inference.record.evidence import RunEvidence
from inference.record.prompts import load_prompt
from inference.record.summary import Diagnosis, ExamItem, StructuredSummary
from inference.summary.draft_guard import guard_draft
from inference.summary.summarizer import parse_summary
from tests.history_helpers import SAMPLE_SUMMARY, sample_report

SHORT_BOWEL = (
    '患者女,56岁,因"反复腹泻、消瘦2年"入院。2年前因肠扭转行小肠大部切除术,术后出现腹泻,每日5~6次,体重下降8kg。'
    "1年前诊断为肠梗阻,保守治疗后好转。查体:T 36.5℃,P 88次/分,BP 100/65mmHg,消瘦,腹软。"
    "辅助检查:白蛋白 28 g/L,血红蛋白 96 g/L。"
)
OTHER_PATIENT = StructuredSummary(
    chief_complaint="右下腹痛并自扪及包块3小时",
    present_illness="3小时前解大便后出现右下腹疼痛,右下腹可触及一包块。查体:T 37.8℃,P 101次/分,BP 100/60mmHg。",
    auxiliary_exams=[ExamItem(name="WBC", value="5.0", unit="×10^9/L"), ExamItem(name="N", value="78", unit="%")],
    diagnoses=[Diagnosis(name="腹股沟斜疝嵌顿")],
)


def example_patient() -> StructuredSummary:
    return parse_summary(load_prompt("summary").section("example_summary"))


def test_the_prompts_example_patient_as_a_draft_is_rejected(sample_text: str) -> None:
    report = validate(example_patient(), sample_text)
    assert report.verdict == REJECTED and "R1" in {f.rule_id for f in report.findings}


def test_another_patients_summary_is_rejected(sample_text: str) -> None:
    report = validate(OTHER_PATIENT, sample_text)
    assert report.verdict == REJECTED and "R2" in {f.rule_id for f in report.findings}
    assert report.supported_share() < 0.5


def test_the_correct_summary_is_not_rejected(sample_text: str) -> None:
    report = validate(SAMPLE_SUMMARY, sample_text)
    assert report.verdict in (OK, WARNINGS) and report.supported_share() == 1.0


def test_removed_content_counts_against_the_draft(sample_text: str) -> None:
    """A draft the guard emptied is not a clean draft: what was removed weighs in the verdict."""
    guarded, removals, _ = guard_draft(OTHER_PATIENT, sample_text)
    assert removals and {r.rule_id for r in removals} >= {"G3", "V1"}
    assert validate(guarded, sample_text, evidence=RunEvidence(removals=tuple(removals))).verdict == REJECTED


def test_a_diagnosis_the_record_never_states_is_removed_although_it_states_others() -> None:
    draft = StructuredSummary(chief_complaint="反复腹泻、消瘦2年", present_illness="2年前因肠扭转行小肠大部切除术。",
                              auxiliary_exams=[], diagnoses=[Diagnosis(name="肠梗阻"), Diagnosis(name="2型糖尿病")])
    guarded, removals, _ = guard_draft(draft, SHORT_BOWEL)
    assert [d.name for d in guarded.diagnoses] == ["肠梗阻"]
    assert [(r.rule_id, r.text) for r in removals] == [("G3", "2型糖尿病")]
    report = validate(guarded, SHORT_BOWEL, evidence=RunEvidence(removals=tuple(removals)))
    assert any(f.rule_id == "G3" and "2型糖尿病" in f.message for f in report.findings)


def test_a_diagnosis_worded_a_little_differently_stays() -> None:
    record = "初步诊断:1.高血压病3级(极高危) 2.慢性心力衰竭急性加重"
    draft = StructuredSummary(chief_complaint="原文未记载", present_illness="原文未记载", auxiliary_exams=[],
                              diagnoses=[Diagnosis(name="高血压3级"), Diagnosis(name="慢性心力衰竭急性加重")])
    guarded, removals, _ = guard_draft(draft, record)
    assert len(guarded.diagnoses) == 2 and removals == []


def test_a_value_counts_only_next_to_the_same_measurement() -> None:
    record = "查体:T 36.5℃,R 105次/分,BP 120/80mmHg。"
    summary = StructuredSummary(chief_complaint="原文未记载", present_illness="查体:T 36.5℃,HR 105次/分。",
                                auxiliary_exams=[], diagnoses=[])
    assert [f.rule_id for f in validate(summary, record).findings if f.rule_id == "V1"] == ["V1"]
    guarded, removals, _ = guard_draft(summary, record)
    assert guarded.present_illness == "查体:T 36.5℃。" and removals[0].text == "HR 105次/分"


def test_a_value_from_another_part_of_the_record_is_not_support() -> None:
    """Two admissions in one file: the first patient's 38.6℃ does not support a draft of the second part."""
    first = "入院记录\n患者甲,发热,体温 38.6℃。\n"
    second = "入院记录\n患者乙,咳嗽3天,体温 36.8℃。\n"
    record = first + second
    sentence = "咳嗽3天,体温 38.6℃。"
    scopes = {("present_illness", sentence): [(len(first), len(record))]}
    summary = StructuredSummary(chief_complaint="原文未记载", present_illness=sentence, auxiliary_exams=[], diagnoses=[])
    assert not [f for f in validate(summary, record).findings if f.rule_id == "V1"]  # anywhere: found
    assert [f.rule_id for f in validate(summary, record, evidence=RunEvidence(scopes=scopes)).findings if f.rule_id == "V1"] == ["V1"]
    guarded, removals, _ = guard_draft(summary, record, scopes)
    assert "38.6" not in guarded.present_illness and removals[0].rule_id == "V1"


def test_many_omitted_key_values_are_one_finding_with_the_list_behind_it() -> None:
    record = ("查体:T 36.8℃,HR 88次/分,R 18次/分,BP 130/80mmHg。辅助检查:WBC 6.2×10^9/L,肌酐 90 μmol/L,"
              "LVEF 60%。")
    summary = StructuredSummary(chief_complaint="原文未记载", present_illness="原文未记载", auxiliary_exams=[],
                                diagnoses=[])
    omissions = [f for f in validate(summary, record).findings if f.rule_id == "V2"]
    assert len(omissions) == 1 and len(omissions[0].details) == 7 and "7 个关键数值" in omissions[0].message
    assert len(omissions[0].source_spans) == 7
    few = "查体:T 36.8℃,HR 88次/分,R 18次/分。"
    assert len([f for f in validate(summary, few).findings if f.rule_id == "V2"]) == 3  # a few stay one by one


def test_errors_come_first() -> None:
    summary = SAMPLE_SUMMARY.model_copy(update={"present_illness": SAMPLE_SUMMARY.present_illness.replace(
        "颈静脉怒张", "无颈静脉怒张"), "auxiliary_exams": []})
    findings = validate(summary, Path("resources/samples/sample_record.txt").read_text(encoding="utf-8")).findings
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index) and severities[0] == "error"


def test_cli_validate_json_carries_the_verdict(tmp_path: Path, sample_text: str) -> None:
    from inference.cli import main

    summary_file = tmp_path / "draft.json"
    summary_file.write_text(example_patient().model_dump_json(), encoding="utf-8")
    record = tmp_path / "record.txt"
    record.write_text(sample_text, encoding="utf-8")
    out = tmp_path / "out.json"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["validate", str(summary_file), "--source", str(record), "--json"])
    out.write_text(buffer.getvalue(), encoding="utf-8")
    assert code == 1 and json.loads(out.read_text(encoding="utf-8"))["verdict"] == REJECTED


def test_summarize_exits_8_on_a_rejected_draft_and_keeps_it_as_rejected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], demo_model_path) -> None:
    """The model is real; the pipeline's draft is swapped for another patient's, as a long record produced."""
    import inference.pipeline
    from inference.cli import main
    from inference.errors import EXIT_CODES
    from inference.history.exports import export_record
    from inference.history.store import HistoryStore

    wrong = sample_report(summary=OTHER_PATIENT)
    monkeypatch.setattr(inference.pipeline, "run_pipeline", lambda document, engine, *_context, **_options: wrong)
    assert wrong.rejected
    code = main(["summarize", "resources/samples/sample_record.txt", "--save", "--no-icd", "--quiet"])
    captured = capsys.readouterr()
    assert code == 8 and 8 in EXIT_CODES
    assert captured.out == ""  # no text to paste into the EMR
    assert "未通过核对" in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    store = HistoryStore.open()
    try:
        record = store.list_records()[0]
        assert record.status == "rejected"
        from inference.errors import StorageError

        with pytest.raises(StorageError):
            store.set_status(record.document_id, "signed", signer="张医生")
        with pytest.raises(StorageError):
            export_record(store, record.document_id, "txt")
        store.save_edit(record.document_id, SAMPLE_SUMMARY, [])
        assert store.list_records()[0].status == "rejected"  # editing does not make it the record's summary
    finally:
        store.close()
    code = main(["summarize", "resources/samples/sample_record.txt", "--json", "--no-icd", "--quiet"])
    data = json.loads(capsys.readouterr().out)
    assert code == 8 and data["verdict"] == REJECTED


def test_a_diagnosis_the_doctor_adds_is_flagged_whole_and_does_not_reject_the_draft(sample_text: str) -> None:
    """2型糖尿病 also stands in the prompt's example; one such line is the doctor's addition, not the example
    patient, and its warning covers the whole term."""

    added = SAMPLE_SUMMARY.model_copy(update={"diagnoses": [*SAMPLE_SUMMARY.diagnoses, Diagnosis(name="2型糖尿病")]})
    report = validate(added, sample_text)
    assert report.verdict != REJECTED
    flagged = [f for f in report.findings if f.section == "diagnoses" and f.rule_id in ("F1", "T4")]
    assert [(f.rule_id, "2型糖尿病"[f.span[0]:f.span[1]]) for f in flagged] == [("T4", "2型糖尿病")]  # not in the record
