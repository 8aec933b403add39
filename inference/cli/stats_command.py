"""``medbrief stats``: what the history says about the drafts — doctors' edits, signatures, runs — as a table,
JSON or CSV. Counts only: no patient text leaves through it."""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import TYPE_CHECKING

from inference.cli.history_access import with_history
from inference.cli.output import check_output_folder, date_argument, one_format, write_output

if TYPE_CHECKING:
    from inference.history.stats import StatsReport, StatsRow

GROUPINGS = ("section", "doctor", "model", "prompt", "week")  # stats.GROUPINGS, here without loading the history
# The columns a person reads, in order: (field, heading).
TABLE_COLUMNS = (("signed", "签署"), ("kept_share", "保留AI文字"), ("edit_distance", "编辑距离"),
                 ("rewritten_share", "重写段落"), ("values_added", "增数值"), ("values_removed", "删数值"),
                 ("codes_accepted", "采纳编码"), ("codes_changed", "改编码"), ("signed_over", "越过提示签署"),
                 ("minutes_to_sign", "签署用时(分)"), ("runs", "生成"), ("rejected_share", "未通过"),
                 ("failure_share", "失败"), ("latency_s", "耗时(秒)"), ("tokens_per_s", "tokens/s"))


def add_parser(commands: argparse._SubParsersAction, epilog: str) -> None:
    stats = commands.add_parser(
        "stats",
        help="what the history says: AI text kept, edits, time to sign, rejections, failures, speed",
        description="medbrief stats [--since DATE] [--until DATE] [--by section|doctor|model|prompt|week] "
                    "[--json|--csv] [--out FILE]\n\nSigned records: the share of the model's characters kept in what "
                    "was signed, edit distance, sections rewritten (under half kept), values, diagnoses and codes "
                    "the doctor added, changed or removed, signatures given over a blocker, median minutes from "
                    "draft to signature. Runs: rejected, stopped and failed shares, median latency and tokens/s. "
                    "Then the rules whose findings doctors signed over most.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stats.add_argument("--since", metavar="YYYY-MM-DD", help="from this day (local time)")
    stats.add_argument("--until", metavar="YYYY-MM-DD", help="to this day, inclusive")
    stats.add_argument("--by", choices=GROUPINGS, help="one row per section, signing doctor, model, prompt or week")
    stats.add_argument("--json", action="store_true")
    stats.add_argument("--csv", action="store_true")
    stats.add_argument("--out", help="write to this file")
    stats.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from inference.history.stats import read_stats

    one_format(args)
    since, until = date_argument(args.since, "起始"), date_argument(args.until, "截止")
    check_output_folder(args.out)
    return with_history(lambda store: _print(read_stats(store, since, until), args))


def _print(report: StatsReport, args: argparse.Namespace) -> int:
    rows = report.rows(args.by)
    if args.json:
        text = json.dumps({"by": args.by or "all", "since": args.since, "until": args.until,
                           "rows": [row.as_dict() for row in rows],
                           "rules": [{"rule": rule, "shown": shown, "standing_at_signing": standing}
                                     for rule, shown, standing in report.rules()]}, ensure_ascii=False, indent=2)
    elif args.csv:
        text = _csv(rows)
    else:
        text = _table(rows, report)
    write_output(text, args.out)
    return 0


def _csv(rows: list[StatsRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].as_dict()), lineterminator="\n")
    writer.writeheader()
    writer.writerows(row.as_dict() for row in rows)
    return buffer.getvalue()


def _cell(value: object, field: str) -> str:
    if value is None:
        return "—"
    if field.endswith("_share"):
        return f"{float(value):.0%}"  # type: ignore[arg-type]
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _table(rows: list[StatsRow], report: StatsReport) -> str:
    lines = ["\t".join(["分组", *(heading for _field, heading in TABLE_COLUMNS)])]
    for row in rows:
        values = row.as_dict()
        lines.append("\t".join([row.group, *(_cell(values[field], field) for field, _heading in TABLE_COLUMNS)]))
    rules = report.rules()
    if rules:
        lines += ["", "签署时仍存在的核对提示（按规则）：规则  提示次数  签署时仍在"]
        lines += [f"  {rule}  {shown}  {standing}" for rule, shown, standing in rules[:10]]
    if not report.signings and not report.runs and not report.failures:
        lines.append("（所选时间内没有记录 / nothing in this period）")
    return "\n".join(lines) + "\n"
