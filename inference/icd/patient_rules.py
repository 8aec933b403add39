"""Codes a patient cannot have: ICD-10's sex- and age-specific categories (the pregnancy chapter, male or female
genital organs, perinatal and senile categories), as rules a coder reads and edits in
``resources/icd/patient_rules.tsv``. The coding never proposes such a code for the record's patient, and one
that is chosen anyway blocks the signature (皮肤黄染 came back O26.9 for a man)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from inference.icd.rules_file import parse_rules
from inference.paths import resources_dir
from inference.record.patient import FEMALE, MALE, Patient


@dataclass(frozen=True)
class PatientRule:
    codes: re.Pattern[str]
    sex: str | None
    min_age: float | None
    max_age: float | None
    why: str

    def conflict(self, code: str, patient: Patient) -> str | None:
        if not self.codes.search(code):
            return None
        if self.sex and patient.sex and patient.sex != self.sex:
            return f"{code} 属“{self.why}”，仅适用于{'女性' if self.sex == FEMALE else '男性'}，病历为{patient.describe()}"
        age = patient.age_years
        if age is not None and ((self.min_age is not None and age < self.min_age)
                                or (self.max_age is not None and age > self.max_age)):
            return f"{code} 属“{self.why}”，不适用于病历中的年龄（{patient.describe()}）"
        return None


def _age(cell: str) -> float | None:
    return None if cell in ("", "-") else float(cell)


def _patient_rule(row: list[str]) -> PatientRule:
    pattern, sex, low, high, why = row
    if sex not in (MALE, FEMALE, "-"):
        raise ValueError(f"sex {sex!r}: use male, female or -")
    return PatientRule(re.compile(pattern), None if sex == "-" else sex, _age(low), _age(high), why)


@lru_cache(maxsize=1)
def patient_rules() -> tuple[PatientRule, ...]:
    return parse_rules(resources_dir() / "icd" / "patient_rules.tsv", 5, "ICD 性别年龄规则", _patient_rule)


def patient_conflict(code: str | None, patient: Patient | None) -> str | None:
    """Why the patient cannot have this code (the first rule that says so), or None."""
    if not code or patient is None:
        return None
    return next((why for rule in patient_rules() if (why := rule.conflict(code, patient))), None)
