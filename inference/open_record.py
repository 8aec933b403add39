"""The record open in the window, as plain data: what the doctor may do with it and what stands in the way.

The desktop renders it (as napari's Qt view renders its ``ViewerModel``) and keeps no record state in its
widgets; the history controller reads and sets it. Its rules are tested without Qt. The summary's text and
the code list are edited in their panes and handed in where a rule needs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inference.checks.findings import ERROR, ValidationReport
from inference.documents import Document
from inference.export import ExportedVersion
from inference.icd.coding import IcdAssignment
from inference.icd.patient_rules import patient_conflict
from inference.icd.precision import is_leaf
from inference.icd.table import IcdTable
from inference.pipeline import Report
from inference.record.evidence import RunEvidence
from inference.record.patient import Patient, patient_of
from inference.record.status import UNSIGNABLE, Attestation, DraftStatus, run_status
from inference.summary.summarizer import StoppedRun, retry_part_tokens
from inference.templates.content import AnySummary, TemplatedSummary
from inference.templates.spec import SummaryTemplate

DEMO_BLOCKER = "草稿由演示模型生成，不可用于临床"
# Findings on a diagnosis that a coder would send back: not in the record (T4, G1, G2), a symptom (D1).
_UNSTATED_DIAGNOSIS = ("T4", "G1", "G2", "D1")


@dataclass
class OpenRecord:
    document: Document
    report: Report | None = None  # the run that wrote the draft on screen; None: reopened, or not generated
    validation: ValidationReport | None = None  # the latest review of the summary on screen
    evidence: RunEvidence = field(default_factory=RunEvidence)  # the draft's run: every review uses the same
    demo_draft: bool = False  # the summary on screen was written by the demo model
    status: DraftStatus = DraftStatus.DRAFT  # of the version on screen, as the history has it
    attestation: Attestation | None = None  # the review or signature that gave it that status
    kept_codes: dict[str, IcdAssignment] = field(default_factory=dict)  # confirmed codes kept over a regeneration
    template: SummaryTemplate | None = None  # what the summary on screen was written with (None: the four sections)

    @property
    def patient(self) -> Patient:
        return patient_of(self.document.text)

    @property
    def rejected(self) -> bool:
        """The checks refused the draft: not from this record."""
        return self.status == DraftStatus.REJECTED

    @property
    def stopped(self) -> bool:
        """The doctor stopped the run: a draft of its finished parts."""
        return self.status == DraftStatus.STOPPED

    @property
    def signed(self) -> bool:
        """Read-only until the doctor starts a new version."""
        return self.status == DraftStatus.SIGNED

    @classmethod
    def reopened(cls, document: Document, evidence: RunEvidence, status: str, demo: bool,
                 attestation: Attestation | None = None, summary: AnySummary | None = None) -> OpenRecord:
        """A record from the history, with the template its summary was written with (as it was then)."""
        template = summary.template if isinstance(summary, TemplatedSummary) else None
        return cls(document, evidence=evidence, demo_draft=demo, status=DraftStatus(status), attestation=attestation,
                   template=template)

    # -- what happens to it ---------------------------------------------------------------------------

    def attested(self, attestation: Attestation) -> None:
        """The version on screen was reviewed or signed."""
        self.status, self.attestation = attestation.status, attestation

    def edited(self) -> None:
        """An edit of a reviewed version makes it a new draft: the review was of another text (a refused or
        stopped draft stays what it is, as in the history)."""
        if self.status == DraftStatus.REVIEWED:
            self.status, self.attestation = DraftStatus.DRAFT, None

    def unsigned(self) -> None:
        """The doctor starts a new version of a signed summary; the signed one stays in the history."""
        self.status, self.attestation = DraftStatus.DRAFT, None

    def regenerating(self, codes: list[IcdAssignment]) -> None:
        """A new run starts: the codes the doctor confirmed stay with their diagnoses."""
        self.kept_codes = {a.diagnosis: a for a in codes if a.confirmed}

    def adopt_run(self, report: Report) -> list[IcdAssignment]:
        """The run's draft is now the one on screen (a new, unsigned draft); returns its codes with the
        doctor's kept choices in place."""
        self.report = report
        summary = report.result.summary
        self.template = summary.template if isinstance(summary, TemplatedSummary) else None
        self.validation = report.validation
        self.evidence = report.result.evidence
        self.demo_draft = bool(report.result.model.get("demo"))
        self.status = run_status(report.rejected, report.stopped)
        self.attestation = None
        kept, self.kept_codes = self.kept_codes, {}
        return [kept.get(a.diagnosis, a) for a in report.icd]

    # -- what the doctor may do -----------------------------------------------------------------------

    @property
    def can_copy(self) -> bool:
        """Copy and export: a refused draft is shown to be seen, never to be used."""
        return not self.rejected

    @property
    def can_sign(self) -> bool:
        """Review and sign (with the blockers acknowledged): never a refused draft, nor a stopped one."""
        return self.status not in UNSIGNABLE

    @property
    def resumable(self) -> StoppedRun | None:
        """A run stopped in this session: the parts left can still be summarized (继续生成)."""
        return self.report.result.stopped if self.stopped and self.report is not None else None

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

    def blockers(self, codes: list[IcdAssignment], table: IcdTable | None = None) -> tuple[str, ...]:
        """What should stop a signature, in words: error findings that stand, a diagnosis the record does not
        state, codes not yet confirmed, a code that is not a leaf of the table or that the record's patient
        cannot have (sex, age), a demo draft. Signing over them needs a reason; the audit log and every export of
        the signed version keep them with it."""
        found = []
        findings = self.validation.findings if self.validation else []
        errors = [f for f in findings if f.severity == ERROR and f.rule_id not in _UNSTATED_DIAGNOSIS]
        if errors:
            found.append(f"核对发现 {len(errors)} 处错误尚未处理：" + "；".join(f.message for f in errors[:3]))
        diagnoses = {s.id for s in self.template.sections if s.kind == "diagnoses"} if self.template else {"diagnoses"}
        found += [f"诊断原文没有依据（{f.rule_id}）：{f.message}" for f in findings
                  if f.section in diagnoses and f.rule_id in _UNSTATED_DIAGNOSIS]
        unconfirmed = sum(1 for a in codes if a.code and not a.confirmed)
        if unconfirmed:
            found.append(f"{unconfirmed} 个 ICD 编码仍待确认")
        if table is not None:
            found += [f"编码 {a.code}（{a.diagnosis}）下还有亚目，须选到末级编码" for a in codes
                      if a.code and a.code in table and not is_leaf(a.code, table)]
        patient = self.patient
        found += [conflict for a in codes if (conflict := patient_conflict(a.code, patient))]
        if self.demo_draft:
            found.append(DEMO_BLOCKER)
        return tuple(found)

    def exported(self, summary: AnySummary, codes: list[IcdAssignment]) -> ExportedVersion:
        """The summary and codes on screen as they leave the PC: what the version is, who reviewed or signed it
        and what stood then, and the latest review of it."""
        findings = [f.as_dict() for f in self.validation.findings] if self.validation is not None else []
        return ExportedVersion(summary, list(codes), demo=self.demo_draft, status=self.status,
                               attestation=self.attestation, findings=findings)
