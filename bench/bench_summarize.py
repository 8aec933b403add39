"""Benchmark the whole pipeline on one record: load, time to first token, decode speed, ICD coding, peak RSS.

    .venv/bin/python bench/bench_summarize.py [--model PATH] [--runs 3] [--record FILE] [--gpu-layers -1]

Targets live here, not in tests. On an RTX 4090 with Qwen3-14B Q4_K_M (fully offloaded, flash attention,
32K context) the product target is: summary of the sample record in under 10 s, TTFT under 1 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.documents import load_document  # noqa: E402
from inference.icd.table import open_table  # noqa: E402
from inference.llm.engine import Engine  # noqa: E402
from inference.llm.settings import EngineSettings  # noqa: E402
from inference.pipeline import run_pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path)
    parser.add_argument("--record", type=Path, default=ROOT / "resources" / "samples" / "sample_record.txt")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gpu-layers", type=int, default=-1)
    parser.add_argument("--n-ctx", type=int, default=32768)
    parser.add_argument("--kv", choices=["f16", "q8_0"], default="f16")
    args = parser.parse_args()
    settings = EngineSettings(model_path=args.model, n_gpu_layers=args.gpu_layers, n_ctx=args.n_ctx,
                              kv_cache_type=args.kv)
    document = load_document(args.record)
    engine = Engine(settings)
    table = open_table()
    rows = []
    for _ in range(args.runs):
        started = time.perf_counter()
        report = run_pipeline(document, engine, table=table)
        timings = report.result.timings
        rows.append({"summary_s": timings.total_s, "ttft_s": timings.ttft_s, "tokens_per_s": timings.tokens_per_s,
                     "prompt_tokens": timings.prompt_tokens, "completion_tokens": timings.completion_tokens,
                     "pipeline_s": time.perf_counter() - started,
                     "coding_rounds": report.coding_trace.rounds if report.coding_trace else 0})
    engine.close()
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "model": engine.info.as_dict(),
        "load_s": round(engine.info.load_s, 2),
        "runs": args.runs,
        "median": {key: round(statistics.median(r[key] for r in rows), 2) for key in rows[0]},
        "peak_rss_mib": round(peak_rss_mib),
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
