"""A unit the record does not write for a value: appended to it (血红蛋白 78g/L×10^9/L, where the record says
78g/L) or given to a result that has none (尿蛋白 (-)×10^3/L). A value is supported only with the unit its
record writes; the draft guard takes the addition away, the review flags it (V5) with the record's own text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inference.record.grounding import content
from inference.record.summary import ExamItem, split_value_unit
from inference.record.values import find_measurements

_CJK = re.compile(r"[\u3400-\u9fff]")
_UNIT_LIKE = re.compile(r"[A-Za-zμµ%℃/^×*]")


@dataclass(frozen=True)
class UnitProblem:
    added: str  # what the record does not write, as the summary has it
    kept: ExamItem  # the item without it
    record_text: str  # how the record writes the value, where it does ("" where it does not)


def _unit_like(text: str) -> bool:
    text = text.strip()
    return 0 < len(text) <= 16 and not _CJK.search(text) and bool(_UNIT_LIKE.search(text))


def _source_text(found: list, record_part: str) -> str:  # type: ignore[type-arg]
    """How the record writes the item's last value, if it does."""
    if not found:
        return ""
    source = next((m for m in find_measurements(record_part) if m.identity == found[-1].identity), None)
    return record_part[source.value_start:source.end] if source else ""


def unit_problem(item: ExamItem, record_part: str) -> UnitProblem | None:
    """What of the item's unit its part of the record does not write, or None (also when the record writes
    the item exactly so). The unit field belongs right after a bare number: on a value that already carries
    its unit (8.4%, 78g/L) or on a result that is not a number (+++, (-), 阴性) it is an addition."""
    unit, value = item.unit.strip(), item.value.strip()
    if not unit or content(value + unit) in content(record_part):
        return None
    in_value = find_measurements(value)
    has_its_unit = bool(in_value) and in_value[-1].end == len(value)
    if has_its_unit or not re.search(r"\d\s*$", value):
        number, own_unit = split_value_unit(value) or (value, "")  # 78g/L keeps its own unit: 78 g/L
        return UnitProblem(unit, ExamItem(name=item.name, value=number, unit=own_unit),
                           _source_text(in_value, record_part) if has_its_unit else "")
    text = item.as_text()
    found = find_measurements(text)
    if not found:
        return None
    last = found[-1]
    trailing = text[last.end:]
    if not _unit_like(trailing):
        return None
    value, unit = text[last.value_start:last.value_end].strip(), text[last.unit_start:last.end].strip()
    kept = ExamItem(name=item.name, value=value, unit=unit)
    return UnitProblem(trailing.strip(), kept, _source_text(found, record_part))
