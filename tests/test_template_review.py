"""What a template's summary may say: the guard removes what the record does not say before the doctor sees it,
the review flags what an edit puts back, by section kind; and the history keeps a template's summary with the
template it was written with."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.checks.template_review import review_templated
from inference.documents import Document
from inference.export import ExportedVersion, export, to_fhir_bundle
from inference.history.exports import export_record
from inference.history.records import RunRecord
from inference.history.store import HistoryStore
from inference.record.evidence import RunEvidence
from inference.record.summary import ABSENT, Diagnosis, ExamItem
from inference.summary.template_guard import guard_templated
from inference.summary.templated import fuse_templated, parse_templated
from inference.templates.catalog import TemplateCatalog
from inference.templates.content import DatedEvent, Medication, TemplatedSummary, stored_summary

RECORD = """入院日期:2024-05-06 出院日期:2024-05-14
患者因"反复胸闷气促3年,加重1周"入院。查体:BP 150/90mmHg,颈静脉怒张,双下肢凹陷性水肿。
辅助检查:NT-proBNP 4500 pg/mL,肌酐 138 μmol/L。
入院诊断:慢性心力衰竭急性加重,高血压心脏病。
诊疗经过:予呋塞米利尿,5月9日复查肌酐 120 μmol/L。
出院诊断:慢性心力衰竭,高血压心脏病。
出院情况:胸闷减轻,无双下肢水肿。
出院带药:呋塞米片 20mg 口服 每日1次;螺内酯 20mg 口服 每日1次。"""


@pytest.fixture()
def discharge():
    return TemplateCatalog().get("discharge")


def _summary(template, **sections) -> TemplatedSummary:
    return TemplatedSummary(template, {spec.id: sections.get(spec.id, ABSENT if spec.kind == "text" else [])
                                       for spec in template.sections})


def test_the_guard_removes_invented_doses_drugs_dates_values_and_flipped_findings(discharge) -> None:
    draft = _summary(
        discharge,
        admission_date=[DatedEvent(date="2024-05-06", event="入院")],
        discharge_date=[DatedEvent(date="2024-05-16", event="出院")],  # the record says 05-14
        admission_condition="胸闷气促,BP 150/90mmHg,颈静脉怒张。",
        admission_diagnoses=[Diagnosis(name="慢性心力衰竭急性加重,高血压心脏病")],
        hospital_course="予呋塞米利尿,5月9日复查肌酐 120 μmol/L,5月11日复查肌酐 98 μmol/L。",
        discharge_orders=[Medication(drug="呋塞米片", dose="40mg", route="口服", frequency="每日1次"),  # 20mg
                          Medication(drug="螺内酯", dose="20mg", route="口服", frequency="每日1次"),
                          Medication(drug="美托洛尔", dose="25mg", route="口服", frequency="每日2次"),  # not given
                          Medication(drug="NT-proBNP", dose="4500 pg/mL")],  # a test result
    )
    parsed = parse_templated(discharge, __import__("json").dumps(draft.output_json(), ensure_ascii=False))
    guarded, removals = guard_templated(parsed, RECORD)
    rules = sorted((r.rule_id, r.section) for r in removals)
    assert ("V7", "discharge_date") in rules and ("V7", "hospital_course") in rules
    assert ("M2", "discharge_orders") in rules and rules.count(("M1", "discharge_orders")) == 2
    assert guarded.items("discharge_date") == []
    assert "98" not in guarded.text("hospital_course") and "5月9日复查肌酐 120 μmol/L" in guarded.text("hospital_course")
    orders = guarded.items("discharge_orders")
    assert [m.as_text() for m in orders] == ["呋塞米片 口服 每日1次", "螺内酯 20mg 口服 每日1次"]  # the dose went
    assert [d.name for d in guarded.items("admission_diagnoses")] == ["慢性心力衰竭急性加重", "高血压心脏病"]
    review = review_templated(guarded, RECORD, evidence=RunEvidence(removals=tuple(removals)))
    assert not any(f.severity == "error" for f in review.findings), [f.message for f in review.findings]
    assert review.verdict == "warnings"  # the removals, each a finding the doctor sees


def test_the_guard_removes_a_finding_written_as_absent_that_the_record_states(discharge) -> None:
    first_course = TemplateCatalog().get("first_course")
    draft = _summary(first_course, key_results=[ExamItem(name="颈静脉怒张", value="无"),
                                                ExamItem(name="双下肢水肿", value="无"),
                                                ExamItem(name="NT-proBNP", value="4500", unit="pg/mL")])
    guarded, removals = guard_templated(draft, "查体:颈静脉怒张,无双下肢水肿。NT-proBNP 4500 pg/mL。")
    assert [(r.rule_id, r.text) for r in removals] == [("N1", "颈静脉怒张 无")]
    assert [i.as_text() for i in guarded.items("key_results")] == ["双下肢水肿 无", "NT-proBNP 4500 pg/mL"]


def test_the_review_flags_what_an_edit_puts_back_in_the_section_it_stands_in(discharge) -> None:
    edited = _summary(
        discharge,
        admission_condition="胸闷气促。BP 160/95mmHg,颈静脉怒张。",  # the record says 150/90
        hospital_course="予呋塞米利尿。无颈静脉怒张。",  # the record states it
        discharge_date=[DatedEvent(date="2024-05-15", event="出院")],
        discharge_diagnoses=[Diagnosis(name="慢性心力衰竭"), Diagnosis(name="肺癌")],
        discharge_orders=[Medication(drug="呋塞米片", dose="40mg", route="口服", frequency="每日1次")],
    )
    findings = {(f.rule_id, f.section, f.index) for f in review_templated(edited, RECORD).findings
                if f.severity == "error"}
    assert ("V1", "admission_condition", 1) in findings  # the second sentence of its own section
    assert ("N1", "hospital_course", 1) in findings
    assert ("V7", "discharge_date", 0) in findings
    assert ("M2", "discharge_orders", 0) in findings
    flagged = review_templated(edited, RECORD)
    v1 = next(f for f in flagged.findings if f.rule_id == "V1")
    assert edited.text("admission_condition")[v1.span[0]:v1.span[1]] == "BP 160/95mmHg"  # the span is the section's
    assert any(f.rule_id == "T4" and f.section == "discharge_diagnoses" and f.index == 1 for f in flagged.findings)
    assert not any(f.rule_id in ("S1", "S3", "S4", "V2") for f in flagged.findings)


def test_a_section_longer_than_its_template_allows_is_a_warning() -> None:
    handover = TemplateCatalog().get("handover")
    long = _summary(handover, current_status="胸闷减轻," * 20)
    assert any(f.rule_id == "L1" and f.section == "current_status" for f in review_templated(long, "胸闷减轻").findings)


def test_the_prompts_example_never_reaches_the_doctor(discharge) -> None:
    draft = _summary(discharge, hospital_course="予头孢曲松抗感染,第3天体温恢复正常。",
                     admission_diagnoses=[Diagnosis(name="社区获得性肺炎")])
    guarded, removals = guard_templated(draft, RECORD)
    assert guarded.text("hospital_course") == ABSENT and guarded.items("admission_diagnoses") == []
    assert {r.rule_id for r in removals} <= {"G3", "G4"} and removals


def test_parts_fuse_without_new_words(discharge) -> None:
    one = _summary(discharge, admission_date=[DatedEvent(date="2024-05-06", event="入院")],
                   hospital_course="予呋塞米利尿", discharge_diagnoses=[Diagnosis(name="慢性心力衰竭")])
    two = _summary(discharge, admission_date=[DatedEvent(date="2024-06-01", event="入院")],
                   hospital_course="5月9日复查肌酐 120 μmol/L。",
                   discharge_diagnoses=[Diagnosis(name="慢性心力衰竭"), Diagnosis(name="高血压心脏病")])
    fused = fuse_templated(discharge, [one, two])
    assert fused.text("hospital_course") == "予呋塞米利尿。5月9日复查肌酐 120 μmol/L。"
    assert [d.name for d in fused.items("discharge_diagnoses")] == ["慢性心力衰竭", "高血压心脏病"]
    assert [d.date for d in fused.items("admission_date")] == ["2024-05-06"]  # a one-item list keeps the first


def test_emr_text_and_exports_follow_the_template(discharge) -> None:
    summary = _summary(discharge, admission_date=[DatedEvent(date="2024-05-06", event="入院")],
                       discharge_diagnoses=[Diagnosis(name="慢性心力衰竭")],
                       discharge_orders=[Medication(drug="呋塞米片", dose="20mg", route="口服", frequency="每日1次")])
    text = summary.emr_text()
    assert text.startswith("【入院日期】2024-05-06 入院\n【出院日期】原文未记载\n")
    assert "【出院医嘱】\n呋塞米片 20mg 口服 每日1次\n" in text
    version = ExportedVersion(summary=summary)
    assert export(version, "txt").startswith(text) and "# 出院记录" in export(version, "md")
    bundle = to_fhir_bundle(version)
    composition = bundle["entry"][0]["resource"]
    assert composition["title"] == "出院记录" and composition["type"]["coding"][0]["code"] == "18842-5"
    codes = {s["title"]: s.get("code", {}).get("coding", [{}])[0].get("code") for s in composition["section"]}
    assert codes["诊疗经过"] == "8648-8" and codes["出院诊断"] == "11535-2" and codes["出院医嘱"] == "10183-2"
    assert codes["入院日期"] is None  # no LOINC section code: none given
    diagnosis_section = next(s for s in composition["section"] if s["title"] == "出院诊断")
    assert len(diagnosis_section["entry"]) == 1 and len(bundle["entry"]) == 2


def test_an_optional_section_with_nothing_is_left_out_of_the_emr_text(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDBRIEF_TEMPLATES_DIR", str(tmp_path))
    (tmp_path / "ward.toml").write_text('id = "ward"\nname = "病区"\nversion = "1"\nextends = "handover"\n'
                                        '[[sections]]\nid = "isolation"\nheading = "隔离"\nkind = "text"\n'
                                        'instructions = "隔离要求"\nrequired = false\n', encoding="utf-8")
    ward = TemplateCatalog().get("ward")
    assert "【隔离】" not in _summary(ward).emr_text() and "【待办】原文未记载" in _summary(ward).emr_text()
    assert "【隔离】接触隔离" in _summary(ward, isolation="接触隔离").emr_text()


def test_the_history_keeps_a_template_summary_with_the_template_it_was_written_with(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDBRIEF_TEMPLATES_DIR", str(tmp_path / "templates"))
    (tmp_path / "templates").mkdir()
    ward_file = tmp_path / "templates" / "ward.toml"
    ward_file.write_text('id = "ward"\nname = "病区交班"\nversion = "1"\nextends = "handover"\n'
                         '[rename]\nto_do = "待办事项"\n', encoding="utf-8")
    ward = TemplateCatalog().get("ward")
    summary = _summary(ward, diagnoses=[Diagnosis(name="慢性心力衰竭")], current_status="胸闷减轻。",
                       watch=[ExamItem(name="NT-proBNP", value="4500", unit="pg/mL")])
    document = Document(file_name="r.txt", text=RECORD, encoding="utf-8", sha256="a" * 64)
    store = HistoryStore.open(tmp_path / "history.sqlite")
    try:
        run = store.record_run(RunRecord(document=document, summary=summary, model={"file": "m.gguf"},
                                         prompt_version="templated+ward@1", timings={}, findings=[], icd=[],
                                         raw_output="{}", evidence=RunEvidence(), rejected=False), {})
        ward_file.write_text(ward_file.read_text(encoding="utf-8").replace("待办事项", "今日待办"), encoding="utf-8")
        assert TemplateCatalog().get("ward").content_hash != ward.content_hash  # the file changed since
        kept = stored_summary(store.versions(run.document_id)[-1].summary)
        assert isinstance(kept, TemplatedSummary) and kept.template == ward  # reopened as it was written
        assert "【待办事项】" in kept.emr_text()
        store.set_status(run.document_id, "signed", signer="王医生")
        exported = export_record(store, run.document_id, "md")
        assert "# 病区交班" in exported and "## 待办事项" in exported and "签署医生：王医生" in exported
        assert store.list_records()[0].diagnoses == "慢性心力衰竭"
        assert [r.document_id for r in store.list_records(diagnosis="慢性心力衰竭")] == [run.document_id]
    finally:
        store.close()
