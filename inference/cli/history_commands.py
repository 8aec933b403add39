"""``medbrief history``: list, show, search and export what the local history keeps."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from inference.cli.history_access import with_history
from inference.cli.output import check_output_folder, date_argument, one_format, text_argument, write_output
from inference.errors import MedBriefError, StorageError, UsageError
from inference.export import EXPORT_FORMATS
from inference.record.status import STATUS_LABELS, DraftStatus

ORIGIN_LABELS = {"model": "模型生成", "edit": "医生编辑", "status": "状态变更", "code": "确认编码"}

if TYPE_CHECKING:
    from inference.history.store import HistoryStore


def add_parser(commands: argparse._SubParsersAction, epilog: str) -> None:
    history = commands.add_parser(
        "history",
        help="the local history: list, show, search, export",
        description=(
            "medbrief history list [--status S] [--diagnosis D] [--icd CODE]\n"
            "medbrief history show ID\n"
            "medbrief history search QUERY [--status S] [--diagnosis D] [--icd CODE]\n"
            f"medbrief history export ID --format {'|'.join(EXPORT_FORMATS)} [--version N] [--out FILE]\n"
            "medbrief history export --reviewed --out FILE.jsonl\n"
            "medbrief history query EXPR [--status S] [--since DATE] [--until DATE] [--json|--csv] [--identify] "
            "[--out FILE]\n\n"
            "query: records whose latest version meets every condition of EXPR, joined by and/且/&:\n"
            "  a threshold with its unit   LVEF<40%   \"NT-proBNP>=1000 pg/mL\"   (units converted where the table allows)\n"
            "  an ICD code and its subcodes   I50*   I11.0\n"
            "  a diagnosis as worded        诊断:心力衰竭   (dx:心衰 also finds 心力衰竭)\n"
            "--json / --csv write the cohort as rows shaped like OMOP NOTE_NLP (one per value and diagnosis), a\n"
            "pseudonymous person id per record (--identify adds the history id and file name); each is audited."
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    history.add_argument("action", choices=["list", "show", "search", "export", "query"])
    history.add_argument("target", nargs="?", help="record ID (show, export), QUERY (search) or EXPR (query)")
    history.add_argument("--status", choices=[str(status) for status in DraftStatus])
    history.add_argument("--diagnosis", help="only records whose diagnoses contain this text")
    history.add_argument("--icd", help="only records coded with this ICD code (prefix)")
    history.add_argument("--format", default="txt", choices=EXPORT_FORMATS)
    history.add_argument("--version", dest="version_number", type=int, metavar="N",
                         help="export or show version N (export: default the last signed version, else the latest)")
    history.add_argument("--reviewed", action="store_true", help="export all reviewed/signed summaries as JSONL")
    history.add_argument("--out", help="write to this file")
    history.add_argument("--json", action="store_true", help="JSON output (list, search, show); query: JSONL rows")
    history.add_argument("--csv", action="store_true", help="query: the cohort's rows as CSV")
    history.add_argument("--identify", action="store_true",
                         help="query --json/--csv: add each record's history id and file name (default: pseudonymous)")
    history.add_argument("--since", metavar="YYYY-MM-DD", help="query: latest version on or after this day")
    history.add_argument("--until", metavar="YYYY-MM-DD", help="query: latest version on or before this day")
    history.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return with_history(lambda store: _action(store, args))


MAX_RECORD_ID = 2**63 - 1  # SQLite's largest integer: any larger number names no record


def _record_id(target: str | None) -> int:
    if target is None or not target.isdecimal() or not target.isascii():
        raise UsageError("请给出记录编号 / give a record ID (see `medbrief history list`)")
    if int(target) > MAX_RECORD_ID:
        raise StorageError(f"没有编号为 {target[:30]} 的记录 / no such record")
    return int(target)


def _action(store: HistoryStore, args: argparse.Namespace) -> int:
    if args.action in ("list", "search"):
        return _list(store, args)
    if args.action == "show":
        return _show(store, _record_id(args.target), args.json)
    if args.action == "query":
        return _query(store, args)
    return _export(store, args)


def _list(store: HistoryStore, args: argparse.Namespace) -> int:
    if args.action == "search" and not args.target:
        raise UsageError("请给出检索词 / give a search query")
    for value, what in ((args.target, "检索词"), (args.diagnosis, "诊断"), (args.icd, "编码")):
        text_argument(value, what)
    records = store.list_records(query=args.target if args.action == "search" else None, status=args.status,
                                 diagnosis=args.diagnosis, icd_code=args.icd)
    if args.json:
        print(json.dumps([{**r.__dict__, "imported_at": r.imported_at.isoformat(),
                           "updated_at": r.updated_at.isoformat()} for r in records], ensure_ascii=False, indent=2))
        return 0
    for r in records:
        print(f"{r.document_id:>5}  {r.updated_at:%Y-%m-%d %H:%M}  {STATUS_LABELS.get(r.status, r.status):<6}  "
              f"v{r.versions:<3} {r.file_name}  {r.diagnoses}  {r.icd_codes}")
    if not records:
        print("（没有记录 / no records）")
    return 0


def _show(store: HistoryStore, document_id: int, as_json: bool) -> int:
    document = store.document(document_id)
    versions = store.versions(document_id)
    if as_json:
        print(json.dumps({"document_id": document_id, "file_name": document.file_name, "source": document.text,
                          "versions": [{"number": v.number, "status": v.status, "origin": v.origin,
                                        "author": v.author, "created_at": v.created_at.isoformat(),
                                        "summary": v.summary, "icd": v.icd} for v in versions]},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"# {document.file_name}（记录 {document_id}，{len(versions)} 个版本）")
    attestations = store.attestations(document_id)
    for v in versions:
        attestation = attestations.get(v.id)
        signed = f"，{'签署' if attestation.signed else '审核'}医生 {attestation.signer}" \
            if attestation is not None and attestation.signer else ""
        override = f"，越过提示的理由：{attestation.override}" if attestation is not None and attestation.override else ""
        print(f"- v{v.number} {v.created_at:%Y-%m-%d %H:%M:%S} {STATUS_LABELS.get(v.status, v.status)} "
              f"{ORIGIN_LABELS.get(v.origin, v.origin)} 系统用户 {v.author}{signed}{override}")
    if versions:
        print()
        print(versions[-1].emr_text)
    return 0


def _export(store: HistoryStore, args: argparse.Namespace) -> int:
    from inference.history.exports import export_record, export_reviewed_jsonl

    check_output_folder(args.out)  # before anything is exported and audited
    if args.reviewed:
        if not args.out:
            raise UsageError("--reviewed 需要 --out FILE.jsonl / --reviewed needs --out")
        count, damaged = export_reviewed_jsonl(store, Path(args.out))
        print(f"exported {count} reviewed summaries to {args.out}")
        if damaged:
            raise StorageError(f"{len(damaged)} 份记录已损坏，未导出（记录 {', '.join(map(str, damaged))}）/ "
                               f"{len(damaged)} damaged records left out")
        return 0
    text = export_record(store, _record_id(args.target), args.format, args.out or "stdout", args.version_number)
    write_output(text, args.out)
    return 0


def _query(store: HistoryStore, args: argparse.Namespace) -> int:
    from inference.history.cohort import codes_in_history, find_cohort, parse_query
    from inference.history.research_export import export_cohort
    from inference.icd.table import open_table

    one_format(args)
    if args.identify and not (args.json or args.csv):
        raise UsageError("--identify 只用于 --json 或 --csv 导出 / --identify goes with --json or --csv")
    if args.target is not None:
        text_argument(args.target, "检索条件")
    try:
        known = {entry.code for entry in open_table().entries} | codes_in_history(store)
    except MedBriefError:  # no table to check patterns against: a pattern that matches nothing answers empty
        known = None
    query = parse_query(args.target or "", known_codes=known, status=args.status,
                        since=date_argument(args.since, "起始"), until=date_argument(args.until, "截止"))
    cohort = find_cohort(store, query)
    if args.json or args.csv:
        check_output_folder(args.out)
        write_output(export_cohort(store, cohort, "jsonl" if args.json else "csv", args.out or "stdout",
                                   identified=args.identify), args.out)
        print(f"medbrief: {len(cohort.members)} 份记录 / records", file=sys.stderr)
        return 0
    for m in cohort.members:
        print(f"{m.document_id:>5}  {m.updated_at:%Y-%m-%d %H:%M}  {STATUS_LABELS.get(m.status, m.status):<6}  "
              f"{m.file_name}  {m.diagnoses.replace(chr(10), '、')}  {m.icd_codes}")
    print(f"（{len(cohort.members)} 份记录 / records）")
    return 0
