"""The model's function calls on everyday diagnoses: the field cases of the development set
(``bench/icd_everyday.py``), four diagnoses to a record as a summary lists them, coded through
``code_diagnoses`` on a real GGUF (the demo model by default), final codes scored against the coder's code.
Run it on two checkouts to see that a change makes nothing worse for the model's path.

    .venv/bin/python bench/icd_model_calls.py [--model PATH] [--per-record 4] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from inference.icd.coding import code_diagnoses
    from inference.icd.table import open_table
    from inference.llm.engine import Engine
    from inference.llm.settings import EngineSettings

    sys.path.insert(0, str(ROOT / "bench"))
    from icd_everyday import FIELD_CASES  # the field cases only: CHIP-CDN train rows are what the lookup learned

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--per-record", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    table = open_table("who-zh")
    engine = Engine(EngineSettings(model_path=args.model, n_ctx=4096))
    takes_patient = "patient" in inspect.signature(code_diagnoses).parameters
    rows = [(text, code) for text, patient, code in FIELD_CASES if patient == "-"]  # one patient per record
    results, started = [], time.perf_counter()
    try:
        for start in range(0, len(rows), args.per_record):
            chunk = rows[start:start + args.per_record]
            names = [text for text, _code in chunk]
            assignments, trace = code_diagnoses(engine, names, table, **({"patient": None} if takes_patient else {}))
            for (text, gold), assignment in zip(chunk, assignments):
                results.append({"text": text, "gold": gold, "got": assignment.code, "provenance": assignment.provenance,
                                "rounds": trace.rounds})
    finally:
        engine.close()
    n = len(results)
    summary = {
        "model": engine.info.as_dict().get("file"), "diagnoses": n,
        "category": round(sum((r["got"] or "")[:3] == r["gold"][:3] for r in results) / n, 4),
        "leaf": round(sum(r["got"] == r["gold"] for r in results) / n, 4),
        "from_the_model": round(sum(r["provenance"] == "model_tool_call" for r in results) / n, 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary, ensure_ascii=False))
    for r in results:
        if r["got"] != r["gold"]:
            print(json.dumps(r, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "results": results}, ensure_ascii=False, indent=1),
                            encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
