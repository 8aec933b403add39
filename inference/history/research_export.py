"""A cohort as research data: one row per value and per diagnosis its records' latest versions state, shaped like
OMOP's NOTE_NLP (section, snippet, offset, term, value, unit, code), as CSV or JSONL. A record is named by a
pseudonymous id by default: an HMAC of its text's hash under a key that never leaves this PC, stable across
exports from this history and meaningless anywhere else. Its file name and history id only on request. Every
cohort export is an audit event (the query, the format, how many records, whether it named them)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from inference.errors import StorageError
from inference.history.cohort import Cohort
from inference.history.models import DocumentRow, SummaryVersionRow
from inference.history.note_rows import note_rows
from inference.history.store import HistoryStore
from inference.paths import PRIVATE_FILE_MODE
from inference.templates.content import four_sections_of

RESEARCH_FORMATS = ("csv", "jsonl")
KEY_FILE_NAME = "research-id.key"
KEY_BYTES = 32
COLUMNS = ("person", "section", "section_name", "snippet", "offset", "term", "parameter", "comparator", "value",
           "value_number", "unit", "code", "status", "date")
IDENTIFIED_COLUMNS = ("document_id", "file_name")
BATCH = 500


def research_key(folder: Path) -> bytes:
    """This history's pseudonymisation key (32 random bytes, 0600), made on first use. A damaged key is an error,
    never silently replaced: a new key would give every record a new id and break linkage across exports."""
    path = folder / KEY_FILE_NAME
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:  # made before, by this export's history or by another process just now
        pass
    except OSError as exc:
        raise StorageError(f"无法创建研究假名密钥 {path}：{exc.strerror}") from exc
    else:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise StorageError(f"无法读取研究假名密钥 {path}：{exc.strerror}") from exc
    if len(key) != KEY_BYTES:
        raise StorageError(f"研究假名密钥 {path} 已损坏（{len(key)} 字节，应为 {KEY_BYTES}）：请从备份恢复；删除它将使今后导出的"
                           "假名与以往不同 / the pseudonymisation key is damaged")
    return key


def pseudonym(key: bytes, sha256: str) -> str:
    return "P" + hmac.new(key, sha256.encode(), hashlib.sha256).hexdigest()[:16]


def cohort_rows(store: HistoryStore, cohort: Cohort, *, identified: bool = False) -> Iterator[dict[str, Any]]:
    """The rows of every member, read BATCH records at a time."""
    key = research_key(store.path.parent)
    ids = [m.version_id for m in cohort.members]
    for start in range(0, len(ids), BATCH):
        with store.reading() as session:
            found = session.execute(
                select(SummaryVersionRow.document_id, SummaryVersionRow.summary, SummaryVersionRow.icd,
                       SummaryVersionRow.status, SummaryVersionRow.created_at, DocumentRow.sha256, DocumentRow.file_name)
                .join(DocumentRow, DocumentRow.id == SummaryVersionRow.document_id)
                .where(SummaryVersionRow.id.in_(ids[start:start + BATCH])).order_by(SummaryVersionRow.id)).all()
        for document_id, summary, icd, status, created_at, sha256, file_name in found:
            try:
                rows = note_rows(four_sections_of(summary), icd if isinstance(icd, list) else [])
            except ValueError:  # damaged on disk: its record contributes no rows
                continue
            who = {"person": pseudonym(key, sha256)}
            if identified:
                who |= {"document_id": document_id, "file_name": file_name}
            for row in rows:
                yield who | row.as_dict() | {"status": status, "date": f"{created_at:%Y-%m-%d}"}


def render(rows: Iterator[dict[str, Any]], fmt: str, identified: bool) -> str:
    columns = COLUMNS + (IDENTIFIED_COLUMNS if identified else ())
    if fmt == "jsonl":
        return "".join(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def export_cohort(store: HistoryStore, cohort: Cohort, fmt: str, target: str, *, identified: bool = False) -> str:
    """The cohort's rows in ``fmt``, with the audit event that says so (written before the rows are returned)."""
    text = render(cohort_rows(store, cohort, identified=identified), fmt, identified)
    store.log_cohort_export(cohort.query.text, fmt, target, len(cohort.members), identified)
    return text
