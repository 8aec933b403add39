"""ORM models of the history database. Rows are appended, never rewritten: a doctor's edit is a new
``SummaryVersion``; the audit table refuses UPDATE and DELETE (database triggers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, Select, String, Text, false, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class DocumentRow(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(260))
    sha256: Mapped[str] = mapped_column(String(64), index=True, unique=True)
    encoding: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime)
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # record.provenance.Provenance
    runs: Mapped[list[RunRow]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True, order_by="RunRow.id")
    versions: Mapped[list[SummaryVersionRow]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True, order_by="SummaryVersionRow.id")


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    model_file: Mapped[str] = mapped_column(String(260))
    model_hash_prefix: Mapped[str] = mapped_column(String(64))
    quantization: Mapped[str] = mapped_column(String(32))
    lora: Mapped[str | None] = mapped_column(String(260), nullable=True)
    prompt_version: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(16))
    engine_params: Mapped[dict[str, Any]] = mapped_column(JSON)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON)
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)
    findings: Mapped[list[Any]] = mapped_column(JSON)
    icd: Mapped[list[Any]] = mapped_column(JSON)
    icd_table: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    raw_output: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # record.evidence.RunEvidence
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # written by the demo model
    document: Mapped[DocumentRow] = relationship(back_populates="runs")


class SummaryVersionRow(Base):
    __tablename__ = "summary_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # record.status.DraftStatus
    origin: Mapped[str] = mapped_column(String(16))  # model | edit | status | code
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    icd: Mapped[list[Any]] = mapped_column(JSON)
    emr_text: Mapped[str] = mapped_column(Text)
    diagnoses_text: Mapped[str] = mapped_column(Text)
    icd_codes: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    document: Mapped[DocumentRow] = relationship(back_populates="versions")


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    os_user: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))  # generate | edit | status | accept_code | export | delete
    document_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # no FK: survives a deletion
    version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


# Derived rows: rebuilt from the versions above whenever the code that derives them changes (``derived``).

class ValueIndexRow(Base):
    """A value stated by a record's latest version (``note_rows.value_rows``), for cohort queries."""

    __tablename__ = "value_index"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    section: Mapped[str] = mapped_column(String(32))
    term: Mapped[str] = mapped_column(String(80))
    parameter: Mapped[str] = mapped_column(String(32))  # indexed with unit and value (migration 0005)
    comparator: Mapped[str] = mapped_column(String(1))
    value_number: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(30))


class DerivedStateRow(Base):
    """Which code derived the rows below (``derived.INDEXER``, ``derived.MEASURER``): when it is today's, every row
    is current, since each save derives its own; when it is not (or absent: a history from before 0005, a
    salvaged one), the next open derives them all again."""

    __tablename__ = "derived_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class SigningMeasuresRow(Base):
    """What the doctor changed in the model's draft before signing (``edit_measures``): counts, no text."""

    __tablename__ = "signing_measures"

    version_id: Mapped[int] = mapped_column(ForeignKey("summary_versions.id", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    signed_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    signer: Mapped[str] = mapped_column(String(128))
    model_file: Mapped[str] = mapped_column(String(260))
    prompt_version: Mapped[str] = mapped_column(String(64))
    measures: Mapped[dict[str, Any]] = mapped_column(JSON)


def latest_version_ids() -> Select[tuple[int]]:
    """The id of each record's latest version: what the list, queries, exports and the value index read."""
    return select(func.max(SummaryVersionRow.id)).group_by(SummaryVersionRow.document_id)
