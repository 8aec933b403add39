"""One record through the whole core: summary → (ICD coding, validation). Used by the CLI and the desktop."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from inference.documents import Document
from inference.engine import Engine, TokenCallback
from inference.icd_coding import CodingTrace, IcdAssignment, check_no_foreign_codes, code_diagnoses
from inference.icd_table import IcdTable
from inference.summarizer import ProgressCallback, SummaryResult, call_timing, summarize
from inference.summary_schema import ABSENT, render_emr_text
from inference.validation import INFO, Finding, ValidationReport, validate


@dataclass
class BriefReport:
    document: Document
    result: SummaryResult
    icd: list[IcdAssignment] = field(default_factory=list)
    coding_trace: CodingTrace | None = None
    validation: ValidationReport | None = None

    def emr_text(self) -> str:
        return render_emr_text(self.result.summary)

    def as_json(self) -> dict[str, Any]:
        summary = self.result.summary
        return {
            "chief_complaint": summary.chief_complaint,
            "present_illness": summary.present_illness,
            "auxiliary_exams": [
                {**item.model_dump(), "sources": self._sources_for("auxiliary_exams", i)}
                for i, item in enumerate(summary.auxiliary_exams)
            ],
            "diagnoses": [
                {**diagnosis.model_dump(), "icd": self._icd_for(diagnosis.name),
                 "sources": self._sources_for("diagnoses", i)}
                for i, diagnosis in enumerate(summary.diagnoses)
            ],
            "findings": [f.as_dict() for f in self.validation.findings] if self.validation else [],
            "statements": [s.as_dict() for s in self.validation.statements] if self.validation else [],
            "model": self.result.model,
            "prompt_version": self.result.prompt_version,
            "timings": self.result.timings.as_dict(),
            "source": {"file": self.document.file_name, "encoding": self.document.encoding,
                       "sha256": self.document.sha256},
        }

    def _icd_for(self, diagnosis: str) -> dict[str, Any] | None:
        assignment = next((a for a in self.icd if a.diagnosis == diagnosis), None)
        return assignment.as_dict() if assignment else None

    def _sources_for(self, section: str, index: int) -> list[dict[str, Any]]:
        if self.validation is None:
            return []
        for statement in self.validation.statements:
            if statement.section == section and statement.index == index:
                return [span.as_dict() for span in statement.sources]
        return []

    @property
    def has_errors(self) -> bool:
        return self.validation is not None and self.validation.has_errors


def run_pipeline(
    document: Document,
    engine: Engine,
    *,
    on_progress: ProgressCallback | None = None,
    on_token: TokenCallback | None = None,
    cancel: threading.Event | None = None,
    table: IcdTable | None = None,
) -> BriefReport:
    """Summarize, code the diagnoses against ``table`` (none: no coding), validate against the record."""
    result = summarize(engine, document.text, on_token=on_token, on_progress=on_progress, cancel=cancel)
    report = BriefReport(document=document, result=result)
    if table is not None:
        names = [d.name for d in result.summary.diagnoses]
        report.icd, report.coding_trace = code_diagnoses(
            engine, names, table, on_token=on_token, on_progress=on_progress, cancel=cancel
        )
        check_no_foreign_codes(report.icd, table)
        result.timings.calls += [call_timing(f"icd round {i}", r)
                                 for i, r in enumerate(report.coding_trace.generations, 1)]
    if on_progress:
        on_progress("核对原文 / validating against the record")
    report.validation = validate(result.summary, document.text, table)
    removed = result.extra.get("removed_diagnoses") or []
    if removed:
        report.validation.findings.append(Finding(
            "G2", INFO, "diagnoses", None, None,
            f"原文没有给出诊断，已从草稿中移除模型自行给出的诊断：{'、'.join(removed)}", f"保持“{ABSENT}”，由医生诊断"))
    return report
