"""Rows the history derives from its versions: the values of each record's latest version (cohort queries) and
the measures of each signature (statistics). They are written with the version that causes them, in the same
transaction; ``backfill`` fills them for history written before they existed, or by older code (INDEXER and
MEASURER say which code wrote a row), in short transactions so that no other process waits for long."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from inference.history.edit_measures import measure_signing
from inference.history.models import (
    AuditEventRow,
    IndexedVersionRow,
    RunRow,
    SigningMeasuresRow,
    SummaryVersionRow,
    ValueIndexRow,
)
from inference.history.note_rows import value_rows
from inference.record.status import DraftStatus
from inference.record.summary import StructuredSummary

# Raise when what note_rows.value_rows or edit_measures.measure_signing derive changes: rows written by older
# code are derived again at the next open.
INDEXER = 1
MEASURER = 1
BACKFILL_BATCH = 200


def index_version(session: Session, version: SummaryVersionRow) -> None:
    """Make ``value_index`` hold the values of this version, the record's latest."""
    session.execute(delete(ValueIndexRow).where(ValueIndexRow.document_id == version.document_id))
    try:
        rows = value_rows(StructuredSummary.model_validate(version.summary))
    except ValueError:  # a version damaged on disk states no values
        rows = []
    session.add_all(ValueIndexRow(document_id=version.document_id, section=row.section, term=row.term[:80],
                                  parameter=row.parameter, comparator=row.comparator, value_number=row.value_number,
                                  unit=row.unit) for row in rows if row.value_number is not None)
    session.merge(IndexedVersionRow(document_id=version.document_id, version_id=version.id, indexer=INDEXER))


def record_signing(session: Session, signed: SummaryVersionRow, event: AuditEventRow | None) -> None:
    """Measure what the doctor changed in the model's draft behind this signed version."""
    run = session.get(RunRow, signed.run_id) if signed.run_id is not None else None
    draft = session.scalar(select(SummaryVersionRow).where(
        SummaryVersionRow.document_id == signed.document_id, SummaryVersionRow.origin == "model",
        *([SummaryVersionRow.run_id == signed.run_id] if signed.run_id is not None else []))
        .order_by(SummaryVersionRow.id).limit(1))
    if draft is None:  # a salvaged history that lost the model's version: nothing to compare with
        return
    detail: dict[str, Any] = event.detail if event is not None and isinstance(event.detail, dict) else {}
    standing = detail.get("standing_rules")
    try:
        measures = measure_signing(
            StructuredSummary.model_validate(draft.summary), StructuredSummary.model_validate(signed.summary),
            draft.icd if isinstance(draft.icd, list) else [], signed.icd if isinstance(signed.icd, list) else [],
            draft.created_at, signed.created_at,
            shown_rules=[str(f.get("rule_id", "")) for f in (run.findings if run is not None else [])
                         if isinstance(f, dict)],
            standing_rules=[str(rule) for rule in standing] if isinstance(standing, list) else None,
            overridden=len(detail.get("overridden", [])) if detail.get("override") else 0)
    except ValueError:  # a version damaged on disk
        return
    session.merge(SigningMeasuresRow(
        version_id=signed.id, document_id=signed.document_id, signed_at=signed.created_at,
        signer=str(detail.get("signer", "")), model_file=run.model_file if run is not None else "",
        prompt_version=run.prompt_version if run is not None else "", measures=measures.as_dict(), measurer=MEASURER))


def _latest_ids() -> Select[tuple[int]]:
    return select(func.max(SummaryVersionRow.id)).group_by(SummaryVersionRow.document_id)


def stale_versions(session: Session) -> list[int]:
    """The latest versions whose values are not in the index (or were indexed by older code)."""
    indexed = {(row.version_id, row.indexer) for row in session.scalars(select(IndexedVersionRow))}
    return [version_id for version_id in session.scalars(_latest_ids()) if (version_id, INDEXER) not in indexed]


def unmeasured_signings(session: Session) -> list[int]:
    """Signed versions without measures (or measured by older code)."""
    measured = set(session.scalars(select(SigningMeasuresRow.version_id)
                                   .where(SigningMeasuresRow.measurer == MEASURER)))
    signed = session.scalars(select(SummaryVersionRow.id).where(SummaryVersionRow.status == DraftStatus.SIGNED))
    return [version_id for version_id in signed if version_id not in measured]


def _signing_event(session: Session, version: SummaryVersionRow) -> AuditEventRow | None:
    return session.scalar(select(AuditEventRow).where(AuditEventRow.version_id == version.id,
                                                      AuditEventRow.action == "status").limit(1))


def backfill(transaction: Callable[[], AbstractContextManager[Session]]) -> int:
    """Derive what is missing or stale, BACKFILL_BATCH versions per transaction. Returns the versions done."""
    with transaction() as session:
        to_index, to_measure = stale_versions(session), unmeasured_signings(session)
    for start in range(0, len(to_index), BACKFILL_BATCH):
        with transaction() as session:
            for version in session.scalars(select(SummaryVersionRow).where(
                    SummaryVersionRow.id.in_(to_index[start:start + BACKFILL_BATCH]))):
                index_version(session, version)
    for start in range(0, len(to_measure), BACKFILL_BATCH):
        with transaction() as session:
            for version in session.scalars(select(SummaryVersionRow).where(
                    SummaryVersionRow.id.in_(to_measure[start:start + BACKFILL_BATCH]))):
                record_signing(session, version, _signing_event(session, version))
    return len(to_index) + len(to_measure)
