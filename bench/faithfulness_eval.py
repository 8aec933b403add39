"""Faithfulness of summaries on CMB-Clin cases (held out: measure, never tune prompts to them).

For each case the engine summarizes the record; validation then counts what a reviewing doctor would
have to fix: invented or altered values (V1), implausible values (V3), omitted key values (V2),
wording not in the record (F1), statements without support (G1). CMB-Clin records state no diagnosis,
so any diagnosis the model writes is invented: the summarizer's guard removes those, and this counts
how often it had to.

    .venv/bin/python bench/faithfulness_eval.py [--cases 10] [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.checks.validation import validate  # noqa: E402
from inference.errors import GenerationError  # noqa: E402
from inference.llm.engine import Engine  # noqa: E402
from inference.llm.settings import EngineSettings  # noqa: E402
from inference.record.summary import DIAGNOSIS_CUES  # noqa: E402
from inference.summary.summarizer import summarize  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--model", type=Path)
    args = parser.parse_args()
    path = args.shared / "eval" / "cmb_clin" / "CMB-test-qa.json"
    if not path.exists():
        print(f"skipped: {path} not found", file=sys.stderr)
        return 0
    cases = json.loads(path.read_text(encoding="utf-8"))[: args.cases]
    engine = Engine(EngineSettings(model_path=args.model))
    rules: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    shares: list[float] = []
    invented_diagnoses = 0
    leaked_diagnoses = 0
    failures = 0
    seconds = []
    for case in cases:
        record = case["description"]
        started = time.perf_counter()
        try:
            result = summarize(engine, record)
        except GenerationError:
            failures += 1
            continue
        seconds.append(time.perf_counter() - started)
        report = validate(result.summary, record, evidence=result.evidence)
        rules.update(f.rule_id for f in report.findings)
        verdicts[report.verdict] += 1
        shares.append(report.supported_share())
        if any(r.rule_id in ("G2", "G3") for r in result.evidence.removals):
            invented_diagnoses += 1  # the model wrote diagnoses the record never states; the guard removed them
        if result.summary.diagnoses and not DIAGNOSIS_CUES.search(record):
            leaked_diagnoses += 1
    engine.close()
    done = len(seconds)
    print(json.dumps({
        "model": engine.info.as_dict()["file"], "cases": len(cases), "summarized": done, "failed": failures,
        "findings_per_summary": {rule: round(count / max(done, 1), 2) for rule, count in sorted(rules.items())},
        "drafts_with_invented_diagnoses_removed": invented_diagnoses,
        "summaries_still_listing_unstated_diagnoses": leaked_diagnoses,
        "median_seconds": round(statistics.median(seconds), 1) if seconds else None,
        "verdicts": dict(verdicts),
        "supported_share_min": round(min(shares), 3) if shares else None,
        "supported_share_median": round(statistics.median(shares), 3) if shares else None,
    }, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
