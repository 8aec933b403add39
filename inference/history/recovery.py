"""A damaged history file: how it is recognised, moved aside and what can still be read of it salvaged.

A file SQLite reports as corrupt (or that is not SQLite at all) is moved aside with its -wal and -shm,
timestamped and kept; every row that can still be read is copied into the fresh history, row by row around
damaged pages. A file SQLite cannot open (permissions, a read-only disk) is an error, never corruption.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from inference.errors import StorageError
from inference.paths import PRIVATE_FILE_MODE, make_private

SQLITE_HEADER = b"SQLite format 3\x00"


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class CannotOpen(Exception):
    """SQLite could not open the file (permissions, a read-only disk, a lock): not a sign of corruption."""


_CORRUPTION = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def check_file(path: Path) -> str | None:
    """None if the file is a healthy SQLite database (or absent), else why it is corrupt. Raises CannotOpen
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
        raise CannotOpen(str(exc)) from exc
    except OSError as exc:
        raise CannotOpen(exc.strerror or str(exc)) from exc
    return None if result == "ok" else str(result)


def create_private(path: Path) -> None:
    """An empty file, 0600: SQLite gives its -wal and -shm files the database file's permissions."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))


def move_aside(path: Path) -> Path:
    aside = path.with_name(f"{path.name}.corrupt-{utc_now():%Y%m%d-%H%M%S}")
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


def lenient_text(data: bytes) -> str:
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


def _documents_from_search_index(source: sqlite3.Connection, db: sqlite3.Connection) -> int:
    """Records whose row in ``documents`` cannot be read, but whose runs or versions can: their text is also in
    the search index, stored on other pages. They come back under a name that says so."""
    have = {row[0] for row in db.execute("SELECT id FROM documents")}
    wanted = {row[0] for table in ("runs", "summary_versions")
              for row in _readable_rows(source, table, ["document_id"])} - have
    if not wanted:
        return 0
    try:
        texts = source.execute("SELECT document_id, content FROM search_index WHERE kind = 'document'").fetchall()
    except sqlite3.DatabaseError:
        return 0
    restored = 0
    for document_id, text in texts:
        if document_id in wanted and isinstance(text, str) and text:
            wanted.discard(document_id)
            db.execute("INSERT INTO documents (id, file_name, sha256, encoding, text, imported_at) VALUES "
                       "(?, ?, ?, 'utf-8', ?, ?)", (document_id, f"恢复的病历-{document_id}.txt",
                                                    hashlib.sha256(text.encode()).hexdigest(), text, utc_now()))
            restored += 1
    return restored


def salvage(damaged: Path, target: Path) -> dict[str, int]:
    """Copy what can still be read of a damaged history file into ``target`` (a healthy, migrated history):
    documents, runs, versions and audit events, each row on its own; the search index is rebuilt for them.
    Returns the rows copied per table."""
    copied = dict.fromkeys(_SALVAGED_TABLES, 0)
    try:
        source = sqlite3.connect(f"file:{damaged}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return copied
    source.text_factory = lenient_text
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
            if table == "documents":
                copied[table] += _documents_from_search_index(source, db)
        db.execute("INSERT INTO search_index (document_id, kind, content) SELECT id, 'document', text FROM documents")
        db.execute("INSERT INTO search_index (document_id, kind, content) SELECT document_id, 'summary', emr_text "
                   "FROM summary_versions WHERE id IN (SELECT max(id) FROM summary_versions GROUP BY document_id)")
        db.commit()
    return copied
