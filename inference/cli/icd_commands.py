"""``medbrief icd``: look up codes (``lookup``, also ``medbrief icd QUERY``), import a hospital's table, list the
tables, choose the active one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from inference import limits
from inference.cli.output import text_argument
from inference.errors import InputError, UsageError

ACTIONS = ("lookup", "import", "tables", "use")


def add_parser(commands: argparse._SubParsersAction, epilog: str) -> None:
    icd = commands.add_parser(
        "icd",
        help="look up ICD-10 codes; manage code tables",
        description=(
            "medbrief icd QUERY [--top K] [--json]      look up diagnoses (several in one string are split);\n"
            "                                           short for: medbrief icd lookup QUERY\n"
            "medbrief icd --batch FILE --json           one query per line → one JSON line per query\n"
            "medbrief icd import FILE --name NAME       import a CSV/XLSX table (code and name columns)\n"
            "medbrief icd tables                        list installed tables (* = active)\n"
            "medbrief icd use NAME                      make NAME the active table"
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = icd.add_subparsers(dest="icd_action", required=True, metavar="ACTION")
    lookup = actions.add_parser("lookup", help="look up one diagnosis string, or --batch FILE")
    lookup.add_argument("query", nargs="*", help="the diagnosis string")
    lookup.add_argument("--table", help="table name or .sqlite path (default: the active table)")
    lookup.add_argument("--top", type=int, default=5, help="candidates per query (default 5)")
    lookup.add_argument("--json", action="store_true", help="JSON output")
    lookup.add_argument("--batch", help="file with one query per line")
    lookup.set_defaults(handler=run_lookup)
    importer = actions.add_parser("import", help="import a CSV/XLSX table")
    importer.add_argument("file", help="the table: CSV, TSV or XLSX")
    importer.add_argument("--name", required=True, help="name for the imported table")
    importer.add_argument("--replace", action="store_true", help="import over an imported table of the same name")
    importer.add_argument("--version", dest="table_version", default="", help="version label for the table")
    importer.add_argument("--code-column", help="code column (header name or 1-based number)")
    importer.add_argument("--name-column", help="name column (header name or 1-based number)")
    importer.set_defaults(handler=run_import)
    actions.add_parser("tables", help="list installed tables (* = active)").set_defaults(handler=run_tables)
    use = actions.add_parser("use", help="make a table the active one")
    use.add_argument("table_name", metavar="NAME")
    use.set_defaults(handler=run_use)


def with_lookup_shorthand(argv: list[str]) -> list[str]:
    """``medbrief icd QUERY`` and ``medbrief icd --batch FILE`` are ``medbrief icd lookup …``."""
    if argv[:1] == ["icd"] and len(argv) > 1 and argv[1] not in ACTIONS and argv[1] not in ("-h", "--help"):
        return ["icd", "lookup", *argv[1:]]
    return argv


def run_tables(_args: argparse.Namespace) -> int:
    from inference.icd.table import BUNDLED_TABLE, list_tables
    from inference.llm.settings import load_config

    active = load_config().icd_table or BUNDLED_TABLE
    for info in list_tables():
        mark = "*" if info.name == active else " "
        print(f"{mark} {info.name}\t{info.rows} rows\t{info.version}\tsha256 {info.sha256[:12]}\t{info.source}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from inference.icd.importer import import_table

    info = import_table(args.file, args.name, version=args.table_version, code_column=args.code_column,
                        name_column=args.name_column, replace=args.replace)
    print(f"imported {info.name}: {info.rows} codes, sha256 {info.sha256[:12]}")
    return 0


def run_use(args: argparse.Namespace) -> int:
    from inference.icd.table import open_table
    from inference.llm.settings import load_config, save_config

    open_table(args.table_name)  # refuses a table that does not exist
    config = load_config()
    config.icd_table = args.table_name
    save_config(config)
    print(f"active ICD table: {args.table_name}")
    return 0


def _batch_queries(path: Path) -> list[str]:
    """The lines of a query file: a regular file, at most ``limits.BATCH_QUERY_FILE_BYTES`` read (never
    /dev/zero for ever), UTF-8 with or without a BOM."""
    from inference.documents import check_regular_file, read_bounded

    check_regular_file(path)
    try:
        lines = read_bounded(path, limits.BATCH_QUERY_FILE_BYTES, "批量查询").decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"批量文件不是 UTF-8 文本 / the batch file is not UTF-8 text: {path}") from exc
    if len(lines) > limits.BATCH_QUERIES:
        raise InputError(f"批量文件有 {len(lines)} 行，上限 {limits.BATCH_QUERIES} / too many queries: {path}")
    return lines


def run_lookup(args: argparse.Namespace) -> int:
    from inference.icd.coding import match_label
    from inference.icd.lookup import MAX_QUERY_CHARS, lookup_provenance, matcher_for
    from inference.icd.precision import refine_record
    from inference.icd.table import open_table

    if args.top < 1:
        raise UsageError("--top 必须 ≥ 1 / --top must be at least 1")
    table = open_table(args.table)
    matcher = matcher_for(table)
    if args.batch:
        for line in _batch_queries(Path(args.batch)):
            if line.strip():
                candidates = [c.as_dict() for c in matcher.lookup(line.strip(), args.top)]
                sys.stdout.write(json.dumps({"query": line.strip(), "candidates": candidates}, ensure_ascii=False) + "\n")
        return 0
    query = text_argument(" ".join(args.query), "查询").strip()
    if not query:
        raise UsageError("请给出要查询的诊断 / give a diagnosis to look up, or --batch FILE")
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(f"查询过长（{len(query)} 字，上限 {MAX_QUERY_CHARS}），请只输入诊断名称 / query too long for "
                         "a diagnosis")
    results = [(part, matcher.lookup(part, args.top)) for part in matcher.conditions(query)] or [(query, [])]
    # The parts are one record's diagnoses: each top code is taken to the leaf a coder signs, by the
    # combination rules over all of them (高血压心脏病 with 心力衰竭 → I11.0) and down the table.
    finals = refine_record([(part, found[0].code if found else None) for part, found in results], table)
    provenance = lookup_provenance(table)
    if args.json:
        payload = [
            {"query": part, "candidates": [c.as_dict() for c in found],
             "final": final and {"code": final.code, "name": final.name, "reasons": list(final.reasons),
                                 "leaf": final.leaf}}
            for (part, found), final in zip(results, finals)
        ]
        print(json.dumps({"table": provenance, "results": payload}, ensure_ascii=False, indent=2))
        return 0
    for (part, found), final in zip(results, finals):
        print(f"{part}:")
        for candidate in found or []:
            print(f"  {candidate.code}\t{candidate.name}\t{candidate.score:.2f}\t{match_label(candidate.match)}")
        if not found:
            print("  （表中没有足够相似的条目 / no close match in the table）")
        if final is not None:
            why = f"（{final.note}）" if final.reasons else ""
            print(f"  → 编码 {final.code}\t{final.name}{why}")
    print(f"[table {table.info.name} {table.info.version}, sha256 {table.info.sha256[:12]}; {provenance['ranking']}]")
    return 0
