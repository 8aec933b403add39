"""Long records through the whole pipeline on the demo model: time, parts, values kept, invented values.

Records of about 5k, 10k, 20k and 30k characters are assembled from consecutive CMB-Clin cases (held out:
measured, never tuned on; each case keeps its own 现病史 / 体格检查 / 辅助检查 headings, so the split at
section headings is exercised as on a real multi-admission file). For each: wall time of the run as the
doctor waits for it (parts, ICD rounds, checks), parts, key values of the record and how many the draft
kept, values in the final draft not in their part of the record (must be 0), what the guard removed, the
verdict.

    .venv/bin/python bench/long_records.py [--sizes 5000,10000,20000,30000] [--no-icd] [--out FILE]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp  # noqa: E402,F401  (llama.cpp before numpy: see bench_speed.py)

from bench.eval_io import bench_parser, cmb_clin_cases, finish  # noqa: E402
from inference.documents import document_from_text  # noqa: E402
from inference.llm.engine import Engine  # noqa: E402
from inference.llm.settings import EngineSettings  # noqa: E402
from inference.pipeline import run_pipeline  # noqa: E402
from inference.record.values import find_measurements, is_key  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def assemble(cases: list[dict], size: int, start: int) -> tuple[str, int]:
    text, i = "", start
    while len(text) < size:  # past the last case, on from the first again
        text += ("\n\n" if text else "") + "入院记录\n" + cases[i % len(cases)]["description"]
        i += 1
    return text, i


def main() -> int:
    parser = bench_parser()
    parser.add_argument("--sizes", default="5000,10000,20000,30000")
    parser.add_argument("--no-icd", action="store_true")
    args = parser.parse_args()
    cases = cmb_clin_cases(args.shared)
    if cases is None:
        return 0
    engine = Engine(EngineSettings(model_path=args.model))
    table = None
    if not args.no_icd:
        from inference.icd.table import open_table

        table = open_table(None)
    rows = []
    start = 0
    for size in (int(s) for s in args.sizes.split(",")):
        text, start = assemble(cases, size, start)
        document = document_from_text(text)
        started = time.perf_counter()
        report = run_pipeline(document, engine, table=table)
        wall = time.perf_counter() - started
        summary, validation = report.result.summary, report.validation
        key_values = [m for m in find_measurements(text) if is_key(m)]
        drafted = {m.identity for s in validation.statements for m in find_measurements(s.text)}
        rows.append({
            "chars": len(text), "tokens": engine.count_tokens(text), "seconds": round(wall, 1),
            "parts": len(report.result.parts), "part_tokens": report.result.part_tokens,
            "parts_retried": report.result.parts_retried,
            "key_values_in_record": len(key_values),
            "key_values_kept": sum(m.identity in drafted for m in key_values),
            "values_in_draft": sum(len(find_measurements(s.text)) for s in validation.statements),
            "invented_values_in_draft": sum(f.rule_id == "V1" and f.index is not None for f in validation.findings),
            "removed_invented_values": sum(r.rule_id == "V1" for r in report.result.evidence.removals),
            "removed_diagnoses": sum(r.rule_id in ("G2", "G3") for r in report.result.evidence.removals),
            "diagnoses": len(summary.diagnoses), "verdict": report.verdict,
            "supported_share": round(validation.supported_share(), 3),
            "findings": {level: n for level, n in validation.counts().items()},
            "icd_rounds": sum(c["kind"].startswith("icd") for c in report.result.timings.calls),
            "refused_because": [f.message for f in validation.findings if f.rule_id in ("R1", "R2")],
        })
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    return finish(engine, {"rows": rows}, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
