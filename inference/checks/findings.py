"""What a review of a summary reports: findings with stable rule ids, and the report's verdict.

Rules (ids are stable; the desktop colours by severity, tests and the held-out corruption set match on ids):
  S1 section missing or empty              S2 several diagnoses in one entry
  S3 content outside the template          S4 stated absent although the record has it
  V1 value not in the source (invented or altered)        V2 key value of the source omitted
  V3 physiologically implausible value                    V4 value given without its unit
  V5 a unit the record does not write for the value (78g/L×10^9/L where the record says 78g/L)
  V6 a duration the record does not write (反复胸闷气促7年 where it says 3年)
  T1 non-standard or colloquial term       T2 diagnosis the source negates
  T3 diagnosis not found in the code table  T4 diagnosis the record does not state
  D1 a symptom or complaint written as a diagnosis
  F1 medical wording not found in the source (paraphrase)  G1 statement with no support in the source
  G2 diagnoses listed although the record states none      G3 diagnosis not in the record, removed from the draft
  G4 a remnant of the prompt's example, removed              G5 a symptom written as a diagnosis, removed
  U1 a unit the record does not write, removed from the draft
  N1 negation flipped or dropped (颈静脉怒张 ↔ 无颈静脉怒张)   N2 certainty changed (肺结核待排 ↔ 肺结核)
  R1 the draft repeats the prompt's example patient        R2 most of the draft has no support in the record
  O1 a value, dose or date taken from a line the OCR read with low confidence: look at the original page
  For a template's kinds (``checks.template_review``, ``summary.template_guard``): M1 a drug the record does not
  name, M2 a dose, route or frequency not written with that drug, V7 a date the record does not write, L1 a
  section longer than the template allows, S5 a draft cut at max_tokens (what was finished is kept).

The review's verdict: "rejected" when an R finding says the draft does not come from the record (it is then
not a draft of this patient at all: it cannot be copied, exported or signed), else "errors", "warnings" or
"ok" by the worst finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from inference.record.grounding import SUPPORTED, SourceSpan, Statement
from inference.record.summary import SECTION_HEADINGS

ERROR, WARNING, INFO = "error", "warning", "info"
REJECTED, ERRORS, WARNINGS, OK = "rejected", "errors", "warnings", "ok"
SEVERITY_LABELS = {ERROR: "错误", WARNING: "警告", INFO: "提示"}
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}
# The rules that say the draft does not come from the record at all: it is refused, not reviewed.
REJECTING_RULES = ("R1", "R2")


class DiagnosisVocabulary(Protocol):
    """What the T3 check asks of a code table: its name, and whether it has a code for a diagnosis name (the
    ICD lookup answers; the review itself knows nothing of codes)."""

    @property
    def name(self) -> str: ...

    def knows(self, name: str) -> bool: ...


@dataclass
class Finding:
    rule_id: str
    severity: str
    section: str
    index: int | None  # item index in list sections, sentence index in 现病史
    span: tuple[int, int] | None  # characters inside the section field (list items: inside the item text)
    message: str
    suggestion: str = ""
    source_spans: list[SourceSpan] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # the items behind a grouped finding

    def as_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "severity": self.severity, "section": self.section,
                "section_name": SECTION_HEADINGS.get(self.section, self.section), "index": self.index,
                "span": list(self.span) if self.span else None, "message": self.message,
                "suggestion": self.suggestion, "source_spans": [s.as_dict() for s in self.source_spans],
                "details": self.details}


@dataclass
class ValidationReport:
    findings: list[Finding]
    statements: list[Statement]
    unchecked: int = 0  # statements the record leaves undecided (it says both 有 and 无): for the doctor

    @property
    def has_errors(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)

    @property
    def rejection_reasons(self) -> list[str]:
        """Why the draft was refused (empty when it was not): the messages of the rejecting findings."""
        return [f.message for f in self.findings if f.rule_id in REJECTING_RULES]

    @property
    def verdict(self) -> str:
        if self.rejection_reasons:
            return REJECTED
        if self.has_errors:
            return ERRORS
        return WARNINGS if any(f.severity == WARNING for f in self.findings) else OK

    @property
    def rejected(self) -> bool:
        return self.verdict == REJECTED

    def counts(self) -> dict[str, int]:
        return {level: sum(f.severity == level for f in self.findings) for level in (ERROR, WARNING, INFO)}

    def supported_share(self) -> float:
        content = content_statements(self.statements)
        return sum(is_supported(s) for s in content) / len(content) if content else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "findings": [f.as_dict() for f in self.findings], "counts": self.counts(),
                "unchecked": self.unchecked, "statements": [s.as_dict() for s in self.statements]}


def content_statements(statements: list[Statement]) -> list[Statement]:
    """The statements that say something (not 原文未记载, not blank)."""
    return [s for s in statements if not s.is_absent_marker and s.text.strip()]


def is_supported(statement: Statement) -> bool:
    """Found in the record and saying something: punctuation alone (a broken model writes "，") is found in
    any record."""
    return statement.support >= SUPPORTED and any(char.isalnum() for char in statement.text)
