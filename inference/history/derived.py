"""Rows the history derives from its versions: the values of each record's latest version (cohort queries) and
the measures of each signature (statistics). They are written with the version that causes them, in the same
transaction; ``backfill`` derives them all for a history written before they existed, or by older code
(``derived_state`` holds INDEXER and MEASURER of the code that derived them), in short transactions so that no
other process waits for long."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from inference.history.edit_measures import measure_signing
from inference.history.models import (
    AuditEventRow,
    DerivedStateRow,
    RunRow,
    SigningMeasuresRow,
    SummaryVersionRow,
    ValueIndexRow,
    latest_version_ids,
)
from inference.history.note_rows import value_rows
from inference.record.status import DraftStatus
from inference.templates.content import four_sections_of

# Raise when what note_rows.value_rows or edit_measures.measure_signing derive changes: rows written by older
# code are derived again at the next open.
INDEXER = 1
MEASURER = 1
BACKFILL_BATCH = 200


def index_version(session: Session, version: SummaryVersionRow) -> None:
    """Make ``value_index`` hold the values of this version, the record's latest."""
    session.execute(delete(ValueIndexRow).where(ValueIndexRow.document_id == version.document_id))
    try:
        rows = value_rows(four_sections_of(version.summary))
    except ValueError:  # a version damaged on disk states no values
        rows = []
    session.add_all(ValueIndexRow(document_id=version.document_id, section=row.section, term=row.term[:80],
                                  parameter=row.parameter, comparator=row.comparator, value_number=row.value_number,
                                  unit=row.unit) for row in rows if row.value_number is not None)


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
            four_sections_of(draft.summary), four_sections_of(signed.summary),
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
        prompt_version=run.prompt_version if run is not None else "", measures=measures.as_dict()))


def _current(session: Session) -> bool:
    state = {row.name: row.version for row in session.scalars(select(DerivedStateRow))}
    return state == {"indexer": INDEXER, "measurer": MEASURER}


def _signing_event(session: Session, version: SummaryVersionRow) -> AuditEventRow | None:
    return session.scalar(select(AuditEventRow).where(AuditEventRow.version_id == version.id,
                                                      AuditEventRow.action == "status").limit(1))


def _in_batches(transaction: Callable[[], AbstractContextManager[Session]], ids: list[int],
                derive: Callable[[Session, SummaryVersionRow], None]) -> None:
    for start in range(0, len(ids), BACKFILL_BATCH):
        with transaction() as session:
            for version in session.scalars(select(SummaryVersionRow).where(
                    SummaryVersionRow.id.in_(ids[start:start + BACKFILL_BATCH]))):
                derive(session, version)


def backfill(transaction: Callable[[], AbstractContextManager[Session]]) -> int:
    """Derive every row again when the code that derived them is not today's (one read when it is: each save
    derives its own rows), BACKFILL_BATCH versions per transaction. Returns the versions derived."""
    with transaction() as session:
        if _current(session):
            return 0
        to_index = list(session.scalars(latest_version_ids()))
        to_measure = list(session.scalars(select(SummaryVersionRow.id)
                                          .where(SummaryVersionRow.status == DraftStatus.SIGNED)))
    _in_batches(transaction, to_index, index_version)
    _in_batches(transaction, to_measure, lambda session, version: record_signing(
        session, version, _signing_event(session, version)))
    with transaction() as session:  # only once all is derived: an open that dies half-way derives all again
        session.merge(DerivedStateRow(name="indexer", version=INDEXER))
        session.merge(DerivedStateRow(name="measurer", version=MEASURER))
    return len(to_index) + len(to_measure)
