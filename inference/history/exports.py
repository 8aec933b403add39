"""What leaves the history as files: one record in an export format, and the reviewed records as JSONL.
Every export is an audit event."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from inference.checks.template_review import review_of
from inference.errors import InputError, StorageError
from inference.export import ExportedVersion, export
from inference.history.models import SummaryVersionRow, latest_version_ids
from inference.history.store import HistoryStore
from inference.icd.coding import IcdAssignment
from inference.paths import write_private
from inference.record.status import DraftStatus
from inference.templates.content import stored_summary


def chosen_version(versions: list[SummaryVersionRow], number: int | None) -> SummaryVersionRow:
    """Version ``number``; by default the last signed version (what the doctor signed, not a draft begun after
    it), else the latest."""
    if number is not None:
        found = next((v for v in versions if v.number == number), None)
        if found is None:
            raise StorageError(f"没有第 {number} 版（共 {len(versions)} 版）/ no version {number}")
        return found
    signed = [v for v in versions if v.status == DraftStatus.SIGNED]
    return signed[-1] if signed else versions[-1]


def exported_version(store: HistoryStore, document_id: int, number: int | None = None) -> ExportedVersion:
    """A version of a record as it would leave the PC: its attestation and the review of it with its run's
    evidence and the active code table's names."""
    versions = store.versions(document_id)
    if not versions:
        raise StorageError(f"没有编号为 {document_id} 的记录 / no such record")
    version = chosen_version(versions, number)
    if version.status == DraftStatus.REJECTED:
        raise StorageError("该草稿未通过核对（与原文不符），不能导出 / a rejected draft cannot be exported")
    summary = stored_summary(version.summary)
    document = store.opened_document(document_id)
    review = review_of(summary, document.text, evidence=store.evidence(document_id), provenance=document.provenance)
    return ExportedVersion(summary=summary, icd=[IcdAssignment.from_record(item) for item in version.icd],
                           demo=store.from_demo(document_id), status=DraftStatus(version.status),
                           version=version.number, attestation=store.attestations(document_id).get(version.id),
                           findings=[f.as_dict() for f in review.findings])


def export_record(store: HistoryStore, document_id: int, fmt: str, target: str = "stdout",
                  number: int | None = None) -> str:
    output = export(exported_version(store, document_id, number), fmt)
    store.log_export(document_id, fmt, target)
    return output


def reviewed_ids(store: HistoryStore) -> list[int]:
    """Documents whose latest version is reviewed or signed, read from plain columns only."""
    with store.reading() as session:
        rows = session.execute(select(SummaryVersionRow.document_id)
                               .where(SummaryVersionRow.id.in_(latest_version_ids()),
                                      SummaryVersionRow.status.in_((DraftStatus.REVIEWED, DraftStatus.SIGNED)))
                               .order_by(SummaryVersionRow.document_id))
        return [int(row[0]) for row in rows]


def export_reviewed_jsonl(store: HistoryStore, target: Path) -> tuple[int, list[int]]:
    """Reviewed and signed summaries as JSONL: source, model draft, doctor's final (cohorts, LoRA data).
    A record damaged on disk is left out, not the whole export: returns (lines written, ids left out)."""
    lines, damaged = [], []
    for document_id in reviewed_ids(store):
        try:
            draft, final = store.draft_and_final(document_id)
            document = store.document(document_id)
            run = next((r for r in store.runs(document_id) if r.id == draft.run_id), None)
        except StorageError:
            damaged.append(document_id)
            continue
        lines.append(json.dumps({
            "document_id": document_id, "source": document.text, "model_draft": draft.summary,
            "final": final.summary, "final_icd": final.icd, "status": final.status,
            "prompt_version": run.prompt_version if run else None, "model": run.model_file if run else None,
        }, ensure_ascii=False))
    try:
        write_private(target, "\n".join(lines) + ("\n" if lines else ""))
    except OSError as exc:
        raise InputError(f"无法写入导出文件 / cannot write {target}: {exc.strerror}") from exc
    store.log_export(None, "jsonl", str(target))
    return len(lines), damaged
