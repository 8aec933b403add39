"""``medbrief validate SUMMARY.json --source RECORD``: the same review the run made, of a summary on disk."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference import limits
from inference.cli.output import findings_text
from inference.errors import IcdTableError, InputError, TemplateError

if TYPE_CHECKING:
    from inference.icd.table import IcdTable
    from inference.templates.content import TemplatedSummary


def add_parser(commands: argparse._SubParsersAction, epilog: str) -> None:
    validate = commands.add_parser(
        "validate", help="check a summary JSON against its source record",
        description="Exit 0: no error-level finding; 1: at least one error-level finding.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("summary", help="summary JSON in the `summarize --json` shape")
    validate.add_argument("--source", required=True, help="the source record (.txt or .docx)")
    validate.add_argument("--json", action="store_true", help="findings and per-statement sources as JSON")
    validate.add_argument("--table", help="check diagnosis names against this ICD table (T3; default: the active table)")
    validate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from inference.checks.template_review import review_of
    from inference.documents import check_regular_file, load_document, read_bounded
    from inference.icd.lookup import vocabulary_of
    from inference.record.evidence import RunEvidence
    from inference.record.summary import StructuredSummary, bounds_problem

    path = Path(args.summary)
    check_regular_file(path)
    try:
        data = json.loads(read_bounded(path, limits.SUMMARY_JSON_BYTES, "摘要").decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"摘要不是有效的 JSON / summary is not valid JSON: {args.summary}: {exc}") from exc
    except RecursionError:
        raise InputError(f"摘要 JSON 嵌套过深 / summary JSON is nested too deeply: {args.summary}") from None
    try:
        summary = _templated(data) if isinstance(data, dict) and "template" in data else \
            StructuredSummary.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(f"摘要格式不对 / summary JSON lacks the summarize --json shape: {where}: {first['msg']}") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InputError(f"摘要格式不对 / summary JSON lacks the summarize --json shape: {exc}") from exc
    problem = bounds_problem(summary if isinstance(summary, StructuredSummary) else summary.four_sections().classic)
    if problem:
        raise InputError(f"摘要超出可核对的范围（{problem}）/ the summary is beyond what a review takes: {args.summary}")
    document = load_document(args.source)
    try:
        evidence = RunEvidence.from_dict(data.get("evidence") if isinstance(data, dict) else None)
    except ValueError as exc:
        raise InputError(f"摘要中的 evidence 格式不对 / malformed evidence in {args.summary}: {exc}") from exc
    # Exactly as given (splitting would hide S2), with the run's evidence: what summarize's review found.
    report = review_of(summary, document.text, vocabulary_of(review_table(args.table)), evidence, document.provenance)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(findings_text(report.findings, report.unchecked).lstrip("\n"))
    return 1 if report.has_errors else 0


def _templated(data: dict[str, Any]) -> TemplatedSummary:
    """A template's summary as ``summarize --json`` writes it, read with the template it names, when that
    template still asks what it asked then (its content hash)."""
    from inference.templates.catalog import TemplateCatalog
    from inference.templates.content import TemplatedSummary

    named = data["template"]
    template = TemplateCatalog().get(str(named["id"]))
    if template.content_hash != named.get("hash"):
        raise TemplateError(f"摘要用模板 {template.id}（内容哈希 {named.get('hash')}）写成，该模板已更改为 "
                            f"{template.content_hash}，无法按原模板核对 / the template changed since")
    return TemplatedSummary.from_dict(template, data)


def review_table(name: str | None) -> IcdTable | None:
    """The table a review checks diagnosis names against (T3): the one named, else the active one; a review
    without any installed table says so instead of failing."""
    from inference.icd.table import open_table

    if name:
        return open_table(name)
    try:
        return open_table(None)
    except IcdTableError as exc:
        print(f"medbrief: 未检查诊断名称是否在编码表中 / names not checked against a code table: {exc.message}",
              file=sys.stderr)
        return None
