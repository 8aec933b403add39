"""How fast the history answers cohort queries and statistics, and how long deriving them takes for an existing
history (the 0005 migration's backfill), on a history of N records written here.

    .venv/bin/python bench/history_queries.py [--records 10000] [--out bench/results/history_queries.json]

Each record: its own document, a model run and draft, half of them edited and signed a few minutes later; values
(LVEF, NT-proBNP, creatinine in μmol/L or mg/dL) and codes drawn at random with a fixed seed. Rows are inserted
with SQL (as a years-old history would hold them), then the store opens the file: that open derives the value
index and the signing measures. Timings: the open (backfill), each query (median of 5), statistics and the 统计
view's figures (median of 5), the research export of the I50* cohort (once: its size and time).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.history.cohort import find_cohort, parse_query  # noqa: E402
from inference.history.research_export import export_cohort  # noqa: E402
from inference.history.stats import Dashboard, read_stats  # noqa: E402
from inference.history.store import HistoryStore  # noqa: E402
from inference.record.summary import StructuredSummary, render_emr_text  # noqa: E402

QUERIES = ("LVEF<40%", "NT-proBNP>=1000 pg/mL", "肌酐>133 μmol/L", "I50* and LVEF<40%", "诊断:心衰")
CODES = [("慢性心力衰竭", "I50.9"), ("高血压", "I10"), ("2型糖尿病", "E11.9"), ("肺炎", "J18.9"), ("冠心病", "I25.1")]


def summary(rng: random.Random) -> StructuredSummary:
    creatinine = (f"{rng.uniform(0.6, 3.0):.1f}", "mg/dL") if rng.random() < 0.2 else (f"{rng.randint(50, 300)}", "μmol/L")
    return StructuredSummary.model_validate({
        "chief_complaint": "反复胸闷气促3年,加重1周",
        "present_illness": f"查体:BP {rng.randint(100, 180)}/{rng.randint(60, 100)}mmHg,HR {rng.randint(50, 130)}次/分。",
        "auxiliary_exams": [{"name": "LVEF", "value": str(rng.randint(20, 70)), "unit": "%"},
                            {"name": "NT-proBNP", "value": str(rng.randint(50, 20000)), "unit": "pg/mL"},
                            {"name": "肌酐", "value": creatinine[0], "unit": creatinine[1]}],
        "diagnoses": [{"name": name} for name, _code in rng.sample(CODES, 2)]})


def fill(path: Path, records: int) -> None:
    HistoryStore.open(path).close()
    rng = random.Random(7)
    start = datetime(2026, 6, 1)
    with sqlite3.connect(path) as db:
        for i in range(1, records + 1):
            at = start + timedelta(minutes=30 * i)
            draft = summary(rng)
            codes = {d.name: code for d in draft.diagnoses for name, code in CODES if name == d.name}
            icd = json.dumps([{"diagnosis": n, "code": c} for n, c in codes.items()], ensure_ascii=False)
            db.execute("INSERT INTO documents VALUES (?, ?, ?, 'utf-8', ?, ?)", (i, f"r{i}.txt", f"{i:064d}", "病历", at))
            db.execute("INSERT INTO runs (id, document_id, created_at, model_file, model_hash_prefix, quantization, "
                       "prompt_version, backend, engine_params, timings, draft, findings, icd, raw_output, demo) VALUES "
                       "(?, ?, ?, 'qwen3-14b-q4_k_m.gguf', '', 'Q4_K_M', 'v1', 'CUDA', '{}', ?, ?, '[]', ?, '', 0)",
                       (i, i, at, json.dumps({"total_s": rng.uniform(3, 9), "tokens_per_s": rng.uniform(40, 60)}),
                        draft.model_dump_json(), icd))
            versions = [("draft", "model", draft, at)]
            if i % 2 == 0:
                edited = draft.model_copy(update={"present_illness": draft.present_illness + "双下肢水肿。"})
                versions += [("draft", "edit", edited, at + timedelta(minutes=3)),
                             ("signed", "status", edited, at + timedelta(minutes=5))]
            for number, (status, origin, text, when) in enumerate(versions, 1):
                cursor = db.execute(
                    "INSERT INTO summary_versions (document_id, run_id, number, status, origin, summary, icd, emr_text, "
                    "diagnoses_text, icd_codes, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'bench', ?)",
                    (i, i, number, status, origin, text.model_dump_json(), icd, render_emr_text(text),
                     "\n".join(d.name for d in text.diagnoses), " ".join(codes.values()), when))
                if status == "signed":
                    db.execute("INSERT INTO audit_events (at, os_user, action, document_id, version_id, detail) VALUES "
                               "(?, 'bench', 'status', ?, ?, ?)", (when, i, cursor.lastrowid,
                                                                    json.dumps({"signer": "张医生", "standing_rules": ["W3"]})))


def as_before_0005(path: Path) -> None:
    """The rows are there, their derived rows are not: as a history written before 0005 opens after the upgrade."""
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM derived_state")


def median_s(call, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--out", default="bench/results/history_queries.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.sqlite"
        started = time.perf_counter()
        fill(path, args.records)
        as_before_0005(path)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        store = HistoryStore.open(path)
        backfill_s = time.perf_counter() - started
        try:
            queries = {q: {"records": len(find_cohort(store, parse_query(q)).members),
                           "median_s": median_s(lambda q=q: find_cohort(store, parse_query(q)))} for q in QUERIES}
            stats_s = median_s(lambda: read_stats(store).rows("week"))
            dashboard_s = median_s(lambda: Dashboard.of(read_stats(store)))
            overall = read_stats(store).rows()[0]
            cohort = find_cohort(store, parse_query("I50*"))
            started = time.perf_counter()
            export = export_cohort(store, cohort, "csv", "bench")
            export_s = time.perf_counter() - started
        finally:
            store.close()
        started = time.perf_counter()
        HistoryStore.open(path).close()  # every later open: the derived rows are current, one row says so
        reopen_s = time.perf_counter() - started
    result = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                         f"{__import__('os').cpu_count()} cores", "records": args.records, "fill_s": round(filled, 1),
              "open_with_backfill_s": round(backfill_s, 2), "open_again_s": round(reopen_s, 3), "queries": queries, "stats_by_week_median_s": stats_s, "stats_view_figures_median_s": dashboard_s,
              "cohort_export": {"records": len(cohort.members), "rows": export.count("\n") - 1,
                                "mb": round(len(export.encode()) / 1e6, 2), "s": round(export_s, 2)},
              "signed": overall.signed, "runs": overall.runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
