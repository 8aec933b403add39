"""Ten records against an OpenAI-compatible server with 1, 2 and 4 workers, against the same ten one after another
on the embedded engine, same records and settings: per-record and total wall time. The records are the sample
record with the patient's age and the NT-proBNP value varied (so no answer can come from a cache).

    python bench/server_load.py --server-url http://127.0.0.1:8765 [--workers 1,2,4] [--server-template qwen2.5]

For the README figure, llama.cpp's llama-server (setup.sh test builds it into ~/.cache/medbrief/) with the demo
model, four slots of 4,096 tokens:
    llama-server -m DEMO.gguf --host 127.0.0.1 --port 8765 -c 16384 --parallel 4 --no-kv-unified --no-webui
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.documents import Document  # noqa: E402
from inference.llm.backends import open_engine  # noqa: E402
from inference.llm.settings import EngineSettings  # noqa: E402
from inference.paths import resources_dir  # noqa: E402
from inference.pipeline import run_pipeline  # noqa: E402
from inference.progress import RunContext  # noqa: E402


def records(count: int) -> list[Document]:
    text = (resources_dir() / "samples" / "sample_record.txt").read_text(encoding="utf-8")
    made = []
    for i in range(count):
        varied = text.replace("68岁", f"{60 + i}岁").replace("4500", str(4500 + 100 * i))
        made.append(Document(text=varied, file_name=f"record{i}.txt", encoding="utf-8", sha256=f"{i:064d}"))
    return made


def timed(engine, document):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    report = run_pipeline(document, engine, RunContext(), table=None)
    return time.perf_counter() - started, report.result.timings.completion_tokens


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-url", required=True)
    parser.add_argument("--server-template", default="qwen2.5")
    parser.add_argument("--n-ctx", type=int, default=8192, help="the embedded engine's context")
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts to run against the server")
    parser.add_argument("--no-embedded", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/results/server_load_2core.json"))
    args = parser.parse_args()
    documents = records(args.records)
    server = open_engine(EngineSettings(backend="server", server_url=args.server_url, n_ctx=args.n_ctx,
                                        server_template=args.server_template))
    runs = []
    for workers in (int(w) for w in args.workers.split(",")):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            timings = list(pool.map(lambda d: timed(server, d), documents))
        runs.append({"workers": workers, **summary(timings, time.perf_counter() - started)})
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU",
        "model": server.info.model_name, "records": len(documents), "icd": False,
        "server": {"url": args.server_url, "engine": server.facts.engine, "slots": server.facts.slots,
                   "context_per_request": server.info.n_ctx, "runs": runs},
    }
    if not args.no_embedded:
        embedded = open_engine(EngineSettings(n_ctx=args.n_ctx))
        started = time.perf_counter()
        serial = [timed(embedded, d) for d in documents]
        result["embedded"] = summary(serial, time.perf_counter() - started)
        embedded.close()
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def summary(timings: list[tuple[float, int]], total: float) -> dict[str, object]:
    return {"total_s": round(total, 1), "per_record_s": [round(t, 1) for t, _ in timings],
            "mean_per_record_s": round(sum(t for t, _ in timings) / len(timings), 1),
            "completion_tokens": sum(n for _, n in timings),
            "records_per_minute": round(60 * len(timings) / total, 2)}


if __name__ == "__main__":
    raise SystemExit(main())
