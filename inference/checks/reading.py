"""O1: a value, dose or date the summary takes from a line the OCR read with low confidence.

Such a statement matches the extracted text and passes every other check, yet the text may not be what the page
says: a 138 read as 188 and copied faithfully is still wrong. The finding names the page so the doctor can look
at the original; it stands until the doctor has (it is a warning, shown with the page's box in the window).
"""

from __future__ import annotations

import re

from inference.checks.findings import WARNING, Finding
from inference.record.grounding import Statement
from inference.record.provenance import Provenance

_DIGIT = re.compile(r"\d")


def uncertain_readings(statements: list[Statement], provenance: Provenance | None) -> list[Finding]:
    if not provenance or not any(line.uncertain for line in provenance.lines):
        return []
    findings = []
    for statement in statements:
        if statement.is_absent_marker or not _DIGIT.search(statement.text):
            continue
        lines = [line for span in statement.sources for line in provenance.overlapping(span.start, span.end)
                 if line.uncertain]
        if lines:
            worst = min(lines, key=lambda line: line.confidence or 0.0)
            findings.append(Finding("O1", WARNING, statement.section, statement.index, (0, len(statement.text)),
                                    f"原件识别不确定，请核对原件（{worst.where()}，识别置信度 {worst.confidence:.2f}）",
                                    "对照原件核对数值、剂量与日期", list(statement.sources)))
    return findings
