"""Each built-in summary template on CMB-Clin held-out cases (40 and above) and on long records joined from them,
on the demo model: does the output parse, does anything invented reach the doctor, how much of each section the
record supports, how long a record takes.

What "invented" means here is measured independently of the guard's own rules, on what reaches the doctor:

- a value: a number with its unit (find_measurements) whose digits and unit, spaces removed, do not stand in the
  record as written, and that is not the same value in a unit the record writes differently (×109/L for
  ×10^9/L: counted apart, as "respelled", as bench/draft_eval.py does);
- a date: anything shaped like a date (2024-05-06, 2024年5月6日, 5月6日) not standing in the record as written;
- a dose: a medication whose drug, or whose dose, route or frequency, does not stand in the record within 60
  characters after the drug.

    .venv/bin/python bench/template_eval.py --cases 40-73 --long 60-73 --out bench/results/templates_2core.json
"""

from __future__ import annotations

import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp  # noqa: E402,F401  (llama.cpp before numpy: see bench_speed.py)

from bench.draft_eval import records  # noqa: E402
from bench.eval_io import bench_parser, cmb_clin_cases, finish  # noqa: E402
from inference.documents import Document  # noqa: E402
from inference.errors import GenerationError  # noqa: E402
from inference.pipeline import run_pipeline  # noqa: E402
from inference.record.values import find_measurements, fold, same_measurement  # noqa: E402
from inference.templates.catalog import TemplateCatalog  # noqa: E402
from inference.templates.content import Medication, TemplatedSummary  # noqa: E402

_DATE = re.compile(r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?|\d{1,2}\s*月\s*\d{1,2}\s*[日号]")
READ_ALOUD_CHARS_PER_S = 4.5


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", fold(text)).lower()


def invented(summary: Any, record: str) -> dict[str, list[str]]:
    """What reaches the doctor and does not stand in the record as written."""
    source = _compact(record)
    texts = [summary.emr_text()] if isinstance(summary, TemplatedSummary) else [
        summary.chief_complaint, summary.present_illness, *[i.as_text() for i in summary.auxiliary_exams]]
    found: dict[str, list[str]] = {"values": [], "dates": [], "doses": [], "respelled": []}
    in_record = find_measurements(fold(record))
    for text in texts:
        folded = fold(text)
        for m in find_measurements(folded):
            written = _compact(folded[m.value_start:m.end])
            if written not in source:
                same = any(same_measurement(m, r) or m.numbers == r.numbers and m.unit == r.unit for r in in_record)
                found["respelled" if same else "values"].append(folded[m.value_start:m.end])
        for date in _DATE.finditer(folded):
            if _compact(date.group(0)) not in source:
                found["dates"].append(date.group(0))
    if isinstance(summary, TemplatedSummary):
        for spec in summary.template.sections:
            for item in summary.items(spec.id):
                if isinstance(item, Medication):
                    drug = _compact(item.drug)
                    windows = [source[m.start():m.start() + len(drug) + 60] for m in re.finditer(re.escape(drug), source)]
                    parts = [_compact(p) for p in (item.dose, item.route, item.frequency) if p.strip()]
                    if not windows or any(not any(p in w for w in windows) for p in parts):
                        found["doses"].append(item.as_text())
    return found


def main() -> int:
    parser = bench_parser()
    parser.add_argument("--cases", default="40-73")
    parser.add_argument("--long", default="60-73")
    parser.add_argument("--templates", default="summary,discharge,first_course,handover")
    args = parser.parse_args()
    cases = cmb_clin_cases(args.shared)
    if cases is None:
        return 0
    from inference.llm.engine import Engine
    from inference.llm.settings import EngineSettings

    engine = Engine(EngineSettings(model_path=args.model))
    catalog = TemplateCatalog()
    chosen = records(cases, args.cases, args.long)
    results: dict[str, Any] = {}
    for template_id in args.templates.split(","):
        template = catalog.get(template_id)
        rows, supported = [], defaultdict(lambda: [0, 0])
        for name, text in chosen:
            started = time.perf_counter()
            document = Document(file_name=f"{name}.txt", text=text, encoding="utf-8", sha256=name)
            try:
                report = run_pipeline(document, engine, template=template)
            except GenerationError as exc:
                rows.append({"name": name, "parsed": False, "error": exc.message})
                continue
            seconds = time.perf_counter() - started
            summary = report.result.summary
            bad = invented(summary, text)
            for statement in report.validation.statements if report.validation else []:
                if statement.is_absent_marker or not statement.text.strip():
                    continue
                supported[statement.section][0] += statement.support >= 0.5
                supported[statement.section][1] += 1
            emr = report.emr_text()
            rows.append({"name": name, "parsed": True, "seconds": round(seconds, 1), "chars": len(text),
                         "parts": len(report.result.parts), "verdict": report.verdict, "invented": bad,
                         "output_chars": len(emr), "removed": len(report.result.evidence.removals)})
            print(f"{template_id} {name}: {rows[-1]['seconds']} s, {report.verdict}, invented "
                  f"{sum(len(bad[k]) for k in ('values', 'dates', 'doses'))}", file=sys.stderr, flush=True)
        done = [r for r in rows if r["parsed"]]
        single = [r for r in done if not r["name"].startswith("long")]
        results[template_id] = {
            "records": len(rows), "parsed": len(done),
            "invented": {k: sum(len(r["invented"][k]) for r in done) for k in ("values", "dates", "doses", "respelled")},
            "invented_examples": [x for r in done for k in ("values", "dates", "doses") for x in r["invented"][k]][:10],
            "rejected": sum(r["verdict"] == "rejected" for r in done),
            "removed_by_guard": sum(r["removed"] for r in done),
            "supported_share": {section: round(ok / n, 3) for section, (ok, n) in supported.items() if n},
            "seconds_per_case": round(sum(r["seconds"] for r in single) / max(1, len(single)), 1),
            "seconds_long": [r["seconds"] for r in done if r["name"].startswith("long")],
            "output_chars_max": max((r["output_chars"] for r in single), default=0),
            "read_aloud_s_max": round(max((r["output_chars"] for r in single), default=0) / READ_ALOUD_CHARS_PER_S),
            "rows": rows,
        }
    return finish(engine, {"machine": "2-core VM, no GPU", "cases": args.cases, "long": args.long,
                           "results": results}, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
