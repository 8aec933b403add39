"""What the history store takes and gives back: a model run to keep, the ids it was kept under, and one line
of the history list (read from plain columns: a damaged JSON column of one record never hides the list)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inference.documents import Document
from inference.icd.coding import IcdAssignment
from inference.record.evidence import RunEvidence
from inference.templates.content import AnySummary


@dataclass(frozen=True)
class RunRecord:
    """A model run as the history keeps it (``pipeline.BriefReport.run_record`` makes one)."""

    document: Document
    summary: AnySummary  # what the doctor is shown: the guarded draft (the four sections, or a template's)
    model: dict[str, Any]  # EngineInfo.as_dict()
    prompt_version: str
    timings: dict[str, Any]
    findings: list[dict[str, Any]]
    icd: list[IcdAssignment]
    raw_output: str
    evidence: RunEvidence
    rejected: bool  # the checks refused the draft: it is kept as rejected, never reviewed or signed
    stopped: bool = False  # the doctor stopped the run: a draft of its finished parts, never reviewed or signed


@dataclass(frozen=True)
class RecordedRun:
    document_id: int
    run_id: int
    version_id: int


@dataclass(frozen=True)
class RecordSummary:
    document_id: int
    file_name: str
    imported_at: datetime
    updated_at: datetime
    status: str
    versions: int
    diagnoses: str
    icd_codes: str
    preview: str
