"""Learn the ICD lookup's synonyms, cues, examples, text encoder and ranker from CHIP-CDN train (never dev).

The ranker must learn how far to trust each kind of evidence on strings it has not learned from, so it
is trained with cross-fitting: synonyms, cues, examples and encoder learned on four fifths of train produce the
evidence for the remaining fifth, fold by fold. The files written to the data dir are then learned
from all of train. Evidence is gathered on two tables — the bundled WHO table and the hospital edition
the training set is coded in (北京临床版) — and one feature says how detailed a table's codes are, so the
same model ranks candidates from the bundled table and from an imported hospital table.

    python -m inference.icd_training.learning build --train CHIP-CDN_train.json --table icd10_beijing_v601.csv
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

from inference.errors import IcdTableError
from inference.icd.encoder import ENCODER_FILE_NAME, TextEncoder
from inference.icd.importer import read_entries
from inference.icd.lookup import IcdMatcher
from inference.icd.ranker import FEATURES, MODEL_FILE_NAME, RankerModel, fit, load_model
from inference.icd.synonyms import (
    CUES_FILE_NAME,
    EXAMPLES_FILE_NAME,
    FILE_NAME,
    LearnedData,
    read_term_codes,
    read_training_set,
    record_terms,
)
from inference.icd.table import BUNDLED_TABLE, IcdTable, TableInfo, open_table
from inference.paths import data_dir, resources_dir

# Each fold's evidence comes from what was learned on the other folds: with 5, that is 80% of train, close to
# what the lookup learns from all of it (train hold-out, WHO category / 北京 term F1: 2 folds 0.749 / 0.651,
# 4 folds 0.754 / 0.654, 5 folds 0.758 / 0.655). Each fold learns an encoder, so learning takes longer.
FOLDS = 5
MIN_POSITIVES = 20  # right and wrong candidates each, across the folds
FINGERPRINT_FILE_NAME = "icd_learned.fingerprint"
LEARNED_FILES = (
    FILE_NAME, CUES_FILE_NAME, EXAMPLES_FILE_NAME, ENCODER_FILE_NAME, MODEL_FILE_NAME, FINGERPRINT_FILE_NAME
)


def training_rows(
    matcher: IcdMatcher, records: list[dict[str, str]], term_codes: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Evidence features of every candidate, labelled right when it is a gold term (by name — an edition
    may list one name under a category and its leaf code) or the gold code as the table has it."""
    blocks, labels = [], []
    for record in records:
        terms = set(record_terms(record))
        entries = (matcher.table.closest_existing(term_codes[t]) for t in terms if t in term_codes)
        codes = {entry.code for entry in entries if entry is not None}
        evidence, features = matcher.evidence(record["text"])
        if evidence:
            blocks.append(features)
            labels += [item.candidate.code in codes or item.candidate.name in terms for item in evidence]
    if not blocks:
        return np.zeros((0, len(FEATURES))), np.zeros(0)
    return np.vstack(blocks), np.array(labels, dtype=float)


def train_ranker(
    train: list[dict[str, str]], term_codes: dict[str, str], tables: list[IcdTable], source: str, folds: int = FOLDS
) -> RankerModel:
    parts = [train[i::folds] for i in range(folds)]
    features, labels = [], []
    titles = reference_titles(tables[0])
    for i, held in enumerate(parts):
        learned = LearnedData.learn([r for j, part in enumerate(parts) if j != i for r in part], term_codes, titles)
        for table in tables:
            x, y = training_rows(IcdMatcher(table, learned), held, term_codes)
            features.append(x)
            labels.append(y)
    y = np.concatenate(labels)
    if y.sum() < MIN_POSITIVES or (1 - y).sum() < MIN_POSITIVES:
        raise IcdTableError(f"训练集太小，无法学习排序 / too few coded strings to learn a ranker ({len(train)})")
    names = ", ".join(table.info.name for table in tables)
    return fit(np.vstack(features), y, f"{source} ({len(train)} strings, {folds}-fold; {names})")


def reference_titles(table: IcdTable) -> dict[str, str]:
    return {entry.code: entry.name for entry in table.lookup_entries()}


def fingerprint(train_json: Path, table_csv: Path) -> str:
    """Of the inputs and of the code and lexicons that shape what is learned: equal means nothing to relearn."""
    digest = hashlib.sha256()
    core = Path(__file__).resolve().parent.parent
    # icd/coding.py (the model's function-call loop) reads what is learned but does not shape it.
    code = [path for path in sorted((core / "icd").glob("*.py")) if path.name not in ("coding.py", "__init__.py")]
    sources = [train_json, table_csv, *code, Path(__file__).resolve(), core / "checks" / "clinical_terms.py",
               *sorted((resources_dir() / "terms").glob("*.tsv"))]
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_current(train_json: Path, table_csv: Path, target: Path | None = None) -> bool:
    target = target or data_dir()
    stamp = target / FINGERPRINT_FILE_NAME
    return (
        stamp.exists() and stamp.read_text(encoding="utf-8").strip() == fingerprint(train_json, table_csv)
        and load_model(target / MODEL_FILE_NAME) is not None
        and TextEncoder.load(target / ENCODER_FILE_NAME) is not None  # without it the ranker is not used
    )


def build(train_json: Path, table_csv: Path, target: Path | None = None, bundled: IcdTable | None = None) -> Path:
    """Learn everything into ``target`` (default: the data dir); returns the ranker model path. Evidence is
    gathered on ``bundled`` (default: the installed WHO table) and on the edition ``table_csv`` itself."""
    # Taken before learning: inputs or code edited during the minutes it takes must not be stamped as learned.
    inputs = fingerprint(train_json, table_csv)
    train = read_training_set(train_json)
    term_codes = read_term_codes(table_csv)
    target = target or data_dir()
    source = f"{train_json.name} with codes from {table_csv.name}"
    coded_in = IcdTable(TableInfo(table_csv.stem, "", f"read from {table_csv.name}", "", 0, ""), read_entries(table_csv))
    bundled = bundled or open_table(BUNDLED_TABLE)
    model = train_ranker(train, term_codes, [bundled, coded_in], source)
    stamp = target / FINGERPRINT_FILE_NAME
    stamp.unlink(missing_ok=True)  # written last: a build cut short is redone
    LearnedData.learn(train, term_codes, reference_titles(bundled)).write(target, source)
    model.save(target / MODEL_FILE_NAME)
    stamp.write_text(inputs + "\n", encoding="utf-8")
    return target / MODEL_FILE_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.icd_training.learning")
    parser.add_argument("action", choices=["build"])
    parser.add_argument("--train", type=Path, required=True, help="CHIP-CDN_train.json")
    parser.add_argument("--table", type=Path, required=True, help="北京临床版 CSV (code,name,…)")
    parser.add_argument("--if-changed", action="store_true", help="do nothing when inputs and code are unchanged")
    args = parser.parse_args(argv)
    try:
        if args.if_changed and is_current(args.train, args.table):
            print(f"up to date: {data_dir()}")
            return 0
        path = build(args.train, args.table)
    except (IcdTableError, OSError, ValueError, KeyError) as exc:
        print(f"cannot learn the ICD lookup: {exc}", file=sys.stderr)
        return 6
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
