"""Which few-shot example (if any) the summary prompt should carry, measured on CMB-Clin (held out).

A small model copies a plausible example patient into the draft when it loses track of a long record.
For each prompt in ``bench/prompt_variants/`` this summarizes the same CMB-Clin records (single cases and
cases joined into longer records) and counts what a reviewing doctor would have to catch:
statements copied from the example patient, values of the example patient, placeholders (【…】) of a
template example, diagnoses with no support in the record, invented values (V1), omitted key values (V2),
and the mean support of the draft's statements in the record.

    .venv/bin/python bench/prompt_example_eval.py [--cases 8] [--long 2] [--variants a,b] [--model PATH]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp  # noqa: E402,F401  (llama.cpp before numpy: see bench_speed.py)

from bench.eval_io import bench_parser, finish  # noqa: E402
from inference.checks.validation import validate  # noqa: E402
from inference.errors import GenerationError  # noqa: E402
from inference.llm.engine import Engine  # noqa: E402
from inference.llm.settings import EngineSettings  # noqa: E402
from inference.record.evidence import RunEvidence  # noqa: E402
from inference.record.grounding import statements_of  # noqa: E402
from inference.record.prompts import parse_prompt  # noqa: E402
from inference.record.values import find_measurements, fold  # noqa: E402
from inference.summary.summarizer import parse_summary, summarize  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ROOT / "bench" / "prompt_variants"


def records(shared: Path, cases: int, long: int) -> list[tuple[str, str]]:
    data = json.loads((shared / "eval" / "cmb_clin" / "CMB-test-qa.json").read_text(encoding="utf-8"))
    out = [(f"case {i}", data[i]["description"]) for i in range(cases)]
    for j in range(long):  # five later cases joined: a record of several thousand characters
        chosen = data[20 + 5 * j: 25 + 5 * j]
        out.append((f"joined {20 + 5 * j}-{24 + 5 * j}", "\n\n".join(c["description"] for c in chosen)))
    return out


def main() -> int:
    parser = bench_parser()
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--long", type=int, default=2)
    parser.add_argument("--variants", default="full_example,template_example,no_example")
    args = parser.parse_args()
    if not (args.shared / "eval" / "cmb_clin" / "CMB-test-qa.json").exists():
        print("skipped: CMB-Clin not found", file=sys.stderr)
        return 0
    example = parse_prompt((VARIANTS / "full_example.txt").read_text(encoding="utf-8"), "full_example")
    example_summary = parse_summary(example.section("example_summary"))
    example_text = fold(example.section("example_record"))
    example_values = {m.identity for m in find_measurements(example.section("example_record"))}
    engine = Engine(EngineSettings(model_path=args.model))
    results = {}
    for variant in args.variants.split(","):
        prompt = parse_prompt((VARIANTS / f"{variant}.txt").read_text(encoding="utf-8"), variant)
        rows = []
        for name, record in records(args.shared, args.cases, args.long):
            folded = fold(record)
            started = time.perf_counter()
            try:
                result = summarize(engine, record, prompt=prompt)
            except GenerationError as exc:
                rows.append({"record": name, "failed": str(exc)[:80]})
                continue
            seconds = time.perf_counter() - started
            summary = result.draft or result.summary  # the model's own draft, before the guard removed anything
            report = validate(summary, record, evidence=RunEvidence(scopes=result.evidence.scopes))
            statements = [s for s in report.statements if not s.is_absent_marker and s.text.strip()]
            copied = [s.text for s in statements_of(summary) if len(s.text) >= 4
                      and fold(s.text) in example_text and fold(s.text) not in folded]
            copied_values = [m.as_text() for s in statements_of(summary) for m in find_measurements(s.text)
                             if m.identity in example_values and m.identity not in
                             {x.identity for x in find_measurements(record)}]
            example_diagnoses = [d.name for d in summary.diagnoses
                                 if any(d.name == e.name for e in example_summary.diagnoses) and d.name not in record]
            rows.append({
                "record": name, "chars": len(record), "seconds": round(seconds, 1),
                "mean_support": round(statistics.mean(s.support for s in statements), 3) if statements else 0.0,
                "unsupported_statements": sum(s.support < 0.5 for s in statements),
                "statements": len(statements),
                "copied_statements": len(copied), "copied_values": len(copied_values),
                "example_diagnoses": len(example_diagnoses),
                "placeholders": sum("【" in s.text for s in statements),
                "removed_diagnoses": sum(r.rule_id in ("G2", "G3") for r in result.evidence.removals),
                "removed_values": sum(r.rule_id == "V1" for r in result.evidence.removals),
                "verdict": validate(result.summary, record, evidence=result.evidence).verdict,
                "V1": sum(f.rule_id == "V1" for f in report.findings),
                "V2": sum(f.rule_id == "V2" for f in report.findings),
                "draft": result.summary.model_dump(),
            })
            print(variant, json.dumps({k: v for k, v in rows[-1].items() if k != "draft"}, ensure_ascii=False),
                  flush=True)
        done = [r for r in rows if "failed" not in r]
        totals = {key: sum(r[key] for r in done) for key in ("copied_statements", "copied_values", "example_diagnoses",
                                                             "placeholders", "V1", "V2", "unsupported_statements",
                                                             "statements", "removed_diagnoses")}
        totals["mean_support"] = round(statistics.mean(r["mean_support"] for r in done), 3) if done else 0.0
        totals["median_seconds"] = round(statistics.median(r["seconds"] for r in done), 1) if done else None
        totals["failed"] = len(rows) - len(done)
        totals["prompt_version"] = prompt.version
        results[variant] = {"totals": totals, "records": rows}
        print(variant, "TOTALS", json.dumps(totals, ensure_ascii=False), flush=True)
    return finish(engine, {"variants": results}, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
