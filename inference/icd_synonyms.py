"""Synonyms learned from CHIP-CDN train: hospital diagnosis wording → standard term and its code.

CHIP-CDN pairs real diagnosis strings with 北京临床版 terms. Each raw string is split into segments and
every gold term is aligned to the segment that shares the most characters with it. The learned file
lives in the user data dir (built by setup when ``../shared`` is present) and is never committed.
CHIP-CDN dev is held out for evaluation and must never be passed here.

    python -m inference.icd_synonyms build --train CHIP-CDN_train.json --table icd10_beijing_v601.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from inference.errors import IcdTableError
from inference.icd_table import normalize_code
from inference.paths import data_dir
from inference.tsv_files import read_tsv

FILE_NAME = "icd_synonyms_learned.tsv"
CUES_FILE_NAME = "icd_cues_learned.tsv"
# A cue is a 2–4 character fragment of the raw wording that, in train, nearly always comes with a
# standard term the wording does not spell out (…鳞癌 → 鳞状细胞癌, …化疗 → 化学治疗).
CUE_MIN_SUPPORT = 4
CUE_MIN_PRECISION = 0.75
_SEGMENT_SPLIT = re.compile(r"[;；,，、/\s]+|(?<=[\u4e00-\u9fff])\.(?=[\u4e00-\u9fff])")


@dataclass(frozen=True)
class LearnedSynonym:
    alias: str
    term: str
    code: str
    count: int


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width), no spaces, Latin upper-case: the form every match runs on."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", "", text).upper()


def split_segments(text: str) -> list[str]:
    return [segment for segment in (s.strip("?？。.!！:：\"'()（）[]【】") for s in _SEGMENT_SPLIT.split(text)) if segment]


def _similarity(segment: str, term: str) -> float:
    """How well a raw segment spells a standard term: shared bigrams after expanding 心梗/…癌 wording."""
    from inference.clinical_terms import expand_terms

    expanded = expand_terms(segment).replace("癌", "恶性肿瘤")
    grams_a = {expanded[i:i + 2] for i in range(len(expanded) - 1)} | set(expanded)
    grams_b = {term[i:i + 2] for i in range(len(term) - 1)} | set(term)
    return len(grams_a & grams_b) / max(len(grams_b), 1)


def _align(segments: list[str], terms: list[str]) -> list[tuple[str, str]]:
    """Greedy one-to-one alignment by similarity; leftover terms go to their best segment if it is close."""
    if len(segments) == 1:
        return [(segments[0], term) for term in terms]
    scored = sorted(((_similarity(s, t), s, t) for s in segments for t in terms), reverse=True)
    pairs, used_segments, used_terms = [], set(), set()
    for score, segment, term in scored:
        if score >= 0.3 and segment not in used_segments and term not in used_terms:
            pairs.append((segment, term))
            used_segments.add(segment)
            used_terms.add(term)
    for score, segment, term in scored:
        if term not in used_terms and score >= 0.5:
            pairs.append((segment, term))
            used_terms.add(term)
    return pairs


def learn(train: list[dict[str, str]], term_codes: dict[str, str]) -> list[LearnedSynonym]:
    pairs: Counter[tuple[str, str]] = Counter()
    for record in train:
        terms = list(dict.fromkeys(t.strip().strip('"') for t in record["normalized_result"].split("##") if t.strip()))
        text = normalize_text(record["text"])
        segments = split_segments(text) or [text]
        for segment, term in _align(list(dict.fromkeys(segments)), terms):
            pairs[(segment, term)] += 1
        for term in terms:
            pairs[(normalize_text(term), term)] += 1
    learned = []
    for (alias, term), count in pairs.items():
        code = term_codes.get(term)
        if code:
            learned.append(LearnedSynonym(alias=alias, term=term, code=code, count=count))
    return sorted(learned, key=lambda s: (s.alias, -s.count))


@dataclass(frozen=True)
class LearnedCue:
    cue: str
    term: str
    code: str
    precision: float


def _fragments(text: str) -> set[str]:
    fragments = {text[i:i + n] for n in (2, 3, 4) for i in range(len(text) - n + 1)}
    return {f for f in fragments if all(ch.isalnum() for ch in f)}


def learn_cues(train: list[dict[str, str]], term_codes: dict[str, str]) -> list[LearnedCue]:
    seen: Counter[str] = Counter()
    together: Counter[tuple[str, str]] = Counter()
    for record in train:
        fragments = _fragments(normalize_text(record["text"]))
        terms = {t.strip().strip('"') for t in record["normalized_result"].split("##") if t.strip()}
        seen.update(fragments)
        together.update((fragment, term) for fragment in fragments for term in terms)
    cues = []
    for (fragment, term), count in together.items():
        precision = count / seen[fragment]
        if count >= CUE_MIN_SUPPORT and precision >= CUE_MIN_PRECISION and term in term_codes:
            cues.append(LearnedCue(fragment, term, term_codes[term], round(precision, 3)))
    return sorted(cues, key=lambda c: (c.cue, c.term))


def read_term_codes(table_csv: Path) -> dict[str, str]:
    term_codes: dict[str, str] = {}
    with table_csv.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.reader(handle):
            if len(row) >= 2 and row[0] != "code":
                term_codes.setdefault(row[1].strip(), normalize_code(row[0]))
    return term_codes


def learned_path() -> Path:
    return data_dir() / FILE_NAME


def build(train_json: Path, table_csv: Path, target: Path | None = None) -> Path:
    if "dev" in train_json.name.lower():
        raise IcdTableError("CHIP-CDN dev 是保留评测集，不能用于学习 / the dev split is held out")
    train = json.loads(train_json.read_text(encoding="utf-8"))
    learned = learn(train, read_term_codes(table_csv))
    target = target or learned_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# learned from {train_json.name} with codes from {table_csv.name}"]
    lines += [f"{s.alias}\t{s.term}\t{s.code}\t{s.count}" for s in learned]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cues = learn_cues(train, read_term_codes(table_csv))
    cue_lines = [f"# learned from {train_json.name}: cue, term, code, precision"]
    cue_lines += [f"{c.cue}\t{c.term}\t{c.code}\t{c.precision}" for c in cues]
    (target.parent / CUES_FILE_NAME).write_text("\n".join(cue_lines) + "\n", encoding="utf-8")
    _load_learned.cache_clear()
    _load_cues.cache_clear()
    return target


def load_learned(path: Path | None = None) -> dict[str, list[LearnedSynonym]]:
    return _load_learned(path or learned_path())


@lru_cache(maxsize=4)
def _load_learned(path: Path) -> dict[str, list[LearnedSynonym]]:
    by_alias: dict[str, list[LearnedSynonym]] = defaultdict(list)
    for alias, term, code, count in read_tsv(path, 4) if path.exists() else []:
        by_alias[alias].append(LearnedSynonym(alias, term, code, int(count)))
    return dict(by_alias)


def load_cues(path: Path | None = None) -> dict[str, list[LearnedCue]]:
    return _load_cues(path or learned_path().parent / CUES_FILE_NAME)


@lru_cache(maxsize=4)
def _load_cues(path: Path) -> dict[str, list[LearnedCue]]:
    by_cue: dict[str, list[LearnedCue]] = defaultdict(list)
    for cue, term, code, precision in read_tsv(path, 4) if path.exists() else []:
        by_cue[cue].append(LearnedCue(cue, term, code, float(precision)))
    return dict(by_cue)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.icd_synonyms")
    parser.add_argument("action", choices=["build"])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--table", type=Path, required=True, help="北京临床版 CSV (code,name,…)")
    args = parser.parse_args(argv)
    try:
        path = build(args.train, args.table)
    except (IcdTableError, OSError, ValueError, KeyError) as exc:
        print(f"cannot learn synonyms: {exc}", file=sys.stderr)
        return 6
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
