"""The draft holds only its record: no remnant of the prompt's example, no unit the record does not write, no
symptom passed off as a diagnosis. Each kind both ways, in the style of the sample record: the wrong draft loses
the statement (a finding quotes what the model wrote), the right one gets no finding."""

from __future__ import annotations

from inference.checks.findings import REJECTED
from inference.checks.validation import validate
from inference.record.evidence import RunEvidence
from inference.record.summary import Diagnosis, ExamItem, StructuredSummary
from inference.summary.draft_guard import guard_draft
from inference.summary.output_grammar import record_units, summary_gbnf
from tests.history_helpers import SAMPLE_SUMMARY


def _guarded(summary: StructuredSummary, record: str) -> tuple[StructuredSummary, list, object]:  # type: ignore[type-arg]
    guarded, removals, scopes = guard_draft(summary, record)
    return guarded, removals, validate(guarded, record, evidence=RunEvidence(scopes, tuple(removals)))


def _rules(removals) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.rule_id for r in removals]


# -- remnants of the prompt's example ------------------------------------------------------------------------


def test_a_paraphrased_piece_of_the_example_patient_is_removed(sample_text: str) -> None:
    drifted = SAMPLE_SUMMARY.model_copy(update={
        "present_illness": SAMPLE_SUMMARY.present_illness + "受凉后出现发热，伴咳嗽咳黄痰。",
        "auxiliary_exams": [*SAMPLE_SUMMARY.auxiliary_exams, ExamItem(name="胸部CT", value="右下肺斑片影", unit="")],
    })
    guarded, removals, report = _guarded(drifted, sample_text)
    assert guarded == SAMPLE_SUMMARY  # what the record says stays, word for word
    assert sorted(_rules(removals)) == ["G4", "G4", "G4"]
    assert {r.text for r in removals} == {"受凉后出现发热", "伴咳嗽咳黄痰", "胸部CT 右下肺斑片影"}
    shown = [f for f in report.findings if f.rule_id == "G4"]
    assert len(shown) == 3 and all("模型原文为" in f.message for f in shown)


def test_remnants_count_toward_the_refusal(sample_text: str) -> None:
    """A draft made mostly of the example's pieces is refused, even where none of them is a verbatim copy."""
    mostly_example = StructuredSummary(
        chief_complaint="反复胸闷气促3年,加重伴双下肢水肿1周",
        present_illness="受凉后出现发热，伴咳嗽咳黄痰。右下肺可闻及湿啰音。",
        auxiliary_exams=[ExamItem(name="胸部CT", value="右下肺斑片影", unit="")],
        diagnoses=[Diagnosis(name="高血压心脏病")])
    _guarded_summary, removals, report = _guarded(mostly_example, sample_text)
    assert "G4" in _rules(removals) and report.verdict == REJECTED


def test_a_record_that_shares_the_examples_words_keeps_them() -> None:
    record = ("患者男，30岁，因“发热咳嗽3天”入院。3天前受凉后出现发热，伴咳嗽咳黄痰。查体：T 38.9℃。\n"
              "辅助检查：胸部CT示右下肺斑片影。\n诊断：社区获得性肺炎。")
    right = StructuredSummary(chief_complaint="发热咳嗽3天", present_illness="3天前受凉后出现发热，伴咳嗽咳黄痰。查体：T 38.9℃。",
                              auxiliary_exams=[ExamItem(name="胸部CT", value="右下肺斑片影", unit="")],
                              diagnoses=[Diagnosis(name="社区获得性肺炎")])
    guarded, removals, report = _guarded(right, record)
    assert guarded == right and removals == [] and report.verdict != REJECTED


# -- units the record does not write ---------------------------------------------------------------------------

UNIT_RECORD = ("患者女，56岁，因“乏力1月”入院。\n辅助检查：血红蛋白 78g/L，白细胞 5.2×10^9/L，ALT 20U/L，尿蛋白(-)。\n"
               "诊断：缺铁性贫血。")
UNIT_RIGHT = StructuredSummary(
    chief_complaint="乏力1月", present_illness="乏力1月。",
    auxiliary_exams=[ExamItem(name="血红蛋白", value="78", unit="g/L"), ExamItem(name="白细胞", value="5.2", unit="×10^9/L"),
                     ExamItem(name="ALT", value="20", unit="U/L"), ExamItem(name="尿蛋白", value="(-)", unit="")],
    diagnoses=[Diagnosis(name="缺铁性贫血")])


def test_a_unit_the_record_does_not_write_is_taken_off_and_flagged() -> None:
    drifted = UNIT_RIGHT.model_copy(update={"auxiliary_exams": [
        ExamItem(name="血红蛋白", value="78g/L", unit="×10^9/L"), UNIT_RIGHT.auxiliary_exams[1],
        ExamItem(name="ALT", value="20U/L", unit="×10^3/L"), ExamItem(name="尿蛋白", value="(-)", unit="×10^3/L")]})
    report = validate(drifted, UNIT_RECORD)  # as a doctor would see it unguarded
    v5 = [f for f in report.findings if f.rule_id == "V5"]
    assert [f.index for f in v5] == [0, 2, 3] and all(f.severity == "error" for f in v5)
    assert v5[0].suggestion == "原文为 78g/L" and v5[2].suggestion == "删去单位，写“尿蛋白 (-)”"
    guarded, removals, guarded_report = _guarded(drifted, UNIT_RECORD)
    assert [i.as_text() for i in guarded.auxiliary_exams] == [i.as_text() for i in UNIT_RIGHT.auxiliary_exams]
    assert _rules(removals) == ["U1", "U1", "U1"] and "×10^9/L" in removals[0].reason
    assert not [f for f in guarded_report.findings if f.rule_id in ("V1", "V5")]


def test_units_as_the_record_writes_them_get_no_finding() -> None:
    guarded, removals, report = _guarded(UNIT_RIGHT, UNIT_RECORD)
    assert guarded == UNIT_RIGHT and removals == []
    assert not [f for f in report.findings if f.rule_id in ("V1", "V4", "V5")]


def test_the_grammar_offers_an_exam_item_only_the_units_of_its_part() -> None:
    units = record_units(UNIT_RECORD)
    assert units == ("岁", "g/L", "×10^9/L", "U/L")
    rule = next(line for line in summary_gbnf(units).splitlines() if line.startswith("ExamItem-unit ::="))
    assert '"\\"g/L\\""' in rule and '"\\"\\""' in rule  # the record's units as written, and none
    assert "×10^3/L" not in rule and "mg/L" not in rule
    assert "\\u" not in rule  # as the record writes them: μ is one character, not a JSON escape
    unbounded = next(line for line in summary_gbnf().splitlines() if line.startswith("ExamItem-unit ::="))
    assert "|" not in unbounded  # without a record: any text, as before


# -- symptoms written as diagnoses --------------------------------------------------------------------------

STROKE = ("患者男，70岁，因“头痛伴左侧肢体无力进行性加重2天”入院。2天前出现头痛，左侧肢体无力。\n"
          "头颅CT示右侧基底节区低密度影。\n初步诊断：脑梗死，高血压病3级。")


def test_a_complaint_in_the_diagnoses_is_taken_out_and_never_coded() -> None:
    drifted = StructuredSummary(chief_complaint="头痛伴左侧肢体无力进行性加重2天", present_illness="2天前出现头痛，左侧肢体无力。",
                                auxiliary_exams=[], diagnoses=[Diagnosis(name="头痛伴左侧肢体无力进行性加重2天"),
                                                               Diagnosis(name="脑梗死"), Diagnosis(name="头痛")])
    report = validate(drifted, STROKE)
    assert sorted(f.index for f in report.findings if f.rule_id == "D1") == [0, 2]  # a doctor's typing: flagged
    guarded, removals, _report = _guarded(drifted, STROKE)
    assert [d.name for d in guarded.diagnoses] == ["脑梗死"]  # the pipeline codes what is left: not R51
    assert {r.text for r in removals if r.rule_id == "G5"} == {"头痛伴左侧肢体无力进行性加重2天", "头痛"}


def test_a_symptom_the_record_states_as_a_diagnosis_stays() -> None:
    record = "患者女，40岁，因“头痛3天”就诊。\n诊断：1. 头痛待查 2. 高血压病。"
    right = StructuredSummary(chief_complaint="头痛3天", present_illness="头痛3天。", auxiliary_exams=[],
                              diagnoses=[Diagnosis(name="头痛待查"), Diagnosis(name="高血压病")])
    guarded, removals, report = _guarded(right, record)
    assert guarded == right and removals == [] and not [f for f in report.findings if f.rule_id == "D1"]


def test_the_sample_records_right_summary_meets_none_of_these_rules(sample_text: str) -> None:
    guarded, removals, report = _guarded(SAMPLE_SUMMARY, sample_text)
    assert guarded == SAMPLE_SUMMARY and removals == []
    assert not [f for f in report.findings if f.rule_id in ("G4", "G5", "U1", "V5", "D1")]


# -- durations -------------------------------------------------------------------------------------------------


def test_a_duration_the_record_does_not_write_is_an_error(sample_text: str) -> None:
    altered = SAMPLE_SUMMARY.model_copy(update={"chief_complaint": "反复胸闷气促7年,加重伴双下肢水肿1周"})
    findings = [f for f in validate(altered, sample_text).findings if f.rule_id == "V6"]
    assert len(findings) == 1 and findings[0].severity == "error" and "7年" in findings[0].message
    assert altered.chief_complaint[slice(*findings[0].span)] == "7年"


def test_a_duration_written_in_chinese_numerals_in_the_record_matches_digits() -> None:
    record = "主诉：发热两天，咳嗽一周。既往高血压十余年。\n初步诊断：上呼吸道感染"
    summary = StructuredSummary(chief_complaint="发热2天，咳嗽1周", present_illness="既往高血压10余年。",
                                auxiliary_exams=[], diagnoses=[Diagnosis(name="上呼吸道感染")])
    assert not [f for f in validate(summary, record).findings if f.rule_id == "V6"]
    wrong = summary.model_copy(update={"present_illness": "既往高血压20余年。"})
    assert [f.rule_id for f in validate(wrong, record).findings if f.rule_id == "V6"] == ["V6"]
