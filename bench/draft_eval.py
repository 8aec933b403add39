"""What of the model's draft reaches the doctor: remnants of the prompt's example, units the record does not
write, symptoms passed off as diagnoses, and how many drafts are refused (demo model, CMB-Clin).

``generate`` runs the summarizer on CMB-Clin cases and on long records joined from consecutive cases (each under
an 入院记录 heading), and keeps, per record, the model's fused draft before the guard, the record ranges of its
statements, the final summary and the review. ``analyze`` reads such a file and measures the summaries as they
would reach the doctor — either as generated (``--as-run``), or with the current guard and review applied to
the kept drafts again (to try a change of the guard without the model). The measures are independent of the
guard's own rules:

- an example remnant: a statement with a run of 4+ characters that stands in the prompt's example (record or
  summary) and not in the statement's part of the record (a unit's spelling alone does not count);
- an invented or altered unit: an exam item (or a value in 现病史) whose value with its unit neither stands in
  its part of the record as written nor as the same value in a unit the unit table knows as equivalent, or
  that carries more after its last value than the record writes;
- a symptom as a diagnosis: a diagnosis with a duration (2天, 3年) or that is the record's chief complaint.

Cases 20–39 were used while building the guard (dev); cases 40–59 and records joined from 60–73 are held out
for the figures in the README.

    .venv/bin/python bench/draft_eval.py generate --cases 40-59 --long 60-73 --out bench/out/drafts-held-out.jsonl
    .venv/bin/python bench/draft_eval.py analyze bench/out/drafts-held-out.jsonl [--as-run]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp  # noqa: E402,F401  (llama.cpp before numpy: see bench_speed.py)

from bench.eval_io import SHARED, cmb_clin_cases  # noqa: E402
from inference.checks.validation import validate  # noqa: E402
from inference.record.evidence import Range, RunEvidence  # noqa: E402
from inference.record.grounding import split_sentences  # noqa: E402
from inference.record.prompts import SUMMARY_PROMPT, load_prompt  # noqa: E402
from inference.record.summary import StructuredSummary  # noqa: E402
from inference.record.values import find_measurements, fold  # noqa: E402
from inference.summary.draft_guard import guard_draft  # noqa: E402

LONG_RECORD_CHARS = 10_000
_NOT_CONTENT = re.compile(r"[\s,，、:：。；;()（）\"“”'‘’\[\]【】]")
_UNIT_SPELLING = re.compile(r"[0-9×^/A-Za-z.%μ℃+-]+")  # a value or a unit's spelling (×10^9/L): not the example
_DURATION = re.compile(r"\d+(\.\d+)?\+?\s*(余)?\s*(天|日|周|月|年|小时|分钟|h)")


def _span(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def records(cases: list[dict], single: str | None, long: str | None) -> list[tuple[str, str]]:
    out = []
    if single:
        low, high = _span(single)
        out += [(f"case{i}", cases[i]["description"]) for i in range(low, high + 1)]
    if long:
        low, high = _span(long)
        text, start = "", low
        for i in range(low, high + 1):
            text += ("\n\n" if text else "") + "入院记录\n" + cases[i]["description"]
            if len(text) >= LONG_RECORD_CHARS or i == high:
                out.append((f"long{start}-{i}", text))
                text, start = "", i + 1
    return out


def generate(args: argparse.Namespace) -> int:
    from inference.llm.engine import Engine
    from inference.llm.settings import EngineSettings
    from inference.summary.summarizer import summarize

    cases = cmb_clin_cases(args.shared)
    if cases is None:
        return 0
    engine = Engine(EngineSettings(model_path=args.model))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as out:
        for name, text in records(cases, args.cases, args.long):
            started = time.perf_counter()
            result = summarize(engine, text)
            report = validate(result.summary, text, evidence=result.evidence)
            row = {"name": name, "record": text, "seconds": round(time.perf_counter() - started, 1),
                   "draft": result.draft.model_dump() if result.draft else None,
                   "summary": result.summary.model_dump(), "evidence": result.evidence.as_dict(),
                   "verdict": report.verdict, "parts": len(result.parts), "parts_retried": result.parts_retried}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            print(f"{name}: {len(text)} chars, {row['parts']} parts, {row['seconds']} s, {report.verdict}",
                  file=sys.stderr, flush=True)
    engine.close()
    return 0


def _content(text: str) -> str:
    return _NOT_CONTENT.sub("", fold(text))


def _example_text() -> str:
    prompt = load_prompt(SUMMARY_PROMPT)
    return _content(prompt.section("example_record") + prompt.section("example_summary"))


def _part(record: str, ranges: list[Range] | None) -> str:
    return _content("".join(record[s:e] for s, e in ranges) if ranges else record)


def remnant(statement: str, part: str, example: str) -> str | None:
    """A run of 4+ characters of the statement in the example and not in the record part."""
    text = _content(statement)
    for length in range(min(len(text), 12), 3, -1):
        for i in range(len(text) - length + 1):
            piece = text[i:i + length]
            if piece in example and piece not in part and not _UNIT_SPELLING.fullmatch(piece):
                return piece
    return None


def _values_as_the_record_writes(text: str, part: str, raw_part: str) -> bool:
    if _content(text) in part:
        return True
    found = find_measurements(text)
    if not found or text[found[-1].end:].strip(" ，,；;"):
        return False  # a unit on a result with no value, or something after the last value
    return all(any(m.identity == r.identity for r in find_measurements(raw_part)) for m in found)


def unit_problems(summary: StructuredSummary, record: str, scopes: dict) -> list[str]:
    problems = []
    for item in summary.auxiliary_exams:
        ranges = scopes.get(("auxiliary_exams", item.as_text()))
        raw_part = "".join(record[s:e] for s, e in ranges) if ranges else record
        if item.unit.strip() and not _values_as_the_record_writes(f"{item.value} {item.unit}",
                                                                   _part(record, ranges), raw_part):
            problems.append(item.as_text())
    for _offset, sentence in split_sentences(summary.present_illness):
        part = _part(record, scopes.get(("present_illness", sentence)))
        for measurement in find_measurements(sentence):
            if _content(sentence[measurement.value_start:measurement.end]) not in part:
                problems.append(sentence[measurement.start:measurement.end])
    return problems


def _chief_complaint(record: str) -> str | None:
    match = re.search(r"主诉[)）]?\s*[:：]?\s*\n?\s*([^\n。]{2,40})", record)
    return _content(match.group(1)) if match else None


def analyze(args: argparse.Namespace) -> int:
    example = _example_text()
    totals: Counter[str] = Counter()
    rows = []
    for line in args.file.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        record = row["record"]
        if args.as_run:
            summary = StructuredSummary.model_validate(row["summary"])
            evidence = RunEvidence.from_dict(row["evidence"])
        else:
            draft = StructuredSummary.model_validate(row["draft"])
            kept = RunEvidence.from_dict(row["evidence"])
            summary, removals, scopes = guard_draft(draft, record, kept.scopes)
            evidence = RunEvidence(scopes, tuple(removals))
        report = validate(summary, record, evidence=evidence)
        scopes = evidence.scopes
        statements = [("chief_complaint", summary.chief_complaint),
                      *[("present_illness", s) for _o, s in split_sentences(summary.present_illness)],
                      *[("auxiliary_exams", i.as_text()) for i in summary.auxiliary_exams],
                      *[("diagnoses", d.name) for d in summary.diagnoses]]
        remnants = [(text, piece) for section, text in statements
                    if (piece := remnant(text, _part(record, scopes.get((section, text))), example))]
        units = unit_problems(summary, record, scopes)
        complaint = _chief_complaint(record)
        symptoms = [d.name for d in summary.diagnoses if _DURATION.search(d.name)
                    or (complaint and _content(d.name) == complaint)]
        rows.append({"name": row["name"], "verdict": report.verdict, "remnants": remnants, "units": units,
                     "symptoms_as_diagnoses": symptoms,
                     "removed": Counter(r.rule_id for r in evidence.removals)})
        totals["records"] += 1
        totals["rejected"] += report.rejected
        totals["statements"] += len(statements)
        totals["remnants"] += len(remnants) if not report.rejected else 0  # a refused draft reaches no one
        totals["units"] += len(units) if not report.rejected else 0
        totals["symptoms_as_diagnoses"] += len(symptoms) if not report.rejected else 0
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    print(json.dumps({"totals": totals, "rejected_share": round(totals["rejected"] / max(1, totals["records"]), 3)},
                     ensure_ascii=False))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("generate")
    run.add_argument("--shared", type=Path, default=SHARED)
    run.add_argument("--model", type=Path)
    run.add_argument("--cases", help="single cases, e.g. 40-59")
    run.add_argument("--long", help="cases joined into records of about 10,000 characters, e.g. 60-73")
    run.add_argument("--out", type=Path, required=True)
    look = commands.add_parser("analyze")
    look.add_argument("file", type=Path)
    look.add_argument("--as-run", action="store_true", help="the summaries as generated, not re-guarded")
    args = parser.parse_args()
    return generate(args) if args.command == "generate" else analyze(args)


if __name__ == "__main__":
    raise SystemExit(main())
