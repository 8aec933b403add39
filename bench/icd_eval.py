"""Score the ICD lookup on CHIP-CDN dev (held out: report, never tune on individual records).

Gold: each standard term of a record, mapped to its code through the 北京临床版 table.
- category level: 3-character codes predicted with the bundled WHO table vs the gold categories;
- term level: standard terms predicted with the 北京临床版 table imported vs the gold terms.
Micro-averaged precision / recall / F1 over all records. Also reports lookup latency. Predictions are
``IcdMatcher.codes`` with the learned lookup as it ships (``resources/icd/learned/``, learned from
CHIP-CDN train only), then the same codes taken to the leaf a coder signs (``inference.icd.precision``:
combination rules over the string's codes, then down the table), scored again: how often a final code is
a non-leaf code before and after, every F1 before and after, and examples where the term changed.

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

from inference.icd.importer import import_table  # noqa: E402
from inference.icd.lookup import Candidate, IcdMatcher  # noqa: E402
from inference.icd.precision import is_leaf, refine_record  # noqa: E402
from inference.icd.table import BUNDLED_TABLE, open_table  # noqa: E402
from inference.icd.training.corpus import read_term_codes, record_terms  # noqa: E402


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

    who = open_table(BUNDLED_TABLE)
    import_table(beijing_csv, "beijing-v601-eval", version="北京临床版 v6.01", replace=True)
    beijing = open_table("beijing-v601-eval")
    report: dict[str, object] = {"records": len(records)}
    for label, table in (("who", who), ("beijing", beijing)):
        started = time.perf_counter()
        matcher = IcdMatcher(table)
        build_s = time.perf_counter() - started
        report.setdefault("ranker", matcher.ranker.trained_on)
        latencies: list[float] = []
        predictions: list[list[Candidate]] = []
        for record in records:
            t0 = time.perf_counter()
            predictions.append(matcher.codes(record["text"]))
            latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
        timing = {"index_build_s": round(build_s, 2), "p50_ms": round(statistics.median(latencies), 2),
                  "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2)}
        finals = [
            [f for f in refine_record([(record["text"], c.code) for c in p], table) if f is not None]
            for record, p in zip(records, predictions)
        ]
        codes_before = [c.code for p in predictions for c in p]
        codes_after = [f.code for fs in finals for f in fs]
        leaves = {
            "non_leaf_share_before": round(sum(not is_leaf(c, table) for c in codes_before) / max(len(codes_before), 1), 4),
            "non_leaf_share_after": round(sum(not is_leaf(c, table) for c in codes_after) / max(len(codes_after), 1), 4),
            "codes_changed": sum(f.code != c.code for p, fs in zip(predictions, finals) for c, f in zip(p, fs)),
            "codes": len(codes_before),
        }
        if label == "who":
            pred = [{c.code[:3] for c in p} for p in predictions]
            pred_after = [{f.code[:3] for f in fs} for fs in finals]
            report["category_who"] = {**prf(gold_disease_categories, pred), **timing}
            report["category_who_final"] = prf(gold_disease_categories, pred_after)
            report["category_who_counting_morphology"] = prf(gold_categories, pred)
            report["leaves_who"] = leaves
        else:
            gold_codes = [{term_codes[t] for t in terms if t in term_codes} for terms in gold_terms]
            pred_terms = [{c.name for c in p} for p in predictions]
            pred_terms_after = [{f.name for f in fs} for fs in finals]
            report["term_beijing"] = {**prf(gold_terms, pred_terms), **timing}
            report["term_beijing_final"] = prf(gold_terms, pred_terms_after)
            report["code_beijing"] = prf(gold_codes, [{c.code for c in p} for p in predictions])
            report["code_beijing_final"] = prf(gold_codes, [{f.code for f in fs} for fs in finals])
            report["category_beijing"] = prf(gold_categories, [{c.code[:3] for c in p} for p in predictions])
            report["category_beijing_final"] = prf(gold_categories, [{f.code[:3] for f in fs} for fs in finals])
            report["leaves_beijing"] = leaves
            report["term_changes"] = [
                {"text": r["text"], "gold": sorted(g), "before": sorted(b), "after": sorted(a)}
                for r, g, b, a in zip(records, gold_terms, pred_terms, pred_terms_after) if a != b
            ][:12]
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
