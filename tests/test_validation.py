"""Validation: every rule with positive and negative cases, adversarial input, and single corruptions of
the sample summary that must each produce exactly the right finding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inference.checks.findings import ERROR, ValidationReport
from inference.checks.validation import validate
from inference.record.summary import Diagnosis, ExamItem, StructuredSummary
from inference.record.values import find_measurements, implausible
from tests.conftest import REPO_ROOT, SAMPLE_RECORD

SOURCE = SAMPLE_RECORD.read_text(encoding="utf-8")
PRESENT_ILLNESS = ("既往高血压病史15年,冠心病行PCI术后5年。查体:BP 150/90mmHg,颈静脉怒张,双肺底湿啰音,"
                   "心界向左扩大,HR 98次/分,律齐,肝肋下3cm,双下肢凹陷性水肿。")
EXAMS = [("NT-proBNP", "4500", "pg/mL"), ("LVEF", "38", "%"), ("肌酐", "138", "μmol/L")]
DIAGNOSES = ["慢性心力衰竭急性加重", "高血压心脏病", "肾功能不全"]


def summary(
    chief: str = "反复胸闷气促3年,加重伴双下肢水肿1周",
    illness: str = PRESENT_ILLNESS,
    exams: list[tuple[str, str, str]] | None = None,
    diagnoses: list[str] | None = None,
) -> StructuredSummary:
    return StructuredSummary(
        chief_complaint=chief,
        present_illness=illness,
        auxiliary_exams=[ExamItem(name=n, value=v, unit=u) for n, v, u in (EXAMS if exams is None else exams)],
        diagnoses=[Diagnosis(name=d) for d in (DIAGNOSES if diagnoses is None else diagnoses)],
    )


def rules(report: ValidationReport) -> list[str]:
    return [f.rule_id for f in report.findings]


def test_the_correct_sample_summary_has_no_error_level_finding() -> None:
    report = validate(summary(), SOURCE)
    assert not report.has_errors
    assert rules(report) == []
    assert all(s.support >= 0.9 for s in report.statements)


@pytest.mark.parametrize(
    ("corrupted", "rule", "severity", "section"),
    [
        (summary(exams=[EXAMS[0], ("LVEF", "48", "%"), EXAMS[2]]), "V1", "error", "auxiliary_exams"),
        (summary(exams=EXAMS[:2]), "V2", "warning", "auxiliary_exams"),
        (summary(diagnoses=["心梗", *DIAGNOSES[1:]]), "T1", "error", "diagnoses"),
        (summary(illness=PRESENT_ILLNESS.replace("150/90", "350/90")), "V3", "error", "present_illness"),
        (summary(diagnoses=[*DIAGNOSES[:2], "肾亏"]), "T1", "error", "diagnoses"),
        (summary(illness=PRESENT_ILLNESS.replace("PCI术后", "支架植入后")), "F1", "warning", "present_illness"),
        (summary(diagnoses=["慢性心力衰竭急性加重,高血压心脏病", "肾功能不全"]), "S2", "error", "diagnoses"),
        (summary(chief=""), "S1", "error", "chief_complaint"),
    ],
    ids=["altered-value", "dropped-lab", "xingeng", "systolic-350", "shenkui", "paraphrase", "two-in-one", "no-chief"],
)
def test_each_single_corruption_gives_exactly_the_right_finding(
    corrupted: StructuredSummary, rule: str, severity: str, section: str
) -> None:
    report = validate(corrupted, SOURCE)
    assert rules(report) == [rule], [f.message for f in report.findings]
    finding = report.findings[0]
    assert (finding.severity, finding.section) == (severity, section)
    assert finding.message


def test_altered_value_points_to_the_original() -> None:
    finding = validate(summary(exams=[EXAMS[0], ("LVEF", "48", "%"), EXAMS[2]]), SOURCE).findings[0]
    assert finding.suggestion == "原文为 38%"
    assert finding.source_spans and SOURCE[finding.source_spans[0].start:finding.source_spans[0].end] == "LVEF 38%"
    assert finding.index == 1


def test_nonstandard_term_suggests_the_standard_one() -> None:
    finding = validate(summary(diagnoses=["心梗", *DIAGNOSES[1:]]), SOURCE).findings[0]
    assert finding.suggestion == "心肌梗死"
    assert finding.span == (0, 2)


def test_nonstandard_term_that_the_source_uses_is_only_a_warning() -> None:
    source = SOURCE.replace("慢性心力衰竭急性加重", "心衰急性加重")
    report = validate(summary(diagnoses=["心衰急性加重", *DIAGNOSES[1:]]), source)
    assert rules(report) == ["T1"] and report.findings[0].severity == "warning"
    assert report.findings[0].suggestion == "心力衰竭急性加重"


def test_negated_diagnosis_asserted_by_the_summary_is_an_error() -> None:
    source = SOURCE.replace("既往高血压病史15年", "既往高血压病史15年,否认糖尿病史")
    report = validate(summary(diagnoses=[*DIAGNOSES, "糖尿病"]), source)
    assert rules(report) == ["T2"]
    assert "否认糖尿病史" in report.findings[0].message
    assert SOURCE.replace("既往高血压病史15年", "既往高血压病史15年,否认糖尿病史")[
        report.findings[0].source_spans[0].start:report.findings[0].source_spans[0].end] == "否认糖尿病史"


def test_negation_does_not_fire_when_the_record_also_asserts_the_diagnosis() -> None:
    source = SOURCE.replace("既往高血压病史15年", "否认糖尿病史。糖尿病10年")
    report = validate(summary(diagnoses=[*DIAGNOSES, "糖尿病"]), source)
    assert "T2" not in rules(report)


def test_empty_summary_reports_missing_sections_and_omitted_values() -> None:
    report = validate(StructuredSummary(chief_complaint="", present_illness="", auxiliary_exams=[], diagnoses=[]), SOURCE)
    assert rules(report).count("S1") == 2
    assert "S4" in rules(report)  # lists stated absent although the record has them
    omitted = [f for f in report.findings if f.rule_id == "V2"]
    assert len(omitted) == 1 and len(omitted[0].details) == 5  # five omitted key values: one finding, listed
    assert report.has_errors


def test_explicitly_absent_sections_are_fine_when_the_source_lacks_them() -> None:
    source = '患者女,30岁,因"咳嗽2天"就诊。2天前受凉后咳嗽,无发热。'
    report = validate(StructuredSummary(chief_complaint="咳嗽2天", present_illness="2天前受凉后咳嗽,无发热。",
                                        auxiliary_exams=[], diagnoses=[]), source)
    assert rules(report) == []


def test_source_with_no_numbers_flags_a_summary_value_as_invented() -> None:
    source = '患者因"头痛1天"就诊。无发热。'
    report = validate(StructuredSummary(chief_complaint="头痛1天", present_illness="头痛1天,T 38.5℃。",
                                        auxiliary_exams=[], diagnoses=[]), source)
    assert rules(report) == ["V1"]


def test_value_split_across_lines_and_full_width_digits_still_match() -> None:
    source = "辅助检查：肌酐\n１３８ μmol/L，ＬＶＥＦ ３８％。"
    report = validate(StructuredSummary(chief_complaint="原文未记载", present_illness="原文未记载",
                                        auxiliary_exams=[ExamItem(name="肌酐", value="138", unit="μmol/L"),
                                                         ExamItem(name="LVEF", value="38", unit="%")],
                                        diagnoses=[]), source)
    assert [r for r in rules(report) if r.startswith("V")] == []


def test_mixed_units_are_not_the_same_value() -> None:
    report = validate(summary(exams=[EXAMS[0], EXAMS[1], ("肌酐", "138", "mg/dL")]), SOURCE)
    assert rules(report) == ["V3"]  # 138 mg/dL is not physiological (≈12,200 μmol/L) and not the record's value
    report = validate(summary(exams=[EXAMS[0], EXAMS[1], ("肌酐", "1.56", "mg/dL")]), SOURCE)
    assert rules(report) == ["V1"]  # converted, not copied as written
    assert report.findings[0].suggestion == "原文为 138 μmol/L"


def test_a_value_occurring_twice_in_the_source_is_matched_once() -> None:
    source = SOURCE.replace("律齐", "律齐,复测HR 98次/分")
    assert rules(validate(summary(), source)) == []


def test_value_without_unit_is_flagged_with_the_written_form() -> None:
    report = validate(summary(exams=[("NT-proBNP", "4500", ""), *EXAMS[1:]]), SOURCE)
    assert rules(report) == ["V4"]
    assert report.findings[0].suggestion == "原文为 4500 pg/mL"


@pytest.mark.parametrize(
    ("text", "bad"),
    [("BP 350/90mmHg", True), ("BP 150/90mmHg", False), ("BP 20/12kPa", False), ("BP 45/12kPa", True),
     ("HR 310次/分", True), ("T 37.8℃", False), ("T 46℃", True), ("SpO2 101%", True), ("LVEF 120%", True),
     ("WBC 5.0×109/L", False), ("肌酐 138 μmol/L", False), ("肌酐 138 mg/dL", True), ("年龄 140岁", True)],
)
def test_physiological_limits_are_unit_aware(text: str, bad: bool) -> None:
    measurements = find_measurements(text)
    assert len(measurements) == 1
    assert (implausible(measurements[0]) is not None) == bad


def test_flattened_exponent_unit_is_read_as_ten_to_the_ninth() -> None:
    (measurement,) = find_measurements("WBC 5.0×109/L")
    assert (measurement.value, measurement.unit, measurement.parameter) == ("5.0", "×10^9/L", "wbc")


def test_unsupported_statement_is_flagged_with_no_other_rule() -> None:
    report = validate(summary(illness=PRESENT_ILLNESS + "患者长期吸烟饮酒。"), SOURCE)
    assert "G1" in rules(report) or "F1" in rules(report)
    assert not report.has_errors


def test_content_outside_the_template_is_flagged() -> None:
    report = validate(summary(illness=PRESENT_ILLNESS + "建议:低盐饮食。"), SOURCE)
    assert "S3" in rules(report)


def test_every_statement_is_linked_to_source_spans() -> None:
    report = validate(summary(), SOURCE)
    sections = {s.section for s in report.statements}
    assert sections == {"chief_complaint", "present_illness", "auxiliary_exams", "diagnoses"}
    for statement in report.statements:
        assert statement.sources, statement.text
        span = statement.sources[0]
        assert SOURCE[span.start:span.end] == span.text
    lvef = next(s for s in report.statements if s.text.startswith("LVEF"))
    assert lvef.sources[0].text == "LVEF 38%"


def _run_validate(tmp_path: Path, payload: object) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(payload, ensure_ascii=False) if not isinstance(payload, str) else payload,
                    encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "inference", "validate", str(path), "--source", str(SAMPLE_RECORD),
                           "--json"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)


def test_cli_validate_exit_code_tells_whether_an_error_exists(tmp_path: Path) -> None:
    good = _run_validate(tmp_path, summary().model_dump())
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["counts"][ERROR] == 0
    bad = _run_validate(tmp_path, summary(diagnoses=["心梗"]).model_dump())
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["findings"][0]["rule_id"] == "T1"


@pytest.mark.parametrize("payload", ["{not json", {"chief_complaint": 3}])
def test_cli_validate_refuses_a_malformed_summary_in_one_line(tmp_path: Path, payload: object) -> None:
    proc = _run_validate(tmp_path, payload)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_diagnoses_in_a_summary_of_a_record_that_states_none_are_flagged() -> None:
    source = '患者女,30岁,因"咳嗽2天"就诊。2天前受凉后咳嗽,无发热。'
    report = validate(StructuredSummary(chief_complaint="咳嗽2天", present_illness="2天前受凉后咳嗽,无发热。",
                                        auxiliary_exams=[], diagnoses=[Diagnosis(name="上呼吸道感染")]), source)
    assert rules(report) == ["G2"] and report.findings[0].severity == "error"


def test_summarizer_removes_diagnoses_the_record_never_states(demo_engine) -> None:
    from inference.summary.summarizer import summarize

    record = '患者女,30岁,因"咳嗽2天"就诊。2天前受凉后咳嗽,咳白痰,无发热。查体:T 36.8℃,双肺呼吸音清。'
    result = summarize(demo_engine, record)
    assert result.summary.diagnoses == []
    assert not [f for f in validate(result.summary, record).findings if f.rule_id == "G2"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [("肌酐 138 umol/L", ("肌酐", "138", "umol/L")), ("WBC 5.0×109/L", ("WBC", "5.0", "×109/L")),
     ("cTnI ＜0.01 ng/mL", ("cTnI", "＜0.01", "ng/mL")), ("LVEF38%", ("LVEF", "38", "%")),
     ("胸部CT 右下肺斑片影", ("胸部CT", "右下肺斑片影", "")), ("血沉 20 mm/h", ("血沉", "20 mm/h", ""))],
)
def test_an_edited_exam_line_keeps_value_and_unit_exactly_as_written(line: str, expected: tuple[str, str, str]) -> None:
    from inference.record.summary import exam_item_from_text

    item = exam_item_from_text(line)
    assert (item.name, item.value, item.unit) == expected
    assert item.as_text().replace(" ", "") == line.replace(" ", "")


def test_a_name_glued_to_its_value_is_not_read_as_part_of_the_number() -> None:
    (measurement,) = find_measurements("LVEF38%")
    assert (measurement.name, measurement.value, measurement.parameter) == ("LVEF", "38", "lvef")
