"""What a review of a summary reports: findings with stable rule ids, and the report's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inference.record.grounding import SUPPORTED, SourceSpan, Statement
from inference.record.summary import SECTION_HEADINGS

ERROR, WARNING, INFO = "error", "warning", "info"
REJECTED, ERRORS, WARNINGS, OK = "rejected", "errors", "warnings", "ok"
SEVERITY_LABELS = {ERROR: "错误", WARNING: "警告", INFO: "提示"}
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}
# The rules that say the draft does not come from the record at all: it is refused, not reviewed.
REJECTING_RULES = ("R1", "R2")


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
