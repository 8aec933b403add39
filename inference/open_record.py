"""The record open in the window, as plain data: what the doctor may do with it and what stands in the way.

The desktop renders it (as napari's Qt view renders its ``ViewerModel``) and keeps no record state in its
widgets; the history controller reads and sets it. Its rules are tested without Qt. The summary's text and
the code list are edited in their panes and handed in where a rule needs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inference.checks.findings import ERROR, ValidationReport
from inference.documents import Document
from inference.icd.coding import IcdAssignment
from inference.pipeline import BriefReport
from inference.record.evidence import RunEvidence
from inference.record.status import DraftStatus
from inference.summary.summarizer import retry_part_tokens

DEMO_BLOCKER = "草稿由演示模型生成，不可用于临床"


@dataclass
class OpenRecord:
    document: Document
    report: BriefReport | None = None  # the run that wrote the draft on screen; None: reopened, or not generated
    validation: ValidationReport | None = None  # the latest review of the summary on screen
    evidence: RunEvidence = field(default_factory=RunEvidence)  # the draft's run: every review uses the same
    demo_draft: bool = False  # the summary on screen was written by the demo model
    rejected: bool = False  # the checks refused the draft: not from this record
    signed: bool = False  # the version on screen is signed: read-only until the doctor starts a new one
    kept_codes: dict[str, IcdAssignment] = field(default_factory=dict)  # confirmed codes kept over a regeneration

    @classmethod
    def reopened(cls, document: Document, evidence: RunEvidence, status: str, demo: bool) -> OpenRecord:
        return cls(document, evidence=evidence, demo_draft=demo, rejected=status == DraftStatus.REJECTED,
                   signed=status == DraftStatus.SIGNED)

    # -- what happens to it ---------------------------------------------------------------------------

    def regenerating(self, codes: list[IcdAssignment]) -> None:
        """A new run starts: the codes the doctor confirmed stay with their diagnoses."""
        self.kept_codes = {a.diagnosis: a for a in codes if a.confirmed}

    def adopt_run(self, report: BriefReport) -> list[IcdAssignment]:
        """The run's draft is now the one on screen (a new, unsigned draft); returns its codes with the
        doctor's kept choices in place."""
        self.report = report
        self.validation = report.validation
        self.evidence = report.result.evidence
        self.demo_draft = bool(report.result.model.get("demo"))
        self.rejected = report.rejected
        self.signed = False
        kept, self.kept_codes = self.kept_codes, {}
        return [kept.get(a.diagnosis, a) for a in report.icd]

    # -- what the doctor may do -----------------------------------------------------------------------

    @property
    def can_copy(self) -> bool:
        """Copy and export: a refused draft is shown to be seen, never to be used."""
        return not self.rejected

    @property
    def can_sign(self) -> bool:
        """Review and sign (with the blockers acknowledged): never a refused draft."""
        return not self.rejected

    @property
    def can_rerun_in_parts(self) -> bool:
        return self.rejected

    @property
    def editable(self) -> bool:
        return not self.signed

    def rerun_part_tokens(self) -> int:
        """Record tokens per part for 分段重新生成: half the refused run's."""
        return retry_part_tokens(self.report.result.part_tokens if self.report is not None else None)

    def rejection_reasons(self) -> list[str]:
        return self.validation.rejection_reasons if self.validation is not None else []

    def blockers(self, codes: list[IcdAssignment]) -> tuple[str, ...]:
        """What should stop a signature, in words: error findings that stand, codes not yet confirmed, a demo
        draft. Signing over them needs a reason (the audit log keeps it)."""
        found = []
        errors = sum(f.severity == ERROR for f in self.validation.findings) if self.validation else 0
        if errors:
            found.append(f"核对发现 {errors} 处错误尚未处理")
        unconfirmed = sum(1 for a in codes if a.code and not a.confirmed)
        if unconfirmed:
            found.append(f"{unconfirmed} 个 ICD 编码仍待确认")
        if self.demo_draft:
            found.append(DEMO_BLOCKER)
        return tuple(found)
