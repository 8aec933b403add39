"""Hold-out score of the learned ICD lookup for one text-encoder shape: learn on CHIP-CDN train minus its last
1,000 strings (the build's five-fold cross-fitted ranker), score the last 1,000 (dev stays untouched), with
the encoder as learned (float32) and as it ships (int8 rows, one scale per row). How the shipped shape was chosen.

    .venv/bin/python bench/icd_holdout.py --buckets 32768 --dims 96 [--shared ../shared]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import inference.icd.training.corpus as corpus  # noqa: E402
from inference.icd.encoder import TextEncoder  # noqa: E402
from inference.icd.lookup import IcdMatcher  # noqa: E402
from inference.icd.table import read_bundled_table  # noqa: E402
from inference.icd.training.build import EDITION_PATH, TRAIN_PATH, edition_table, f1, reference_titles, train_ranker  # noqa: E402
from inference.icd.training.corpus import learn_all, read_term_codes, read_training_set, record_terms  # noqa: E402
from inference.icd.training.encoder_training import train_encoder  # noqa: E402


def as_shipped(encoder: TextEncoder) -> TextEncoder:
    codes, scales = encoder.quantized()
    return TextEncoder(codes.astype(np.float32) * scales[:, None])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buckets", type=int, default=1 << 15)
    parser.add_argument("--dims", type=int, default=96)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = parser.parse_args()
    corpus.train_encoder = functools.partial(train_encoder, buckets=args.buckets, dimensions=args.dims)
    started = time.time()
    records = read_training_set(args.shared / TRAIN_PATH)
    term_codes = read_term_codes(args.shared / EDITION_PATH)
    learn_on, score_on = records[:-1000], records[-1000:]
    who, edition = read_bundled_table(), edition_table(args.shared / EDITION_PATH)
    ranker = train_ranker(learn_on, term_codes, [who, edition], "hold-out")
    learned = learn_all(learn_on, term_codes, reference_titles(who))
    gold_terms = [set(record_terms(r)) for r in score_on]
    gold_categories = [{term_codes[t][:3] for t in g if t in term_codes and "/" not in term_codes[t]} for g in gold_terms]
    report: dict[str, object] = {"buckets": args.buckets, "dims": args.dims}
    for label, data in (("float32", learned), ("int8", replace(learned, encoder=as_shipped(learned.encoder)))):
        w, b = IcdMatcher(who, data, ranker), IcdMatcher(edition, data, ranker)
        report[label] = {
            "who_category_f1": f1(gold_categories, [{c.code[:3] for c in w.codes(r["text"])} for r in score_on]),
            "edition_term_f1": f1(gold_terms, [{c.name for c in b.codes(r["text"])} for r in score_on]),
        }
    report["minutes"] = round((time.time() - started) / 60, 1)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
