"""The history store: open (with checks), record runs and versions, search, audit.

Opening does, under a file lock (one process at a time): make the data folder 0700 and its files 0600;
refuse a database from a newer MedBrief; move a corrupt file aside (timestamped) and start fresh, copying
into it every row that can still be read and telling the user (``recovery``); back the file up, then migrate
with alembic (``schema_version``). A file SQLite cannot open (permissions, a read-only disk) is an error,
never taken for corruption. WAL mode with ``synchronous=FULL``: every committed edit survives a crash or
``kill -9``. Every transaction takes the write lock at its start, so concurrent writers queue instead of racing.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from inference.documents import Document
from inference.errors import StorageError
from inference.history.derived import backfill as derive
from inference.history.derived import index_version, record_signing
from inference.history.instance_lock import exclusive
from inference.history.models import AuditEventRow, DocumentRow, RunRow, SummaryVersionRow, latest_version_ids
from inference.history.records import RecordedRun, RecordSummary, RunRecord
from inference.history.recovery import (
    CannotOpen,
    check_file,
    create_private,
    lenient_text,
    move_aside,
    salvage,
    utc_now,
)
from inference.history.schema_version import backup, head_revision, known_revisions, migrate, stored_revision
from inference.history.search import search_ids
from inference.history.storage_errors import storage_error
from inference.paths import data_dir, make_tree_private
from inference.record.evidence import RunEvidence
from inference.record.provenance import Provenance
from inference.record.status import REVIEW_ORDER, UNSIGNABLE, Attestation, DraftStatus, run_status
from inference.templates.content import AnySummary, stored_form, stored_summary

DB_FILE_NAME = "history.sqlite"
OPEN_LOCK_FILE_NAME = "history.open.lock"


def default_db_path() -> Path:
    return data_dir() / DB_FILE_NAME


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class HistoryStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.notices: list[str] = []
        self.recovered = False  # this open found the file corrupt, moved it aside and salvaged it
        self._engine = create_engine(f"sqlite:///{path}", future=True)
        event.listen(self._engine, "connect", self._configure_connection)
        event.listen(self._engine, "begin", self._begin_immediate)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        # Reads (queries, statistics) begin a plain transaction: a snapshot that never waits for a writer.
        self._reader = create_engine(f"sqlite:///{path}", future=True)
        event.listen(self._reader, "connect", self._configure_connection)
        event.listen(self._reader, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))

    @staticmethod
    def _configure_connection(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # transactions begin in _begin_immediate, not in pysqlite
        dbapi_connection.text_factory = lenient_text
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @staticmethod
    def _begin_immediate(connection: Connection) -> None:
        """Take the write lock when a transaction starts: two processes saving the same record (or migrating
        a new file) wait for each other instead of both reading "absent" and failing on the insert."""
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    # -- opening -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None = None) -> HistoryStore:
        path = path or default_db_path()
        folder = path.parent
        with exclusive(folder / OPEN_LOCK_FILE_NAME):  # creates the folder 0700; refuses a read-only one
            if not os.access(folder, os.W_OK):
                raise StorageError(f"历史记录目录只读，无法保存 / the history folder is read-only: {folder}；"
                                   "可用 MEDBRIEF_DATA_DIR 指定可写目录")
            make_tree_private(folder)
            return cls._open_locked(path)

    @classmethod
    def _open_locked(cls, path: Path) -> HistoryStore:
        notices: list[str] = []
        try:
            problem = check_file(path)
        except CannotOpen as exc:
            raise StorageError(f"无法打开历史数据库（权限或磁盘问题，文件未改动）/ cannot open the history database "
                               f"{path}: {exc}") from None
        aside = move_aside(path) if problem is not None else None
        stored = stored_revision(path)
        if stored is not None and stored not in known_revisions():
            raise StorageError(f"历史数据库来自更新版本的 MedBrief（结构版本 {stored}），请升级软件 / the history database "
                               "was written by a newer MedBrief; upgrade the app (the file was not changed)")
        if stored is not None and stored != head_revision():
            copy = backup(path, stored)
            notices.append(f"数据库升级前已备份至 {copy.name} / backed up before migrating")
        if not path.exists():
            create_private(path)
        store = cls(path)
        store.notices = notices
        try:
            with store._engine.begin() as connection:
                migrate(connection)
            if aside is not None:
                store._recover(aside, problem or "")
            if (derived := derive(store._session)) and aside is None:  # a recovery's notice says enough
                notices.append(f"已为 {derived} 个版本建立队列检索与统计 / derived the cohort index and statistics")
        except (OperationalError, DBAPIError) as exc:
            store.close()
            raise storage_error(exc) from exc
        return store

    def _recover(self, aside: Path, problem: str) -> None:
        copied = salvage(aside, self.path)
        with self._session() as session:
            self._audit(session, "recover", None, None, damaged_file=aside.name, problem=problem, **copied)
        self.recovered = True
        self.notices.append(
            f"历史数据库已损坏（{problem}），已移至 {aside.name}；从中恢复了 {copied['documents']} 份病历、"
            f"{copied['summary_versions']} 个摘要版本，无法读取的部分留在该文件中 / the history database was corrupt: "
            f"moved aside to {aside}, {copied['documents']} records and {copied['summary_versions']} versions recovered"
        )

    def close(self) -> None:
        self._engine.dispose()
        self._reader.dispose()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session on a snapshot of the history, for queries and statistics."""
        session = Session(self._reader)
        try:
            yield session
        except (OperationalError, DBAPIError) as exc:
            raise storage_error(exc) from exc
        except ValueError as exc:  # a stored JSON column damaged on disk
            raise StorageError(f"历史记录中有损坏的数据，无法读取 / a stored record is damaged: {exc}") from exc
        finally:
            session.rollback()
            session.close()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except (OperationalError, IntegrityError, DBAPIError) as exc:
            session.rollback()
            raise storage_error(exc) from exc
        except ValueError as exc:  # a stored JSON column damaged on disk
            session.rollback()
            raise StorageError(f"历史记录中有损坏的数据，无法读取 / a stored record is damaged: {exc}") from exc
        finally:
            session.close()

    def _audit(self, session: Session, action: str, document_id: int | None, version_id: int | None = None,
               **detail: object) -> AuditEventRow:
        event = AuditEventRow(at=utc_now(), os_user=os_user(), action=action, document_id=document_id,
                              version_id=version_id, detail=detail)
        session.add(event)
        return event

    # -- writing ---------------------------------------------------------------------------------------

    def add_document(self, document: Document) -> int:
        with self._session() as session:
            return self._document_id(session, document)

    @staticmethod
    def _document_id(session: Session, document: Document) -> int:
        """The record of this text (same sha256), created on first sight."""
        existing = session.scalar(select(DocumentRow).where(DocumentRow.sha256 == document.sha256))
        if existing is not None:
            return existing.id
        row = DocumentRow(file_name=document.file_name, sha256=document.sha256, encoding=document.encoding,
                          text=document.text, imported_at=utc_now(),
                          provenance=document.provenance.as_dict() if document.provenance else None)
        session.add(row)
        session.flush()
        session.execute(text("INSERT INTO search_index (document_id, kind, content) VALUES (:id, 'document', :c)"),
                        {"id": row.id, "c": document.text})
        return row.id

    def record_run(self, run: RunRecord, engine_params: dict[str, Any], model_hash_prefix: str = "") -> RecordedRun:
        """Keep a model run (the draft, findings, ICD candidates and choices) and its draft version, with
        the document, in one transaction."""
        model = run.model
        icd = [a.to_record() for a in run.icd]
        with self._session() as session:
            document_id = self._document_id(session, run.document)
            row = RunRow(
                document_id=document_id, created_at=utc_now(), model_file=str(model.get("file", "")),
                model_hash_prefix=model_hash_prefix, quantization=str(model.get("quantization", "")),
                lora=str(model.get("lora") or "") or None, prompt_version=run.prompt_version,
                backend=str(model.get("backend", "")), engine_params=engine_params, timings=run.timings,
                draft=stored_form(run.summary)[0], findings=run.findings, icd=icd,
                icd_table=run.icd[0].table if run.icd else None, raw_output=run.raw_output,
                evidence=run.evidence.as_dict(), demo=bool(model.get("demo")),
            )
            session.add(row)
            session.flush()
            status = run_status(run.rejected, run.stopped)
            version = self._add_version(session, document_id, run.summary, icd, status, "model", row.id)
            self._audit(session, "generate", document_id, version.id, run_id=row.id, model=row.model_file,
                        prompt_version=row.prompt_version)
            return RecordedRun(document_id, row.id, version.id)

    def _latest(self, session: Session, document_id: int) -> SummaryVersionRow | None:
        return session.scalar(select(SummaryVersionRow).where(SummaryVersionRow.document_id == document_id)
                              .order_by(SummaryVersionRow.id.desc()).limit(1))

    def _add_version(self, session: Session, document_id: int, summary: AnySummary, icd: list[dict[str, Any]],
                     status: str, origin: str, run_id: int | None = None) -> SummaryVersionRow:
        latest = self._latest(session, document_id)
        stored, emr, diagnoses = stored_form(summary)
        version = SummaryVersionRow(
            document_id=document_id, run_id=run_id if run_id is not None else (latest.run_id if latest else None),
            number=(latest.number + 1) if latest else 1, status=status, origin=origin,
            summary=stored, icd=icd, emr_text=emr, diagnoses_text=diagnoses,
            icd_codes=" ".join(str(item.get("code")) for item in icd if item.get("code")),
            author=os_user(), created_at=utc_now(),
        )
        session.add(version)
        session.flush()
        session.execute(text("DELETE FROM search_index WHERE document_id = :id AND kind = 'summary'"),
                        {"id": document_id})
        session.execute(text("INSERT INTO search_index (document_id, kind, content) VALUES (:id, 'summary', :c)"),
                        {"id": document_id, "c": emr})
        if latest is None or latest.summary != version.summary:  # a status change states the same values
            index_version(session, version)
        return version

    def save_edit(self, document_id: int, summary: AnySummary, icd: list[dict[str, Any]],
                  action: str = "edit") -> int | None:
        """Autosave: a new version when something changed; an edit after review or signing is a new draft."""
        with self._session() as session:
            latest = self._latest(session, document_id)
            if latest is not None and latest.summary == stored_form(summary)[0] and latest.icd == icd:
                return None
            status = DraftStatus(latest.status) if latest is not None and latest.status in UNSIGNABLE \
                else DraftStatus.DRAFT
            version = self._add_version(session, document_id, summary, icd, status,
                                        "code" if action == "accept_code" else "edit")
            self._audit(session, action, document_id, version.id)
            return version.id

    def set_status(self, document_id: int, status: str, *, signer: str = "", override: str = "",
                   overridden: tuple[str, ...] = (), standing_rules: tuple[str, ...] | None = None) -> Attestation:
        """Move the latest version forward. Signing names the doctor who signs (recorded with the OS user);
        ``overridden`` is what should have stopped it (errors that stand, codes not confirmed, a demo-model
        draft), in words, and ``override`` the reason the doctor gave for going on: kept in the audit log, and
        with every export of the version. ``standing_rules``: the rules of the findings that stood (statistics)."""
        if status not in REVIEW_ORDER:
            raise StorageError(f"未知状态 {status!r} / unknown status; use one of {', '.join(REVIEW_ORDER)}")
        signer, override = signer.strip(), override.strip()
        if status == DraftStatus.SIGNED and not signer:
            raise StorageError("签署须注明签署医生的姓名 / signing needs the signing doctor's name")
        with self._session() as session:
            latest = self._latest(session, document_id)
            if latest is None:
                raise StorageError(f"记录 {document_id} 没有摘要 / record has no summary")
            if latest.status in UNSIGNABLE:
                raise StorageError(f"该草稿{UNSIGNABLE[DraftStatus(latest.status)]}，不能审核或签署 / a {latest.status} "
                                   "draft cannot be reviewed or signed")
            if REVIEW_ORDER.index(DraftStatus(status)) < REVIEW_ORDER.index(DraftStatus(latest.status)):
                raise StorageError(f"状态只能前进：{latest.status} → {status} 不允许 / status only moves forward")
            version = self._add_version(session, document_id, stored_summary(latest.summary),
                                        latest.icd, status, "status")
            extra = {key: value for key, value in (("signer", signer), ("override", override),
                                                   ("overridden", list(overridden))) if value}
            if standing_rules is not None:
                extra["standing_rules"] = list(standing_rules)
            event = self._audit(session, "status", document_id, version.id, old=latest.status, new=status, **extra)
            if status == DraftStatus.SIGNED:
                record_signing(session, version, event)
            return _attestation(version, event)

    def attestations(self, document_id: int) -> dict[int, Attestation]:
        """The review or signature of each reviewed or signed version of a record, by version id."""
        with self._session() as session:
            versions = session.scalars(select(SummaryVersionRow).where(
                SummaryVersionRow.document_id == document_id,
                SummaryVersionRow.status.in_([DraftStatus.REVIEWED, DraftStatus.SIGNED]))).all()
            events = {event.version_id: event for event in session.scalars(select(AuditEventRow).where(
                AuditEventRow.document_id == document_id, AuditEventRow.action == "status"))}
            return {version.id: _attestation(version, events.get(version.id)) for version in versions}

    def delete_record(self, document_id: int) -> None:
        """Explicit deletion (the UI asks first): the text leaves the database and the search index."""
        with self._session() as session:
            row = session.get(DocumentRow, document_id)
            if row is None:
                raise StorageError(f"没有编号为 {document_id} 的记录 / no such record")
            session.execute(text("DELETE FROM search_index WHERE document_id = :id"), {"id": document_id})
            session.delete(row)
            session.flush()
            self._audit(session, "delete", document_id, None, file_name=row.file_name, sha256=row.sha256)

    def log_export(self, document_id: int | None, fmt: str, target: str) -> None:
        with self._session() as session:
            self._audit(session, "export", document_id, None, format=fmt, target=target)

    def log_cohort_export(self, query: str, fmt: str, target: str, records: int, identified: bool) -> None:
        with self._session() as session:
            self._audit(session, "cohort_export", None, None, query=query, format=fmt, target=target,
                        records=records, identified=identified)

    def log_failure(self, error: str, exit_code: int, model_file: str) -> None:
        """A run that ended without a draft (the error's type, never its text): statistics count failures."""
        with self._session() as session:
            self._audit(session, "generate_failed", None, None, error=error, exit_code=exit_code, model=model_file)

    # -- reading ---------------------------------------------------------------------------------------

    def list_records(self, *, status: str | None = None, diagnosis: str | None = None, icd_code: str | None = None,
                     query: str | None = None, limit: int = 200) -> list[RecordSummary]:
        with self._session() as session:
            counts = dict(session.execute(select(SummaryVersionRow.document_id, func.count())
                                          .group_by(SummaryVersionRow.document_id)).all())
            # Plain columns only: a damaged JSON column of one record must not hide the whole list.
            statement = (select(DocumentRow.id, DocumentRow.file_name, DocumentRow.imported_at,
                                func.substr(DocumentRow.text, 1, 60), SummaryVersionRow.created_at,
                                SummaryVersionRow.status, SummaryVersionRow.diagnoses_text, SummaryVersionRow.icd_codes)
                         .join(SummaryVersionRow, SummaryVersionRow.document_id == DocumentRow.id)
                         .where(SummaryVersionRow.id.in_(latest_version_ids())))
            if status:
                statement = statement.where(SummaryVersionRow.status == status)
            if diagnosis:
                statement = statement.where(SummaryVersionRow.diagnoses_text.contains(diagnosis))
            if icd_code:
                statement = statement.where(SummaryVersionRow.icd_codes.contains(icd_code))
            if query:
                statement = statement.where(DocumentRow.id.in_(search_ids(session, query)))
            statement = statement.order_by(SummaryVersionRow.created_at.desc(), SummaryVersionRow.id.desc()).limit(limit)
            return [RecordSummary(document_id=doc_id, file_name=file_name, imported_at=imported_at,
                                  updated_at=updated_at, status=status, versions=counts.get(doc_id, 0),
                                  diagnoses=diagnoses.replace("\n", "、"), icd_codes=icd_codes,
                                  preview=preview.replace("\n", " "))
                    for doc_id, file_name, imported_at, preview, updated_at, status, diagnoses, icd_codes
                    in session.execute(statement).all()]

    def search(self, query: str, *, status: str | None = None, diagnosis: str | None = None,
               icd_code: str | None = None) -> list[RecordSummary]:
        return self.list_records(query=query, status=status, diagnosis=diagnosis, icd_code=icd_code)

    def document(self, document_id: int) -> DocumentRow:
        with self._session() as session:
            row = session.get(DocumentRow, document_id)
            if row is None:
                raise StorageError(f"没有编号为 {document_id} 的记录 / no such record")
            session.expunge(row)
            return row

    def opened_document(self, document_id: int) -> Document:
        """The record as it was read, with where its lines stand in the original pages."""
        row = self.document(document_id)
        return Document(row.text, row.file_name, row.encoding, row.sha256, Provenance.from_dict(row.provenance))

    def versions(self, document_id: int) -> list[SummaryVersionRow]:
        with self._session() as session:
            rows = list(session.scalars(select(SummaryVersionRow).where(SummaryVersionRow.document_id == document_id)
                                        .order_by(SummaryVersionRow.id)))
            for row in rows:
                session.expunge(row)
            return rows

    def runs(self, document_id: int) -> list[RunRow]:
        with self._session() as session:
            rows = list(session.scalars(select(RunRow).where(RunRow.document_id == document_id).order_by(RunRow.id)))
            for row in rows:
                session.expunge(row)
            return rows

    def evidence(self, document_id: int) -> RunEvidence:
        """The evidence of the run behind the record's latest version (none for a run from before 0003)."""
        with self._session() as session:
            latest = self._latest(session, document_id)
            run = session.get(RunRow, latest.run_id) if latest is not None and latest.run_id is not None else None
            return RunEvidence.from_dict(run.evidence if run is not None else None)

    def from_demo(self, document_id: int) -> bool:
        """Whether the run behind the record's latest version was the demo model's."""
        with self._session() as session:
            latest = self._latest(session, document_id)
            run = session.get(RunRow, latest.run_id) if latest is not None and latest.run_id is not None else None
            return bool(run is not None and run.demo)

    def draft_and_final(self, document_id: int) -> tuple[SummaryVersionRow, SummaryVersionRow]:
        """The model's latest draft and the doctor's latest version, for side-by-side comparison."""
        versions = self.versions(document_id)
        if not versions:
            raise StorageError(f"记录 {document_id} 没有摘要 / record has no summary")
        drafts = [v for v in versions if v.origin == "model"]
        return (drafts[-1] if drafts else versions[0]), versions[-1]

    def audit_log(self, document_id: int | None = None, limit: int = 500) -> list[AuditEventRow]:
        with self._session() as session:
            statement = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
            if document_id is not None:
                statement = statement.where(AuditEventRow.document_id == document_id)
            rows = list(session.scalars(statement))
            for row in rows:
                session.expunge(row)
            return rows

    def integrity_ok(self) -> bool:
        with self._engine.connect() as connection:
            return connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def _attestation(version: SummaryVersionRow, event: AuditEventRow | None) -> Attestation:
    """A reviewed or signed version's attestation from the audit event that moved it (its author and time when
    the event is missing from a salvaged history)."""
    detail = event.detail if event is not None and isinstance(event.detail, dict) else {}
    return Attestation(DraftStatus(version.status), str(detail.get("signer", "")),
                       event.os_user if event is not None else version.author,
                       event.at if event is not None else version.created_at,
                       str(detail.get("override", "")), tuple(str(x) for x in detail.get("overridden", [])))
