"""One record through the whole core: summary → (ICD coding, validation). Used by the CLI and the desktop."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from inference.checks.findings import ValidationReport
from inference.checks.template_review import review_of
from inference.documents import Document
from inference.history.store import RunRecord
from inference.icd.coding import CodingTrace, IcdAssignment, check_no_foreign_codes, code_diagnoses
from inference.icd.lookup import vocabulary_of
from inference.icd.table import IcdTable
from inference.llm.engine import ChatEngine
from inference.progress import CHECKING, RunContext
from inference.record.patient import patient_of
from inference.record.summary import render_emr_text
from inference.summary.summarizer import RunStopped, StoppedRun, SummaryResult, call_timing, summarize
from inference.summary.templated import TemplatedResult, summarize_with_template
from inference.templates.catalog import DEFAULT_TEMPLATE
from inference.templates.spec import SummaryTemplate


class _Reviewed:
    """What every report of a run says of its review and its sources (``BriefReport``, ``TemplatedReport``)."""

    document: Document
    result: SummaryResult | TemplatedResult
    icd: list[IcdAssignment]
    validation: ValidationReport | None
    elapsed_s: float
    stopped: bool

    @property
    def has_errors(self) -> bool:
        return self.validation is not None and self.validation.has_errors

    @property
    def verdict(self) -> str:
        return self.validation.verdict if self.validation is not None else "unchecked"

    @property
    def rejected(self) -> bool:
        return self.validation is not None and self.validation.rejected

    def _icd_for(self, diagnosis: str) -> dict[str, Any] | None:
        assignment = next((a for a in self.icd if a.diagnosis == diagnosis), None)
        return assignment.as_dict() if assignment else None

    def _sources_for(self, section: str, index: int) -> list[dict[str, Any]]:
        if self.validation is None:
            return []
        for statement in self.validation.statements:
            if statement.section == section and statement.index == index:
                return [{**span.as_dict(), **self._original(span.start, span.end)} for span in statement.sources]
        return []

    def _original(self, start: int, end: int) -> dict[str, Any]:
        """Where a source span stands in the original pages (file, page, box, the OCR's confidence), when it was
        read from pages."""
        lines = self.document.provenance.overlapping(start, end)
        return {"original": [{"file": line.file_name, "page": line.page, "box": [round(v, 1) for v in line.box],
                              "confidence": line.confidence} for line in lines]} if lines else {}

    def _run_json(self) -> dict[str, Any]:
        """What the JSON of every run says besides its summary: the review, the guard's removals, the parts,
        the model, the prompt, the timings and the source."""
        evidence = self.result.evidence.as_dict()
        return {
            "findings": [f.as_dict() for f in self.validation.findings] if self.validation else [],
            "unchecked": self.validation.unchecked if self.validation else 0,
            "removed": evidence["removals"],  # what the guard took out, as the model wrote it
            "parts": [{"index": p.index, "start": p.start, "end": p.end, "headings": list(p.headings)}
                      for p in self.result.parts],
            "evidence": evidence,  # what `medbrief validate` needs to review it the same
            "elapsed_s": round(self.elapsed_s, 3),
            "statements": [s.as_dict() for s in self.validation.statements] if self.validation else [],
            "model": self.result.model,
            "prompt_version": self.result.prompt_version,
            "timings": self.result.timings.as_dict(),
            "source": {"file": self.document.file_name, "encoding": self.document.encoding,
                       "sha256": self.document.sha256, "pages": self.document.provenance.pages,
                       "ocr_pages": self.document.provenance.ocr_pages},
        }

    def run_record(self) -> RunRecord:
        """The run as the history keeps it."""
        return RunRecord(
            document=self.document, summary=self.result.summary, model=self.result.model,
            prompt_version=self.result.prompt_version, timings=self.result.timings.as_dict(),
            findings=[f.as_dict() for f in self.validation.findings] if self.validation else [],
            icd=self.icd, raw_output=self.result.raw_output, evidence=self.result.evidence, rejected=self.rejected,
            stopped=self.stopped,
        )


@dataclass
class BriefReport(_Reviewed):
    document: Document
    result: SummaryResult
    icd: list[IcdAssignment] = field(default_factory=list)
    coding_trace: CodingTrace | None = None
    validation: ValidationReport | None = None
    elapsed_s: float = 0.0  # the whole run as the doctor waited for it: parts, ICD rounds and checks

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
            "verdict": self.verdict,
            **({"stopped": {"parts_done": len(self.result.stopped.finished),
                            "parts_left": len(self.result.stopped.remaining)}} if self.result.stopped else {}),
            **self._run_json(),
        }

    @property
    def stopped(self) -> bool:
        """The doctor stopped the run: a draft of the finished parts only, never reviewed or signed."""
        return self.result.stopped is not None


@dataclass
class TemplatedReport(_Reviewed):
    """A run written with a template (not the default 病历摘要)."""

    document: Document
    result: TemplatedResult
    icd: list[IcdAssignment] = field(default_factory=list)
    coding_trace: CodingTrace | None = None
    validation: ValidationReport | None = None
    elapsed_s: float = 0.0
    stopped = False  # a templated run is stopped as a whole: nothing of it is kept

    def emr_text(self) -> str:
        return self.result.summary.emr_text()

    def as_json(self) -> dict[str, Any]:
        summary = self.result.summary
        headings = summary.template.headings
        sections = []
        for spec in summary.template.sections:
            content = summary.content(spec.id)
            if isinstance(content, list):
                content = [{**item.model_dump(), "sources": self._sources_for(spec.id, i),
                            **({"icd": self._icd_for(item.name)} if spec.kind == "diagnoses" else {})}
                           for i, item in enumerate(content)]
            sections.append({"id": spec.id, "heading": spec.heading, "kind": spec.kind, "content": content})
        findings = [f.as_dict() | {"section_name": headings.get(f.section, f.section)}
                    for f in (self.validation.findings if self.validation else [])]
        return {
            "template": summary.template.identity(),
            "sections": sections,
            "verdict": self.verdict,
            **self._run_json(),
            "findings": findings,  # with the template's headings
        }


Report = Union[BriefReport, TemplatedReport]
ReportT = TypeVar("ReportT", BriefReport, TemplatedReport)


def run_templated(document: Document, engine: ChatEngine, template: SummaryTemplate,
                  context: RunContext | None = None, *, table: IcdTable | None = None,
                  part_budget: int | None = None) -> TemplatedReport:
    """``run_pipeline`` for a template other than the default: summarize with it, code every diagnosis of its
    diagnoses sections, review each section by its kind."""
    context = context or RunContext()
    result = summarize_with_template(engine, template, document.text, context, part_budget=part_budget)
    return _coded_and_reviewed(TemplatedReport(document=document, result=result), engine, context, table,
                               result.summary.diagnoses())


def run_pipeline(
    document: Document,
    engine: ChatEngine,
    context: RunContext | None = None,
    *,
    table: IcdTable | None = None,
    part_budget: int | None = None,
    resume: StoppedRun | None = None,
    template: SummaryTemplate | None = None,
) -> Report:
    """Summarize, code the diagnoses against ``table`` (none: no coding), validate against the record.
    ``context``: where progress and streamed text go, and the stop signal. ``part_budget``: record tokens
    per part for this run (a rerun in parts after a rejected draft). Stopped after a part of a long record
    finished, the report is a stopped draft of those parts (``stopped``); ``resume`` goes on from one.
    ``template``: write with it (None or 病历摘要: the four sections)."""
    if template is not None and template.id != DEFAULT_TEMPLATE:
        return run_templated(document, engine, template, context, table=table, part_budget=part_budget)
    context = context or RunContext()
    try:
        result = summarize(engine, document.text, context, part_budget=part_budget, resume=resume)
    except RunStopped as stop:
        result = stop.result
    report = BriefReport(document=document, result=result)
    return _coded_and_reviewed(report, engine, context, table, [d.name for d in result.summary.diagnoses])


def _coded_and_reviewed(report: ReportT, engine: ChatEngine, context: RunContext, table: IcdTable | None,
                        diagnoses: list[str]) -> ReportT:
    """The run's diagnoses coded against ``table`` (none: no coding; a stopped draft is what its finished parts
    say: reviewed, not coded), then the review, and the time the doctor waited."""
    document, result = report.document, report.result
    if not report.stopped:
        if table is not None and diagnoses:
            report.icd, report.coding_trace = code_diagnoses(engine, diagnoses, table, context,
                                                             patient_of(document.text))
            check_no_foreign_codes(report.icd, table)
            result.timings.calls += [call_timing(f"icd round {i}", r)
                                     for i, r in enumerate(report.coding_trace.generations, 1)]
        context.stop_if_cancelled()
        context.tracker.phase(CHECKING)
    report.validation = review_of(result.summary, document.text, vocabulary_of(table), result.evidence,
                                  document.provenance)
    report.elapsed_s = time.perf_counter() - context.tracker.started
    return report
