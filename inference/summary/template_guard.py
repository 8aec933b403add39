"""The draft guard for a summary written with a template: what the record does not say never reaches the doctor.

Text, values and diagnoses sections go through the four sections' guard (``draft_guard``) as 现病史, 辅助检查 and
初步诊断 do: invented values, units and diagnoses and remnants of the prompt's example are removed. Besides:

- M1 a medication whose drug the record does not name is removed; M2 a dose, route or frequency the record does
  not write with that drug is emptied (the drug stays, the doctor sees the gap and the finding);
- V7 a date the record does not write is removed (a dates item, or the clause of a text section carrying it);
- N1 a finding the record states written as absent (颈静脉怒张 无), or the other way round;
- G4 a piece of the prompt's example (its record, a section's ``example``) that the record does not hold.
A required section left with nothing says 原文未记载 (a list section is empty): never invented."""

from __future__ import annotations

import re

from inference.checks.template_review import (
    compact_text,
    date_stated,
    denied_finding,
    find_dates,
    medication_problem,
)
from inference.record.evidence import Removal
from inference.record.prompts import TEMPLATED_PROMPT, load_prompt
from inference.record.summary import ABSENT, ExamItem, StructuredSummary
from inference.summary.draft_guard import guard_draft
from inference.templates.content import Content, DatedEvent, Medication, TemplatedSummary, item_text
from inference.templates.spec import SectionSpec

_CLAUSE = re.compile(r"[^，,；;。\n]*[，,；;。\n]?")
_CLASSIC_FIELD = {"text": "present_illness", "values": "auxiliary_exams", "diagnoses": "diagnoses"}


def guard_templated(summary: TemplatedSummary, source: str) -> tuple[TemplatedSummary, list[Removal]]:
    removals: list[Removal] = []
    example = compact_text(load_prompt(TEMPLATED_PROMPT).section("example_record"))
    sections = {spec.id: _guarded(spec, summary.content(spec.id), source, example, removals)
                for spec in summary.template.sections}
    return TemplatedSummary(summary.template, sections), removals


def _guarded(spec: SectionSpec, content: Content, source: str, example: str, removals: list[Removal]) -> Content:
    content = _without_example(content, example + compact_text(spec.example or ""), source, spec.id, removals)
    if spec.kind in _CLASSIC_FIELD:
        if spec.kind == "text" and isinstance(content, str):
            content = _without_unstated_dates(spec, content, source, removals)
        if spec.kind == "values" and isinstance(content, list):
            content = _without_denied(spec, content, source, removals)
        classic = StructuredSummary(
            chief_complaint=ABSENT,
            present_illness=content if isinstance(content, str) else ABSENT,
            auxiliary_exams=content if spec.kind == "values" else [],  # type: ignore[arg-type]
            diagnoses=content if spec.kind == "diagnoses" else [],  # type: ignore[arg-type]
        )
        guarded, classic_removals, _scopes = guard_draft(classic, source)
        removals += [Removal(r.rule_id, spec.id, r.text, r.reason) for r in classic_removals]
        return getattr(guarded, _CLASSIC_FIELD[spec.kind])
    kept: list = []
    source_dates = find_dates(source)
    for item in content if isinstance(content, list) else []:
        if isinstance(item, Medication):
            item = _medication(spec, item, source, removals)
        elif isinstance(item, DatedEvent):
            dates = find_dates(item.date)
            stated = date_stated(dates[0], source_dates) if dates else compact_text(item.date) in compact_text(source)
            if not stated:
                removals.append(Removal("V7", spec.id, item.as_text(), f"原文中找不到该日期：{item.date}"))
                item = None
        if item is not None:
            kept.append(item)
    return kept


def _without_denied(spec: SectionSpec, items: list, source: str, removals: list[Removal]) -> list:
    kept = []
    for item in items:
        written = denied_finding(item, source) if isinstance(item, ExamItem) else None
        if written is not None:
            removals.append(Removal("N1", spec.id, item.as_text(), f"原文为“{written}”，不是“{item.value}”"))
        else:
            kept.append(item)
    return kept


def _medication(spec: SectionSpec, item: Medication, source: str, removals: list[Removal]) -> Medication | None:
    while (problem := medication_problem(item, source)) is not None:
        rule, field, message = problem
        removals.append(Removal(rule, spec.id, item.as_text(), message))
        if rule == "M1":
            return None
        item = item.model_copy(update={field: ""})
    return item


def _without_unstated_dates(spec: SectionSpec, text: str, source: str, removals: list[Removal]) -> str:
    if text == ABSENT or not find_dates(text):
        return text
    source_dates, kept = find_dates(source), []
    for clause in (c for c in _CLAUSE.findall(text) if c):
        unstated = [d for d in find_dates(clause) if not date_stated(d, source_dates)]
        if unstated:
            removals.append(Removal("V7", spec.id, clause.strip("，,；;。\n "), "原文中找不到该日期"))
        else:
            kept.append(clause)
    return "".join(kept).strip("，,；; ") or ABSENT


def _without_example(content: Content, example: str, source: str, section: str, removals: list[Removal]) -> Content:
    """A piece of the prompt's example (its record, the section's example) that the record does not hold is the
    example patient, not this one."""
    compact_source = compact_text(source)

    def copied(text: str) -> bool:
        piece = compact_text(text)
        if piece == ABSENT:
            return False
        return len(piece) >= 4 and piece in example and piece not in compact_source

    if isinstance(content, str):
        clauses = [c for c in _CLAUSE.findall(content) if c]
        for clause in (c for c in clauses if copied(c)):
            removals.append(Removal("G4", section, clause.strip("，,；;。\n "), "与模板示例雷同，原文中没有"))
        return "".join(c for c in clauses if not copied(c)).strip("，,；; ") or ABSENT
    kept = []
    for item in content:
        if copied(item_text(item)):
            removals.append(Removal("G4", section, item_text(item), "与模板示例雷同，原文中没有"))
        else:
            kept.append(item)
    return kept
