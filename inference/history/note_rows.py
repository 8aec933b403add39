"""What a summary states, as rows shaped like OMOP's NOTE_NLP: each measured value (name, value, unit, where it
stands in its section) and each diagnosis with its ICD code. The history indexes the values of every record's
latest version for cohort queries; a cohort export writes these rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from inference.record.conversions import quantity_of
from inference.record.summary import SECTION_HEADINGS, StructuredSummary, section_text
from inference.record.values import find_measurements


@dataclass(frozen=True)
class NoteRow:
    section: str  # the summary field: chief_complaint | present_illness | auxiliary_exams | diagnoses
    snippet: str  # the words as the summary writes them
    offset: int  # where the snippet starts in the section's text as the EMR text writes it (summary.section_text)
    term: str  # the name as written (a test, a diagnosis)
    parameter: str = ""  # the measured quantity the units table resolves the name to (lvef, creatinine), or ""
    comparator: str = ""  # "<" or ">" for a value written as a bound
    value: str = ""  # as written: "38", "150/90"
    value_number: float | None = None  # the first number: what a threshold compares
    unit: str = ""  # canonical spelling (values.unit_spellings)
    code: str = ""  # the ICD code of a diagnosis

    @property
    def section_name(self) -> str:
        return SECTION_HEADINGS.get(self.section, self.section)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"section_name": self.section_name}


def _value_rows(section: str, text: str) -> list[NoteRow]:
    rows = []
    for m in find_measurements(text):
        numbers = m.numbers
        if not numbers:
            continue
        snippet = text[m.start:m.end]
        name = m.name or snippet[:m.value_start - m.start].strip()
        if m.parameter == "systolic_bp" and "/" in m.value and len(numbers) == 2:  # 150/90mmHg: two values
            rows += [NoteRow(section, snippet, m.start, name, parameter, m.comparator, m.value, number, m.unit)
                     for parameter, number in (("systolic_bp", numbers[0]), ("diastolic_bp", numbers[1]))]
            continue
        parameter = m.parameter or quantity_of(name, m.unit) or ""  # NT-proBNP 1.2 ng/mL: a unit off the range table
        rows.append(NoteRow(section, snippet, m.start, name, parameter, m.comparator, m.value, numbers[0],
                            m.unit))
    return rows


def value_rows(summary: StructuredSummary) -> list[NoteRow]:
    """Every measured value the summary states, in section order."""
    return [row for section in ("chief_complaint", "present_illness", "auxiliary_exams")
            for row in _value_rows(section, section_text(summary, section))]


def diagnosis_rows(summary: StructuredSummary, icd: list[dict[str, Any]]) -> list[NoteRow]:
    """Each diagnosis with the code its version holds (offset: its line in the diagnoses section)."""
    codes = {str(item.get("diagnosis", "")): str(item.get("code") or "") for item in icd if isinstance(item, dict)}
    rows, offset = [], 0
    for diagnosis in summary.diagnoses:
        rows.append(NoteRow("diagnoses", diagnosis.name, offset, diagnosis.name, code=codes.get(diagnosis.name, "")))
        offset += len(diagnosis.name) + 1
    return rows


def note_rows(summary: StructuredSummary, icd: list[dict[str, Any]]) -> list[NoteRow]:
    return value_rows(summary) + diagnosis_rows(summary, icd)
