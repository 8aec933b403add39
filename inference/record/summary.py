"""The structured summary: four sections, their headings, EMR rendering, and a doctor's lines read back."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from inference import limits
from inference.record.values import find_measurements

ABSENT = "原文未记载"
# What separates several diagnoses written in one entry ("A,B；C").
DIAGNOSIS_SEPARATORS = re.compile(r"[,，;；、\n]+")
# How a record states a diagnosis. Without any of these, a diagnosis in a summary is the model's own.
DIAGNOSIS_CUES = re.compile(r"诊断|印象|诊为|考虑为|确诊|拟诊")

# One place for the section names, in display order: (field, heading).
SECTIONS: list[tuple[str, str]] = [
    ("chief_complaint", "主诉"),
    ("present_illness", "现病史"),
    ("auxiliary_exams", "辅助检查"),
    ("diagnoses", "初步诊断"),
]
SECTION_HEADINGS: dict[str, str] = dict(SECTIONS)


class ExamItem(BaseModel):
    name: str = Field(..., min_length=1, max_length=80, description="检查项目名称，照原文抄写")
    value: str = Field(..., max_length=60, description="数值或结果，照原文抄写，不换算")
    unit: str = Field("", max_length=30, description="单位，照原文抄写；无单位为空字符串")

    def as_text(self) -> str:
        glued = self.unit[:1] in ("%", "℃", "×", "次", "岁") or not self.unit
        return f"{self.name} {self.value}{'' if glued else ' '}{self.unit}".strip()


class Diagnosis(BaseModel):
    name: str = Field(..., min_length=1, max_length=80, description="一个诊断名称，照原文抄写")


class StructuredSummary(BaseModel):
    chief_complaint: str = Field(..., max_length=300, description="主诉，照原文；原文没有写“原文未记载”")
    present_illness: str = Field(..., description="现病史，含既往史与查体要点，数值照原文；原文没有写“原文未记载”")
    auxiliary_exams: list[ExamItem] = Field(default_factory=list, description="辅助检查，每项一条")
    diagnoses: list[Diagnosis] = Field(default_factory=list, description="初步诊断，每条一个诊断")


def bounds_problem(summary: StructuredSummary) -> str | None:
    """Why a summary is beyond what a review takes (``limits``: a summary given to ``medbrief validate`` or
    pasted into the window), or None. A long record's fused summary stays far inside them."""
    text = len(summary.chief_complaint) + len(summary.present_illness)
    if len(summary.diagnoses) > limits.SUMMARY_DIAGNOSES:
        return f"诊断 {len(summary.diagnoses)} 条，上限 {limits.SUMMARY_DIAGNOSES}"
    if len(summary.auxiliary_exams) > limits.SUMMARY_EXAM_ITEMS:
        return f"检查 {len(summary.auxiliary_exams)} 项，上限 {limits.SUMMARY_EXAM_ITEMS}"
    if text > limits.SUMMARY_TEXT_CHARS:
        return f"正文 {text} 字，上限 {limits.SUMMARY_TEXT_CHARS}"
    return None


def section_text(summary: StructuredSummary, section: str) -> str:
    """A section's text as the EMR text writes it, without its heading: exams joined by ；, one diagnosis a line
    ("" when the section is empty)."""
    if section == "auxiliary_exams":
        return "；".join(item.as_text() for item in summary.auxiliary_exams)
    if section == "diagnoses":
        return "\n".join(d.name for d in summary.diagnoses)
    return str(getattr(summary, section))


def render_emr_text(summary: StructuredSummary) -> str:
    """The text doctors paste into the EMR: 【主诉】…【现病史】…【辅助检查】…【初步诊断】 one per line."""
    exams = section_text(summary, "auxiliary_exams") or ABSENT
    diagnoses = section_text(summary, "diagnoses") or ABSENT
    return (
        f"【主诉】{summary.chief_complaint or ABSENT}\n"
        f"【现病史】{summary.present_illness or ABSENT}\n"
        f"【辅助检查】{exams}\n"
        f"【初步诊断】\n{diagnoses}\n"
    )


def split_value_unit(text: str) -> tuple[str, str] | None:
    """``"4500 pg/mL"`` → ``("4500", "pg/mL")`` as written, when the whole text is one value with a known
    unit; None for anything else (a finding in words, a unit not in the units table)."""
    text = text.strip()
    found = find_measurements(text)
    if len(found) != 1 or found[0].start != 0 or found[0].end != len(text) or found[0].name:
        return None
    measurement = found[0]
    return text[:measurement.value_end].strip(), text[measurement.unit_start:].strip()


def exam_item_from_text(line: str) -> ExamItem:
    """Parse one 辅助检查 line as a doctor types it ("肌酐 138 μmol/L", "胸部CT 右下肺斑片影"), as written."""
    line = line.strip()
    name, _, rest = line.partition(" ")
    split = split_value_unit(rest)
    if split is None:
        found = find_measurements(line)
        if found and found[0].end == len(line) and found[0].value_start > 0:  # "LVEF 38%" or "LVEF38%"
            measurement = found[0]
            name, rest = line[:measurement.value_start].strip(" :："), line[measurement.value_start:]
            split = split_value_unit(rest)
    value, unit = split if split else (rest.strip(), "")
    return ExamItem(name=(name or line)[:80], value=value[:60], unit=unit[:30])
