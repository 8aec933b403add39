"""How long a record the model keeps to in one call: the demo model's reliable part length.

CMB-Clin cases (held out: measured, never tuned on) are joined into records of about N tokens and each
is summarized in ONE call (no parts). For each length: the share of the draft's statements supported by
the record, statements and values copied from the prompt's example patient, values not in the record
(V1), the key values of the record the draft kept, and the verdict. Where drafts stop keeping to the
record, or keep little of it, bounds the part size (``SMALL_MODEL_PART_TOKENS`` in inference/summary/summarizer.py).

    .venv/bin/python bench/part_length_eval.py [--lengths 1000,2000,4000,8000] [--records 2] [--prompt FILE]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp  # noqa: E402,F401  (llama.cpp before numpy: see bench_speed.py)

from bench.eval_io import bench_parser, cmb_clin_cases, finish  # noqa: E402
from inference.checks.validation import validate  # noqa: E402
from inference.errors import GenerationError  # noqa: E402
from inference.llm.engine import Engine  # noqa: E402
from inference.llm.settings import EngineSettings  # noqa: E402
from inference.record.evidence import RunEvidence  # noqa: E402
from inference.record.prompts import load_prompt, parse_prompt  # noqa: E402
from inference.record.values import find_measurements, is_key  # noqa: E402
from inference.summary.summarizer import summarize  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def joined_records(cases: list[dict], engine: Engine, tokens: int, count: int, offset: int) -> list[str]:
    """``count`` records of about ``tokens`` tokens, each of consecutive cases from a different start."""
    records = []
    start = offset
    for _ in range(count):
        text, i = "", start
        while engine.count_tokens(text) < tokens and i < len(cases):
            text += ("\n\n" if text else "") + cases[i]["description"]
            i += 1
        records.append(text)
        start = i
    return records


def main() -> int:
    parser = bench_parser()
    parser.add_argument("--lengths", default="1000,2000,4000,8000")
    parser.add_argument("--records", type=int, default=2)
    parser.add_argument("--offset", type=int, default=0, help="first CMB-Clin case used")
    parser.add_argument("--prompt", type=Path, action="append", help="prompt file(s); default: the shipped one")
    args = parser.parse_args()
    cases = cmb_clin_cases(args.shared)
    if cases is None:
        return 0
    engine = Engine(EngineSettings(model_path=args.model, n_ctx=20480))
    prompts = ([parse_prompt(p.read_text(encoding="utf-8"), str(p)) for p in args.prompt] if args.prompt
               else [load_prompt("summary")])
    rows = []
    for prompt in prompts:
        for tokens in (int(n) for n in args.lengths.split(",")):
            for number, record in enumerate(joined_records(cases, engine, tokens, args.records, args.offset), 1):
                started = time.perf_counter()
                try:
                    result = summarize(engine, record, prompt=prompt, part_budget=100_000)
                except GenerationError as exc:
                    rows.append({"prompt": prompt.version, "tokens": tokens, "record": number, "failed": str(exc)[:80]})
                    continue
                draft = result.draft or result.summary
                raw = validate(draft, record)
                key_values = [m for m in find_measurements(record) if is_key(m)]
                drafted = {m.identity for st in raw.statements for m in find_measurements(st.text)}
                final = validate(result.summary, record, evidence=RunEvidence(removals=result.evidence.removals))
                rows.append({
                    "prompt": prompt.version, "tokens": tokens, "record": number,
                    "record_tokens": engine.count_tokens(record), "chars": len(record),
                    "seconds": round(time.perf_counter() - started, 1),
                    "supported_share": round(raw.supported_share(), 3),
                    "example_copies": sum(f.rule_id == "R1" for f in raw.findings),
                    "invented_values": sum(f.rule_id == "V1" for f in raw.findings),
                    "removed": len(result.evidence.removals), "verdict": final.verdict,
                    "key_values": len(key_values), "key_values_kept": sum(m.identity in drafted for m in key_values),
                    "statements": len([s for s in raw.statements if not s.is_absent_marker]),
                })
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    return finish(engine, {"rows": rows}, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
