"""Score the ICD lookup on CHIP-CDN dev (held out: report, never tune on individual records).

Gold: each standard term of a record, mapped to its code through the 北京临床版 table.
- category level: 3-character codes predicted with the bundled WHO table vs the gold categories;
- term level: standard terms predicted with the 北京临床版 table imported vs the gold terms.
Micro-averaged precision / recall / F1 over all records. Also reports lookup latency. Predictions are
``IcdMatcher.codes`` with what setup learned from CHIP-CDN train (synonyms, cues, examples, ranker) —
run ``bash setup.sh`` first with ../shared beside the repo, or the figures are the unlearned lookup's.

    .venv/bin/python bench/icd_eval.py [--shared ../shared] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.icd.bundle import install as install_bundled  # noqa: E402
from inference.icd.importer import import_table  # noqa: E402
from inference.icd.lookup import Candidate, IcdMatcher  # noqa: E402
from inference.icd.synonyms import read_term_codes, record_terms  # noqa: E402
from inference.icd.table import BUNDLED_TABLE, IcdTableError, open_table  # noqa: E402


def prf(gold: list[set[str]], pred: list[set[str]]) -> dict[str, float]:
    tp = sum(len(g & p) for g, p in zip(gold, pred))
    n_pred = sum(len(p) for p in pred)
    n_gold = sum(len(g) for g in gold)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    dev_path = args.shared / "eval" / "chip_cdn" / "CHIP-CDN_dev.json"
    beijing_csv = args.shared / "data" / "icd10" / "beijing_v601" / "icd10_beijing_v601.csv"
    if not dev_path.exists():
        print(f"skipped: {dev_path} not found", file=sys.stderr)
        return 0
    records = json.loads(dev_path.read_text(encoding="utf-8"))
    records = records[: args.limit] if args.limit else records
    term_codes = read_term_codes(beijing_csv)
    gold_terms = [set(record_terms(r)) for r in records]
    gold_categories = [{term_codes[t][:3] for t in terms if t in term_codes} for terms in gold_terms]
    # 临床版 tables also carry ICD-O tumour morphology codes (M8140/3 腺癌). Their first three characters
    # are not an ICD-10 category and WHO ICD-10 has no such codes, so the WHO score leaves them out.
    gold_disease_categories = [
        {term_codes[t][:3] for t in terms if t in term_codes and "/" not in term_codes[t]} for terms in gold_terms
    ]

    try:
        who = open_table(BUNDLED_TABLE)
    except IcdTableError:
        install_bundled()
        who = open_table(BUNDLED_TABLE)
    import_table(beijing_csv, "beijing-v601-eval", version="北京临床版 v6.01", replace=True)
    beijing = open_table("beijing-v601-eval")
    report: dict[str, object] = {"records": len(records)}
    for label, table in (("who", who), ("beijing", beijing)):
        started = time.perf_counter()
        matcher = IcdMatcher(table)
        build_s = time.perf_counter() - started
        report.setdefault("ranker", matcher.ranker.trained_on if matcher.ranker else "none (similarity ranking)")
        latencies: list[float] = []
        predictions: list[list[Candidate]] = []
        for record in records:
            t0 = time.perf_counter()
            predictions.append(matcher.codes(record["text"]))
            latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
        timing = {"index_build_s": round(build_s, 2), "p50_ms": round(statistics.median(latencies), 2),
                  "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2)}
        if label == "who":
            pred = [{c.code[:3] for c in p} for p in predictions]
            report["category_who"] = {**prf(gold_disease_categories, pred), **timing}
            report["category_who_counting_morphology"] = prf(gold_categories, pred)
        else:
            pred_terms = [{c.name for c in p} for p in predictions]
            pred_cats = [{c.code[:3] for c in p} for p in predictions]
            report["term_beijing"] = {**prf(gold_terms, pred_terms), **timing}
            report["category_beijing"] = prf(gold_categories, pred_cats)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
