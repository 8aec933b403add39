"""Negation and certainty in every section: a flipped or dropped 无 / 否认 / 未闻及 / 阴性, or 待排 written as
certain, is an error; the correct summary gets no such finding. Sentences are written in the style of the
sample record and of IMCS-MRG reports (CMB-Clin stays a benchmark)."""

from __future__ import annotations

import pytest

from inference.checks.findings import ERROR
from inference.checks.validation import validate
from inference.record.polarity import compare, terms_of
from inference.record.summary import Diagnosis, ExamItem, StructuredSummary
from tests.history_helpers import SAMPLE_SUMMARY

WARD_RECORD = (
    '患者男,68岁,因"反复胸闷气促3年,加重1周"入院。\n'
    "现病史:3年前无明显诱因出现胸闷、气促,活动后加重,伴双下肢水肿。1周前受凉后症状加重,夜间不能平卧,"
    "无发热,无胸痛,无咯血。\n"
    "既往史:高血压病史15年,否认糖尿病、慢性肾病史,否认药物过敏史。\n"
    "体格检查:BP 150/90mmHg,颈静脉怒张,双肺未闻及干湿啰音,HR 98次/分,律齐,腹软,无压痛,双下肢凹陷性水肿。\n"
    "辅助检查:尿蛋白阴性,隐血(+)。胸片示:心影增大。\n"
    "初步诊断:慢性心力衰竭急性加重;高血压病3级;肺结核待排。\n"
)
CORRECT = StructuredSummary(
    chief_complaint="反复胸闷气促3年,加重1周",
    present_illness="3年前无明显诱因出现胸闷、气促,活动后加重,伴双下肢水肿。1周前受凉后症状加重,夜间不能平卧,"
                    "无发热,无胸痛,无咯血。高血压病史15年,否认糖尿病、慢性肾病史。查体:BP 150/90mmHg,颈静脉怒张,"
                    "双肺未闻及干湿啰音,HR 98次/分,双下肢凹陷性水肿。",
    auxiliary_exams=[ExamItem(name="尿蛋白", value="阴性", unit=""), ExamItem(name="隐血", value="(+)", unit=""),
                     ExamItem(name="胸片", value="心影增大", unit="")],
    diagnoses=[Diagnosis(name="慢性心力衰竭急性加重"), Diagnosis(name="高血压病3级"), Diagnosis(name="肺结核待排")],
)


def _with(**changes) -> StructuredSummary:
    return CORRECT.model_copy(update=changes)


def _polarity_findings(summary: StructuredSummary, record: str = WARD_RECORD) -> list[tuple[str, str]]:
    return [(f.rule_id, f.section) for f in validate(summary, record).findings if f.rule_id in ("N1", "N2")]


def test_the_correct_summary_has_no_polarity_finding() -> None:
    assert _polarity_findings(CORRECT) == []


def test_the_sample_records_summary_has_no_polarity_finding(sample_text: str) -> None:
    assert _polarity_findings(SAMPLE_SUMMARY, sample_text) == []


@pytest.mark.parametrize(("written", "flipped"), [
    ("颈静脉怒张", "无颈静脉怒张"),
    ("双肺未闻及干湿啰音", "双肺可闻及干湿啰音"),
    ("无发热,无胸痛", "发热,无胸痛"),
    ("否认糖尿病、慢性肾病史", "有糖尿病、慢性肾病史"),
    ("伴双下肢水肿", "不伴双下肢水肿"),
])
def test_a_negation_flipped_or_dropped_in_the_present_illness_is_an_error(written: str, flipped: str) -> None:
    assert written in CORRECT.present_illness
    findings = [f for f in validate(_with(present_illness=CORRECT.present_illness.replace(written, flipped)),
                                    WARD_RECORD).findings if f.rule_id == "N1"]
    assert len(findings) == 1 and findings[0].severity == ERROR and findings[0].section == "present_illness"
    assert findings[0].source_spans and findings[0].source_spans[0].text in WARD_RECORD
    start, end = findings[0].span
    assert flipped.lstrip("无有不伴否认未见") and CORRECT.present_illness.replace(written, flipped)[start:end]


def test_a_flipped_negation_in_the_chief_complaint_is_an_error() -> None:
    record = '患儿男,3岁,因"发热2天,无咳嗽"就诊。2天前出现发热,最高体温39.0℃,无咳嗽,无腹泻。'
    summary = StructuredSummary(chief_complaint="发热2天,咳嗽", present_illness="2天前出现发热,最高体温39.0℃。",
                                auxiliary_exams=[], diagnoses=[])
    assert ("N1", "chief_complaint") in _polarity_findings(summary, record)


def test_a_negative_lab_written_as_positive_is_an_error_and_the_reverse() -> None:
    positive = _with(auxiliary_exams=[ExamItem(name="尿蛋白", value="(+)", unit=""), *CORRECT.auxiliary_exams[1:]])
    assert _polarity_findings(positive) == [("N1", "auxiliary_exams")]
    negative = _with(auxiliary_exams=[CORRECT.auxiliary_exams[0], ExamItem(name="隐血", value="阴性", unit=""),
                                      CORRECT.auxiliary_exams[2]])
    assert _polarity_findings(negative) == [("N1", "auxiliary_exams")]


def test_an_uncertain_diagnosis_written_as_certain_is_an_error_and_the_reverse() -> None:
    certain = _with(diagnoses=[*CORRECT.diagnoses[:2], Diagnosis(name="肺结核")])
    assert _polarity_findings(certain) == [("N2", "diagnoses")]
    doubted = _with(diagnoses=[Diagnosis(name="疑似慢性心力衰竭急性加重"), *CORRECT.diagnoses[1:]])
    assert _polarity_findings(doubted) == [("N2", "diagnoses")]


def test_a_trigger_denied_does_not_deny_the_symptom_that_follows() -> None:
    """无明显诱因出现胸闷: the trigger is denied, the 胸闷 is present."""
    terms = {t.text: t.polarity.negated for t in terms_of("3年前无明显诱因出现胸闷、气促")}
    assert terms["胸闷"] is False and terms["气促"] is False
    assert terms_of("无发热、咳嗽、咳痰")[1].polarity.negated  # a cue rules the whole 、 list


def test_a_record_that_says_both_leaves_the_term_to_the_doctor() -> None:
    record = "入院时无发热。住院第3天出现发热,体温38.5℃。"
    disagreements, undecided = compare("发热", record, near=[])
    assert disagreements == [] and undecided == 1
    report = validate(StructuredSummary(chief_complaint="发热", present_illness="住院第3天出现发热,体温38.5℃。",
                                        auxiliary_exams=[], diagnoses=[]), record)
    assert report.unchecked == 1 and not [f for f in report.findings if f.rule_id == "N1"]


def test_a_cue_inside_the_term_counts_双下肢无水肿_denies_双下肢水肿() -> None:
    record = "查体:双肺呼吸音清,双下肢无水肿,腹部未触及包块。"
    dropped = StructuredSummary(chief_complaint="原文未记载", present_illness="查体:双肺呼吸音清,双下肢水肿。",
                                auxiliary_exams=[], diagnoses=[])
    assert _polarity_findings(dropped, record) == [("N1", "present_illness")]
    kept = dropped.model_copy(update={"present_illness": "查体:双肺呼吸音清,双下肢无水肿,腹部未触及包块。"})
    assert _polarity_findings(kept, record) == []
    found = dropped.model_copy(update={"present_illness": "腹部触及包块。"})
    assert _polarity_findings(found, record) == [("N1", "present_illness")]
