"""A summary written with a template: each section's content in the shape of its kind, the EMR text with the
template's headings, and the JSON the history and the exports keep."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import BaseModel, Field

from inference.record.summary import (
    ABSENT,
    Diagnosis,
    ExamItem,
    StructuredSummary,
    exam_item_from_text,
    render_emr_text,
    section_text,
)
from inference.templates.spec import SectionSpec, SummaryTemplate


class Medication(BaseModel):
    drug: str = Field(..., min_length=1, max_length=60)
    dose: str = Field("", max_length=40)
    route: str = Field("", max_length=20)
    frequency: str = Field("", max_length=30)

    def as_text(self) -> str:
        return " ".join(part for part in (self.drug, self.dose, self.route, self.frequency) if part.strip())


class DatedEvent(BaseModel):
    date: str = Field(..., min_length=1, max_length=40)
    event: str = Field("", max_length=60)

    def as_text(self) -> str:
        return self.date if not self.event.strip() else f"{self.date} {self.event}"


# What a JSON escape can put in a string that no record line holds (\b, \f, \u0000): never shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
ITEM_MODELS: dict[str, type[BaseModel]] = {
    "values": ExamItem, "diagnoses": Diagnosis, "medications": Medication, "dates": DatedEvent,
}
Item = Union[ExamItem, Diagnosis, Medication, DatedEvent]
Content = Union[str, list[Item]]


def item_text(item: BaseModel) -> str:
    return item.name if isinstance(item, Diagnosis) else item.as_text()  # type: ignore[attr-defined]


@dataclass
class TemplatedSummary:
    template: SummaryTemplate
    sections: dict[str, Content] = field(default_factory=dict)

    def content(self, section_id: str) -> Content:
        spec = self.template.section(section_id)
        return self.sections.get(section_id, ABSENT if spec.kind == "text" else [])

    def items(self, section_id: str) -> list[Item]:
        content = self.content(section_id)
        return content if isinstance(content, list) else []

    def text(self, section_id: str) -> str:
        """A section as the EMR text writes it, without its heading ("" for an empty list)."""
        content = self.content(section_id)
        if isinstance(content, str):
            return content
        joiner = "\n" if self.template.section(section_id).kind in ("diagnoses", "medications") else "；"
        return joiner.join(item_text(item) for item in content)

    def diagnoses(self) -> list[str]:
        """Every diagnosis of every diagnoses section, once, in order: what the ICD panel codes."""
        names: list[str] = []
        for spec in self.template.sections:
            if spec.kind == "diagnoses":
                names += [d.name for d in self.items(spec.id) if isinstance(d, Diagnosis) and d.name not in names]
        return names

    def emr_text(self) -> str:
        """【标题】内容 one section a line; diagnoses and medications one a line under their heading, as 初步诊断
        is written today. A required section the record does not support says 原文未记载; an optional one is left
        out."""
        lines = []
        for spec in self.template.sections:
            text = self.text(spec.id) or ABSENT
            if text == ABSENT and not spec.required:
                continue
            multiline = spec.kind in ("diagnoses", "medications")
            lines.append(f"【{spec.heading}】" + ("\n" if multiline else "") + text)
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        return {"template": self.template.identity(), "sections": [
            {"id": spec.id, "heading": spec.heading, "kind": spec.kind, "content": dumped(self.content(spec.id))}
            for spec in self.template.sections]}

    def four_sections(self) -> FourSectionView:
        return FourSectionView.of(self)

    def stored(self) -> dict[str, Any]:
        """As the history keeps it: the sections and the whole template they were written with, so that the
        record reopens with that template even after its file changed."""
        return {"template": {**self.template.identity(), "content": self.template.model_dump(mode="json")},
                "sections": self.as_dict()["sections"]}

    def output_json(self) -> dict[str, Any]:
        """The summary as the model writes it: section id → content."""
        return {spec.id: dumped(self.content(spec.id)) for spec in self.template.sections}

    @classmethod
    def from_dict(cls, template: SummaryTemplate, data: dict[str, Any]) -> TemplatedSummary:
        """A summary kept by ``as_dict`` (or the model's JSON, keyed by section id), read with ``template``."""
        by_id = {s["id"]: s["content"] for s in data.get("sections", [])} if "sections" in data else data
        return cls(template, {spec.id: content_of(spec, by_id.get(spec.id)) for spec in template.sections})


def dumped(content: Content) -> Any:
    """A section's content as JSON: text as it is, items as dicts."""
    return content if isinstance(content, str) else [item.model_dump() for item in content]


def content_of(spec: SectionSpec, raw: Any) -> Content:
    """A section's content from JSON: text stripped (empty → 原文未记载), list items validated, blank ones and
    repeats dropped. Raises ValueError on a shape that is not the kind's."""
    if spec.kind == "text":
        if raw is None:
            return ABSENT
        if not isinstance(raw, str):
            raise ValueError(f"{spec.heading} 应为文本")
        return _CONTROL.sub("", raw).strip() or ABSENT
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{spec.heading} 应为列表")
    model, items, seen = ITEM_MODELS[spec.kind], [], set()
    for entry in raw:
        if isinstance(entry, dict):
            entry = {key: _CONTROL.sub("", value) if isinstance(value, str) else value for key, value in entry.items()}
        item = model.model_validate(entry)
        text = item_text(item).strip()
        if text and text != ABSENT and text not in seen:
            seen.add(text)
            items.append(item)
    return items


def item_from_line(kind: str, line: str) -> Item:
    """One item of a list section as a doctor types it, one a line: an exam as 项目 数值 单位, a diagnosis, a
    medication as 药名 剂量 途径 频次 and a date as 日期 事件 (separated by spaces)."""
    line = line.strip()
    words = line.split()
    if kind == "values":
        return exam_item_from_text(line)
    if kind == "diagnoses":
        return Diagnosis(name=line[:80])
    if kind == "medications":
        return Medication(drug=words[0][:60], dose=" ".join(words[1:2])[:40], route=" ".join(words[2:3])[:20],
                          frequency=" ".join(words[3:])[:30])
    return DatedEvent(date=words[0][:40], event=" ".join(words[1:])[:60])


def example_content(spec: SectionSpec) -> Content:
    """A section's ``example`` as its content (the prompt's example exchange): a list's items one a line or
    separated by ；."""
    example = (spec.example or "").strip()
    if spec.kind == "text":
        return example or ABSENT
    lines = [line.strip() for line in example.replace("；", "\n").splitlines() if line.strip() not in ("", ABSENT)]
    return content_of(spec, [item_from_line(spec.kind, line).model_dump() for line in lines])


def diagnosis_names(summary: AnySummary) -> list[str]:
    """Every diagnosis of a summary, in order: what the ICD panel codes."""
    return summary.diagnoses() if isinstance(summary, TemplatedSummary) else [d.name for d in summary.diagnoses]


@dataclass(frozen=True)
class FourSectionView:
    """A template's summary as the four sections' code sees it: every text section one after the other as 现病史
    (a line each), every values item as 辅助检查, every diagnosis as 初步诊断. The review runs its rules on it,
    the history indexes its values and measures its edits on it. ``text_starts``: (offset in 现病史, section id);
    ``items``: (辅助检查 or 初步诊断, index) → (section id, index in the section)."""

    classic: StructuredSummary
    text_starts: tuple[tuple[int, str], ...]
    items: dict[tuple[str, int], tuple[str, int]]

    @classmethod
    def of(cls, summary: TemplatedSummary) -> FourSectionView:
        texts, exams, diagnoses = [], [], []
        starts: list[tuple[int, str]] = []
        items: dict[tuple[str, int], tuple[str, int]] = {}
        position = 0
        for spec in summary.template.sections:
            content = summary.content(spec.id)
            if isinstance(content, str) and content.strip() not in ("", ABSENT):
                starts.append((position, spec.id))
                texts.append(content)
                position += len(content) + 1
            for local, item in enumerate(summary.items(spec.id)):
                if isinstance(item, ExamItem):
                    items[("auxiliary_exams", len(exams))] = (spec.id, local)
                    exams.append(item)
                elif isinstance(item, Diagnosis):
                    items[("diagnoses", len(diagnoses))] = (spec.id, local)
                    diagnoses.append(item)
        classic = StructuredSummary(chief_complaint=ABSENT, present_illness="\n".join(texts) or ABSENT,
                                    auxiliary_exams=exams, diagnoses=diagnoses)
        return cls(classic, tuple(starts), items)


AnySummary = Union[StructuredSummary, TemplatedSummary]


def stored_form(summary: AnySummary) -> tuple[dict[str, Any], str, str]:
    """A summary as a history version keeps it: its JSON, its EMR text and its diagnoses one a line."""
    if isinstance(summary, TemplatedSummary):
        return summary.stored(), summary.emr_text(), "\n".join(summary.diagnoses())
    return summary.model_dump(), render_emr_text(summary), section_text(summary, "diagnoses")


def stored_summary(data: Any) -> AnySummary:
    """A version's JSON read back: the four sections, or a template's summary with the template it was written
    with. Raises ValueError when it is neither (damaged on disk)."""
    if isinstance(data, dict) and isinstance(data.get("template"), dict) and "sections" in data:
        template = SummaryTemplate.model_validate(data["template"].get("content"))
        return TemplatedSummary.from_dict(template, data)
    return StructuredSummary.model_validate(data)


def four_sections_of(data: Any) -> StructuredSummary:
    """A version's JSON as the four sections (a template's summary through ``FourSectionView``)."""
    summary = stored_summary(data)
    return summary.four_sections().classic if isinstance(summary, TemplatedSummary) else summary
