"""The structured summary: four sections, the JSON schema that constrains generation, EMR rendering."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

ABSENT = "原文未记载"

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
    auxiliary_exams: list[ExamItem] = Field(default_factory=list, max_length=80, description="辅助检查，每项一条")
    diagnoses: list[Diagnosis] = Field(default_factory=list, max_length=30, description="初步诊断，每条一个诊断")


def generation_schema() -> dict[str, Any]:
    """The JSON schema the output grammar is built from (pydantic's, with titles dropped)."""
    schema = StructuredSummary.model_json_schema()
    return json.loads(json.dumps(schema), object_hook=_drop_titles)


def _drop_titles(node: dict[str, Any]) -> dict[str, Any]:
    """No titles or defaults; every property required, so the model states each section (possibly empty)."""
    node.pop("title", None)
    node.pop("default", None)
    if node.get("type") == "object" and "properties" in node:
        node["required"] = list(node["properties"])
    return node


def render_emr_text(summary: StructuredSummary) -> str:
    """The text doctors paste into the EMR: 【主诉】…【现病史】…【辅助检查】…【初步诊断】 one per line."""
    exams = "；".join(item.as_text() for item in summary.auxiliary_exams) or ABSENT
    diagnoses = "\n".join(d.name for d in summary.diagnoses) or ABSENT
    return (
        f"【主诉】{summary.chief_complaint or ABSENT}\n"
        f"【现病史】{summary.present_illness or ABSENT}\n"
        f"【辅助检查】{exams}\n"
        f"【初步诊断】\n{diagnoses}\n"
    )


def exam_item_from_text(line: str) -> ExamItem:
    """Parse one 辅助检查 line as a doctor types it ("肌酐 138 μmol/L", "胸部CT 右下肺斑片影")."""
    from inference.values import find_measurements

    line = line.strip()
    measurements = find_measurements(line)
    if measurements and measurements[0].end == len(line):
        measurement = measurements[0]
        name = line[:measurement.value_start].strip(" :：") or measurement.name
        return ExamItem(name=name[:80] or line[:80], value=measurement.value, unit=measurement.unit)
    name, _, rest = line.partition(" ")
    return ExamItem(name=name[:80], value=rest.strip()[:60], unit="")
