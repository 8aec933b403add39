"""The history store: open (with checks), record runs and versions, search, audit, export.

Opening does, under a file lock (one process at a time): make the data folder 0700 and its files 0600;
refuse a database from a newer MedBrief; move a corrupt file aside (timestamped) and start fresh, copying
into it every row that can still be read and telling the user; back the file up, then migrate with alembic.
A file SQLite cannot open (permissions, a read-only disk) is an error, never taken for corruption. WAL mode
with ``synchronous=FULL``: every committed edit survives a crash or ``kill -9``. Every transaction takes the
write lock at its start, so concurrent writers queue instead of racing.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from inference.checks.validation import RunEvidence
from inference.documents import Document
from inference.errors import InputError, StorageError
from inference.history.instance_lock import exclusive
from inference.history.models import REJECTED, STATUSES, AuditEventRow, DocumentRow, RunRow, SummaryVersionRow
from inference.icd.coding import IcdAssignment
from inference.paths import PRIVATE_FILE_MODE, data_dir, make_private, make_tree_private
from inference.summary.schema import StructuredSummary, render_emr_text

DB_FILE_NAME = "history.sqlite"
OPEN_LOCK_FILE_NAME = "history.open.lock"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_HEADER = b"SQLite format 3\x00"


def default_db_path() -> Path:
    return data_dir() / DB_FILE_NAME


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


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


def _alembic_config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(_alembic_config(None))
    return str(script.get_current_head())


def _known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(_alembic_config(None))
    return {rev.revision for rev in script.walk_revisions()}


class _CannotOpen(Exception):
    """SQLite could not open the file (permissions, a read-only disk, a lock): not a sign of corruption."""


_CORRUPTION = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def _check_file(path: Path) -> str | None:
    """None if the file is a healthy SQLite database (or absent), else why it is corrupt. Raises _CannotOpen
    when the file cannot be read at all: a healthy database behind a permission problem is never moved."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        with path.open("rb") as handle:
            if handle.read(16) != SQLITE_HEADER:
                return "不是 SQLite 数据库"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            result = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") in _CORRUPTION:
            return str(exc)
        raise _CannotOpen(str(exc)) from exc
    except OSError as exc:
        raise _CannotOpen(exc.strerror or str(exc)) from exc
    return None if result == "ok" else str(result)


def _stored_revision(path: Path) -> str | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        has_table = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'").fetchone()
        if not has_table:
            return None
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


def _backup(path: Path, label: str) -> Path:
    target = path.with_name(f"{path.name}.bak-{label}-{_now():%Y%m%d-%H%M%S}")
    _create_private(target)
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return target


def _create_private(path: Path) -> None:
    """An empty file, 0600: SQLite gives its -wal and -shm files the database file's permissions."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))


def _move_aside(path: Path) -> Path:
    aside = path.with_name(f"{path.name}.corrupt-{_now():%Y%m%d-%H%M%S}")
    try:
        shutil.move(str(path), aside)
        for suffix in ("-wal", "-shm"):
            sidecar = path.with_name(path.name + suffix)
            if sidecar.exists():
                shutil.move(str(sidecar), aside.with_name(aside.name + suffix))
    except OSError as exc:
        raise StorageError(f"历史数据库已损坏，且无法移走 / the history database is corrupt and cannot be moved "
                           f"aside: {exc.strerror}") from None
    make_private(aside)
    return aside


def _lenient_text(data: bytes) -> str:
    """A damaged byte inside a stored text must not make a whole listing, export or salvage unreadable."""
    return data.decode("utf-8", "replace")


# Parents first, so that a salvaged version finds its document.
_SALVAGED_TABLES = ("documents", "runs", "summary_versions", "audit_events")
_MISSES_BEFORE_GIVING_UP = 10_000


def _readable_rows(source: sqlite3.Connection, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """Every row of ``table`` that can still be read: a whole scan, else row by row around damaged pages."""
    listed = ", ".join(columns)
    try:
        return source.execute(f"SELECT {listed} FROM {table} ORDER BY rowid").fetchall()
    except sqlite3.DatabaseError:
        pass
    rows, rowid, misses = [], 0, 0
    while misses < _MISSES_BEFORE_GIVING_UP:
        rowid += 1
        try:
            row = source.execute(f"SELECT {listed} FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            row = None
        misses = 0 if row else misses + 1
        if row:
            rows.append(row)
    return rows


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    try:
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError:
        return []


def salvage(damaged: Path, target: Path) -> dict[str, int]:
    """Copy what can still be read of a damaged history file into ``target`` (a healthy, migrated history):
    documents, runs, versions and audit events, each row on its own; the search index is rebuilt for them.
    Returns the rows copied per table."""
    copied = dict.fromkeys(_SALVAGED_TABLES, 0)
    try:
        source = sqlite3.connect(f"file:{damaged}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return copied
    source.text_factory = _lenient_text
    with closing(source), closing(sqlite3.connect(target)) as db:
        db.execute("PRAGMA foreign_keys=ON")
        for table in _SALVAGED_TABLES:
            wanted = set(_columns(source, table))
            columns = [c for c in _columns(db, table) if c in wanted]
            if not columns:
                continue
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            for row in _readable_rows(source, table, columns):
                try:
                    db.execute(insert, row)
                    copied[table] += 1
                except sqlite3.DatabaseError:  # its document was lost, or the row is not whole
                    continue
        db.execute("INSERT INTO search_index (document_id, kind, content) SELECT id, 'document', text FROM documents")
        db.execute("INSERT INTO search_index (document_id, kind, content) SELECT document_id, 'summary', emr_text "
                   "FROM summary_versions WHERE id IN (SELECT max(id) FROM summary_versions GROUP BY document_id)")
        db.commit()
    return copied


def _storage_error(exc: Exception) -> StorageError:
    text_ = str(exc).lower()
    if "disk is full" in text_ or "database or disk is full" in text_:
        return StorageError("磁盘已满，未能保存，请清理磁盘后重试 / disk full: not saved")
    if "readonly" in text_ or "read-only" in text_:
        return StorageError("历史数据库只读，未能保存 / the history database is read-only: not saved")
    if "locked" in text_ or "busy" in text_:
        return StorageError("历史数据库正被占用，请稍后重试 / the history database is locked by another process")
    if "append-only" in text_:
        return StorageError("历史记录只能追加，不能修改 / history is append-only")
    return StorageError(f"历史数据库写入失败 / history database error: {str(exc).splitlines()[0]}")


class HistoryStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.notices: list[str] = []
        self.recovered = False  # this open found the file corrupt, moved it aside and salvaged it
        self._engine = create_engine(f"sqlite:///{path}", future=True)
        event.listen(self._engine, "connect", self._configure_connection)
        event.listen(self._engine, "begin", self._begin_immediate)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    @staticmethod
    def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions begin in _begin_immediate, not in pysqlite
        dbapi_connection.text_factory = _lenient_text
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @staticmethod
    def _begin_immediate(connection: Any) -> None:
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
            problem = _check_file(path)
        except _CannotOpen as exc:
            raise StorageError(f"无法打开历史数据库（权限或磁盘问题，文件未改动）/ cannot open the history database "
                               f"{path}: {exc}") from None
        aside = _move_aside(path) if problem is not None else None
        stored = _stored_revision(path)
        if stored is not None and stored not in _known_revisions():
            raise StorageError(
                f"历史数据库来自更新版本的 MedBrief（结构版本 {stored}），请升级软件 / the history database was "
                "written by a newer MedBrief; upgrade the app (the file was not changed)"
            )
        head = head_revision()
        if stored is not None and stored != head:
            backup = _backup(path, stored)
            notices.append(f"数据库升级前已备份至 {backup.name} / backed up before migrating")
        if not path.exists():
            _create_private(path)
        store = cls(path)
        store.notices = notices
        try:
            with store._engine.begin() as connection:
                command.upgrade(_alembic_config(connection), "head")
            if aside is not None:
                store._recover(aside, problem or "")
        except (OperationalError, DBAPIError) as exc:
            store.close()
            raise _storage_error(exc) from exc
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

    @contextmanager
    def _session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except (OperationalError, IntegrityError, DBAPIError) as exc:
            session.rollback()
            raise _storage_error(exc) from exc
        except ValueError as exc:  # a stored JSON column damaged on disk
            session.rollback()
            raise StorageError(f"历史记录中有损坏的数据，无法读取 / a stored record is damaged: {exc}") from exc
        finally:
            session.close()

    def _audit(self, session: Session, action: str, document_id: int | None, version_id: int | None = None,
               **detail: Any) -> None:
        session.add(AuditEventRow(at=_now(), os_user=os_user(), action=action, document_id=document_id,
                                  version_id=version_id, detail=detail))

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
                          text=document.text, imported_at=_now())
        session.add(row)
        session.flush()
        session.execute(text("INSERT INTO search_index (document_id, kind, content) VALUES (:id, 'document', :c)"),
                        {"id": row.id, "c": document.text})
        return row.id

    def record_run(self, report: Any, engine_params: dict[str, Any], model_hash_prefix: str = "",
                   lora: str | None = None) -> RecordedRun:
        """Keep a model run (the draft, findings, ICD candidates and choices) and its draft version, with
        the document, in one transaction."""
        model = report.result.model
        icd = [a.to_record() for a in report.icd]
        with self._session() as session:
            document_id = self._document_id(session, report.document)
            run = RunRow(
                document_id=document_id, created_at=_now(), model_file=str(model.get("file", "")),
                model_hash_prefix=model_hash_prefix, quantization=str(model.get("quantization", "")),
                lora=lora if lora is not None else (str(model.get("lora") or "") or None), prompt_version=report.result.prompt_version, backend=str(model.get("backend", "")),
                engine_params=engine_params, timings=report.result.timings.as_dict(),
                draft=report.result.summary.model_dump(),
                findings=[f.as_dict() for f in report.validation.findings] if report.validation else [],
                icd=icd, icd_table=report.icd[0].table if report.icd else None, raw_output=report.result.raw_output,
                evidence=report.result.evidence.as_dict(), demo=bool(model.get("demo")),
            )
            session.add(run)
            session.flush()
            status = REJECTED if getattr(report, "rejected", False) else "draft"
            version = self._add_version(session, document_id, report.result.summary, icd, status, "model", run.id)
            self._audit(session, "generate", document_id, version.id, run_id=run.id, model=run.model_file,
                        prompt_version=run.prompt_version)
            return RecordedRun(document_id, run.id, version.id)

    def _latest(self, session: Session, document_id: int) -> SummaryVersionRow | None:
        return session.scalar(select(SummaryVersionRow).where(SummaryVersionRow.document_id == document_id)
                              .order_by(SummaryVersionRow.id.desc()).limit(1))

    def _add_version(self, session: Session, document_id: int, summary: StructuredSummary, icd: list[dict[str, Any]],
                     status: str, origin: str, run_id: int | None = None) -> SummaryVersionRow:
        latest = self._latest(session, document_id)
        emr = render_emr_text(summary)
        version = SummaryVersionRow(
            document_id=document_id, run_id=run_id if run_id is not None else (latest.run_id if latest else None),
            number=(latest.number + 1) if latest else 1, status=status, origin=origin,
            summary=summary.model_dump(), icd=icd, emr_text=emr,
            diagnoses_text="\n".join(d.name for d in summary.diagnoses),
            icd_codes=" ".join(str(item.get("code")) for item in icd if item.get("code")),
            author=os_user(), created_at=_now(),
        )
        session.add(version)
        session.flush()
        session.execute(text("DELETE FROM search_index WHERE document_id = :id AND kind = 'summary'"),
                        {"id": document_id})
        session.execute(text("INSERT INTO search_index (document_id, kind, content) VALUES (:id, 'summary', :c)"),
                        {"id": document_id, "c": emr})
        return version

    def save_edit(self, document_id: int, summary: StructuredSummary, icd: list[dict[str, Any]],
                  action: str = "edit") -> int | None:
        """Autosave: a new version when something changed; an edit after review or signing is a new draft."""
        with self._session() as session:
            latest = self._latest(session, document_id)
            if latest is not None and latest.summary == summary.model_dump() and latest.icd == icd:
                return None
            status = REJECTED if latest is not None and latest.status == REJECTED else "draft"
            version = self._add_version(session, document_id, summary, icd, status,
                                        "code" if action == "accept_code" else "edit")
            self._audit(session, action, document_id, version.id)
            return version.id

    def set_status(self, document_id: int, status: str, *, signer: str = "", override: str = "") -> int:
        """Move the latest version forward. Signing names the doctor who signs (recorded with the OS user);
        ``override`` is the reason the doctor gave for signing over what should have stopped it (errors that
        stand, unconfirmed codes, a demo-model draft): kept in the audit log."""
        if status not in STATUSES:
            raise StorageError(f"未知状态 {status!r} / unknown status; use one of {', '.join(STATUSES)}")
        signer, override = signer.strip(), override.strip()
        if status == "signed" and not signer:
            raise StorageError("签署须注明签署医生的姓名 / signing needs the signing doctor's name")
        with self._session() as session:
            latest = self._latest(session, document_id)
            if latest is None:
                raise StorageError(f"记录 {document_id} 没有摘要 / record has no summary")
            if latest.status == REJECTED:
                raise StorageError("该草稿未通过核对（与原文不符），不能审核或签署，请重新生成 / "
                                   "a rejected draft cannot be reviewed or signed; generate it again")
            if STATUSES.index(status) < STATUSES.index(latest.status):
                raise StorageError(f"状态只能前进：{latest.status} → {status} 不允许 / status only moves forward")
            version = self._add_version(session, document_id, StructuredSummary.model_validate(latest.summary),
                                        latest.icd, status, "status")
            extra = {key: value for key, value in (("signer", signer), ("override", override)) if value}
            self._audit(session, "status", document_id, version.id, old=latest.status, new=status, **extra)
            return version.id

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

    # -- reading ---------------------------------------------------------------------------------------

    def list_records(self, *, status: str | None = None, diagnosis: str | None = None, icd_code: str | None = None,
                     query: str | None = None, limit: int = 200) -> list[RecordSummary]:
        with self._session() as session:
            latest_ids = (select(func.max(SummaryVersionRow.id)).group_by(SummaryVersionRow.document_id)
                          .scalar_subquery())
            counts = dict(session.execute(select(SummaryVersionRow.document_id, func.count())
                                          .group_by(SummaryVersionRow.document_id)).all())
            # Plain columns only: a damaged JSON column of one record must not hide the whole list.
            statement = (select(DocumentRow.id, DocumentRow.file_name, DocumentRow.imported_at,
                                func.substr(DocumentRow.text, 1, 60), SummaryVersionRow.created_at,
                                SummaryVersionRow.status, SummaryVersionRow.diagnoses_text, SummaryVersionRow.icd_codes)
                         .join(SummaryVersionRow, SummaryVersionRow.document_id == DocumentRow.id)
                         .where(SummaryVersionRow.id.in_(latest_ids)))
            if status:
                statement = statement.where(SummaryVersionRow.status == status)
            if diagnosis:
                statement = statement.where(SummaryVersionRow.diagnoses_text.contains(diagnosis))
            if icd_code:
                statement = statement.where(SummaryVersionRow.icd_codes.contains(icd_code))
            if query:
                statement = statement.where(DocumentRow.id.in_(self._search_ids(session, query)))
            statement = statement.order_by(SummaryVersionRow.created_at.desc(), SummaryVersionRow.id.desc()).limit(limit)
            return [RecordSummary(document_id=doc_id, file_name=file_name, imported_at=imported_at,
                                  updated_at=updated_at, status=status, versions=counts.get(doc_id, 0),
                                  diagnoses=diagnoses.replace("\n", "、"), icd_codes=icd_codes,
                                  preview=preview.replace("\n", " "))
                    for doc_id, file_name, imported_at, preview, updated_at, status, diagnoses, icd_codes
                    in session.execute(statement).all()]

    @classmethod
    def _search_ids(cls, session: Session, query: str) -> list[int]:
        """Documents whose text or latest summary contains the query, or its standard form (心衰 → 心力衰竭)."""
        from inference.checks.clinical_terms import expand_terms

        ids: list[int] = []
        for form in dict.fromkeys([query.strip(), expand_terms(query.strip())]):
            if form:
                ids += [i for i in cls._search_form(session, form) if i not in ids]
        return ids

    @staticmethod
    def _search_form(session: Session, query: str) -> list[int]:
        if len(query) >= 3:  # the trigram index answers MATCH for three characters and more
            phrase = '"' + query.replace('"', '""') + '"'
            rows = session.execute(text("SELECT DISTINCT document_id FROM search_index WHERE search_index MATCH :q"),
                                   {"q": phrase})
        else:  # 心衰, 肺炎: shorter than a trigram, so scan (FTS5's LIKE finds nothing below 3 characters)
            rows = session.execute(text("SELECT DISTINCT document_id FROM search_index WHERE instr(content, :q) > 0"),
                                   {"q": query})
        return [int(row[0]) for row in rows]

    def search(self, query: str, **filters: Any) -> list[RecordSummary]:
        return self.list_records(query=query, **filters)

    def document(self, document_id: int) -> DocumentRow:
        with self._session() as session:
            row = session.get(DocumentRow, document_id)
            if row is None:
                raise StorageError(f"没有编号为 {document_id} 的记录 / no such record")
            session.expunge(row)
            return row

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

    # -- export ----------------------------------------------------------------------------------------

    def export_record(self, document_id: int, fmt: str, target: str = "stdout") -> str:
        from inference.export import export

        versions = self.versions(document_id)
        if not versions:
            raise StorageError(f"没有编号为 {document_id} 的记录 / no such record")
        latest = versions[-1]
        if latest.status == REJECTED:
            raise StorageError("该草稿未通过核对（与原文不符），不能导出 / a rejected draft cannot be exported")
        summary = StructuredSummary.model_validate(latest.summary)
        icd = [IcdAssignment.from_record(item) for item in latest.icd]
        output = export(summary, fmt, icd, demo=self.from_demo(document_id), status=latest.status,
                        version=latest.number)
        self.log_export(document_id, fmt, target)
        return output

    def export_reviewed_jsonl(self, target: Path) -> tuple[int, list[int]]:
        """Reviewed and signed summaries as JSONL: source, model draft, doctor's final (cohorts, LoRA data).
        A record damaged on disk is left out, not the whole export: returns (lines written, ids left out)."""
        lines, damaged = [], []
        for document_id in self._reviewed_ids():
            try:
                draft, final = self.draft_and_final(document_id)
                document = self.document(document_id)
                run = next((r for r in self.runs(document_id) if r.id == draft.run_id), None)
            except StorageError:
                damaged.append(document_id)
                continue
            lines.append(json.dumps({
                "document_id": document_id, "source": document.text, "model_draft": draft.summary,
                "final": final.summary, "final_icd": final.icd, "status": final.status,
                "prompt_version": run.prompt_version if run else None, "model": run.model_file if run else None,
            }, ensure_ascii=False))
        try:
            target.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"无法写入导出文件 / cannot write {target}: {exc.strerror}") from exc
        self.log_export(None, "jsonl", str(target))
        return len(lines), damaged

    def _reviewed_ids(self) -> list[int]:
        """Documents whose latest version is reviewed or signed, read from plain columns only."""
        with self._session() as session:
            latest = (select(func.max(SummaryVersionRow.id)).group_by(SummaryVersionRow.document_id)
                      .scalar_subquery())
            rows = session.execute(select(SummaryVersionRow.document_id)
                                   .where(SummaryVersionRow.id.in_(latest),
                                          SummaryVersionRow.status.in_(("reviewed", "signed")))
                                   .order_by(SummaryVersionRow.document_id))
            return [int(row[0]) for row in rows]
