"""Build the learned ICD lookup that ships in ``resources/icd/learned/``, and check that it reproduces.

The ranker must learn how far to trust each kind of evidence on strings it has not learned from, so it
is trained with cross-fitting: synonyms, cues, examples and encoder learned on four fifths of CHIP-CDN
train produce the evidence for the remaining fifth, fold by fold. The shipped files are then learned from
all of train. Evidence is gathered on two tables — the bundled WHO table and the hospital edition the
training set is coded in (北京临床版) — and one feature says how detailed a table's codes are, so the same
model ranks candidates from the bundled table and from an imported hospital table.

    python -m inference.icd.training build [--shared ../shared] [--out resources/icd/learned]
    python -m inference.icd.training check [--shared ../shared]     rebuild elsewhere, compare with what ships
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import sklearn

from inference.errors import IcdTableError
from inference.icd.importer import read_entries
from inference.icd.learned import (
    LEARNED_DIR,
    LEARNED_FILES,
    MANIFEST_FILE,
    RANKER_FILE,
    file_sha256,
    read_learned,
    read_manifest,
)
from inference.icd.lookup import IcdMatcher
from inference.icd.ranker import FEATURES, RankerModel, load_model
from inference.icd.table import BUNDLED_TABLE_PATH, IcdTable, TableInfo, read_bundled_table
from inference.icd.training.corpus import learn_all, read_term_codes, read_training_set, record_terms, write_learned
from inference.icd.training.encoder_training import BUCKETS, DIMENSIONS
from inference.icd.training.ranker_training import fit
from inference.paths import resources_dir

# Each fold's evidence comes from what was learned on the other folds: with 5, that is 80% of train, close to
# what the lookup learns from all of it (train hold-out, WHO category / 北京 term F1: 2 folds 0.749 / 0.651,
# 4 folds 0.754 / 0.654, 5 folds 0.758 / 0.655). Each fold learns an encoder, so learning takes longer.
FOLDS = 5
MIN_POSITIVES = 20  # right and wrong candidates each, across the folds
TRAIN_PATH = Path("eval") / "chip_cdn" / "CHIP-CDN_train.json"
EDITION_PATH = Path("data") / "icd10" / "beijing_v601" / "icd10_beijing_v601.csv"
# Scores equal to this within a rebuild on another machine (floating point may differ in the last bits).
SCORE_TOLERANCE = 0.005
_CORE = Path(__file__).resolve().parents[2]
# What shapes the learned files: the training code, the runtime modules that produce the evidence it learns
# from, and the hand lexicons. coding.py (the model's function calls), precision.py (combination rules and
# leaf codes), reading.py (the coder's reading of the ranked candidates), patient_rules.py (sex and age) and
# rules_file.py (how their files are read), all applied after the lookup ranks, do not, so editing them needs
# no rebuild.
_NOT_SHAPING = {"__init__.py", "coding.py", "precision.py", "reading.py", "patient_rules.py", "rules_file.py"}
SHAPING_CODE = (
    *sorted(p for p in (_CORE / "icd").glob("*.py") if p.name not in _NOT_SHAPING),
    *sorted((_CORE / "icd" / "training").glob("*.py")),
    _CORE / "record" / "clinical_terms.py",
)


def code_hash() -> str:
    digest = hashlib.sha256()
    for path in [*SHAPING_CODE, *sorted((resources_dir() / "terms").glob("*.tsv"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


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
        learned = learn_all([r for j, part in enumerate(parts) if j != i for r in part], term_codes, titles)
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


def edition_table(table_csv: Path) -> IcdTable:
    return IcdTable(TableInfo(table_csv.stem, "", f"read from {table_csv.name}", "", 0, ""), read_entries(table_csv))


def build(train_json: Path, table_csv: Path, target: Path = LEARNED_DIR) -> dict:
    """Learn everything into ``target`` and write its manifest (written last: a build cut short has none)."""
    # Hashed before learning: inputs or code edited during the minutes it takes must not be stamped as learned.
    inputs = {path.name: file_sha256(path) for path in (train_json, table_csv, BUNDLED_TABLE_PATH)}
    code = code_hash()
    train = read_training_set(train_json)
    term_codes = read_term_codes(table_csv)
    bundled = read_bundled_table()
    source = f"{train_json.name} with codes from {table_csv.name}"
    model = train_ranker(train, term_codes, [bundled, edition_table(table_csv)], source)
    target.mkdir(parents=True, exist_ok=True)
    (target / MANIFEST_FILE).unlink(missing_ok=True)
    write_learned(learn_all(train, term_codes, reference_titles(bundled)), target, source)
    model.save(target / RANKER_FILE)
    manifest = {
        "built_by": "python -m inference.icd.training build",
        "inputs": inputs,
        "code": code,
        "encoder": {"buckets": BUCKETS, "dimensions": DIMENSIONS, "storage": "int8, one float32 scale per row"},
        "ranker": model.trained_on,
        "environment": {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": _sklearn()},
        "files": {name: file_sha256(target / name) for name in LEARNED_FILES},
    }
    (target / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


def _sklearn() -> str:
    return str(sklearn.__version__)


def scores(directory: Path, records: list[dict[str, str]], term_codes: dict[str, str], table_csv: Path) -> dict:
    """WHO category F1 and edition term F1 of the lookup learned in ``directory`` on ``records``."""
    learned, ranker = read_learned(directory), load_model(directory / RANKER_FILE)
    who, edition = IcdMatcher(read_bundled_table(), learned, ranker), IcdMatcher(edition_table(table_csv), learned, ranker)
    gold_terms = [set(record_terms(r)) for r in records]
    gold_categories = [{term_codes[t][:3] for t in g if t in term_codes and "/" not in term_codes[t]} for g in gold_terms]
    return {
        "who_category_f1": f1(gold_categories, [{c.code[:3] for c in who.codes(r["text"])} for r in records]),
        "edition_term_f1": f1(gold_terms, [{c.name for c in edition.codes(r["text"])} for r in records]),
    }


def f1(gold: list[set[str]], predicted: list[set[str]]) -> float:
    hits = sum(len(g & p) for g, p in zip(gold, predicted))
    n_predicted, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    return round(2 * hits / (n_predicted + n_gold), 4) if n_predicted + n_gold else 0.0


def check(train_json: Path, table_csv: Path, shipped: Path = LEARNED_DIR, sample: int = 600) -> list[str]:
    """Rebuild into a temporary folder and compare with what ships: the stamps must match the inputs and
    code of this checkout, and every file must be the same bytes — or, where floating point differs
    between machines, give the same scores on a sample of train. Returns the problems found."""
    manifest = read_manifest(shipped)
    problems = []
    inputs = {path.name: file_sha256(path) for path in (train_json, table_csv, BUNDLED_TABLE_PATH)}
    if manifest.get("inputs") != inputs:
        problems.append(f"inputs differ from the stamp: {manifest.get('inputs')} vs {inputs}")
    if manifest.get("code") != code_hash():
        problems.append("the code that shapes the lookup changed since it was built: rebuild it")
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = build(train_json, table_csv, Path(tmp))
        differing = [name for name in LEARNED_FILES if rebuilt["files"][name] != manifest["files"].get(name)]
        if differing:
            records = read_training_set(train_json)[:sample]
            term_codes = read_term_codes(table_csv)
            ours, theirs = (scores(d, records, term_codes, table_csv) for d in (Path(tmp), shipped))
            if any(abs(ours[k] - theirs[k]) > SCORE_TOLERANCE for k in ours):
                problems.append(f"files {differing} differ and so do the scores: rebuilt {ours}, shipped {theirs}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.icd.training")
    parser.add_argument("action", choices=["build", "check"])
    parser.add_argument("--shared", type=Path, default=_CORE.parent.parent / "shared",
                        help="the shared data folder (CHIP-CDN train and the 北京临床版 table)")
    parser.add_argument("--out", type=Path, default=LEARNED_DIR, help="build: where to write (default: what ships)")
    args = parser.parse_args(argv)
    train, table = args.shared / TRAIN_PATH, args.shared / EDITION_PATH
    try:
        if args.action == "build":
            manifest = build(train, table, args.out)
            print(f"{args.out}: code {manifest['code'][:16]}, ranker {manifest['ranker']}")
            return 0
        problems = check(train, table)
    except (IcdTableError, OSError, ValueError, KeyError) as exc:
        print(f"cannot learn the ICD lookup: {exc}", file=sys.stderr)
        return 6
    for problem in problems:
        print(problem, file=sys.stderr)
    print("reproduced" if not problems else "not reproduced")
    return 1 if problems else 0
