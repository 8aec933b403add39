"""Scanned records: how well the OCR reads a record's words and, above all, its values, and how fast.

Made here from CMB-Clin held-out cases (id 40 and above; measured, never tuned on): each case's text rendered
to A4 page images with a CJK font at 150, 200 and 300 dpi through an office scanner (a 0.6° turn, speckle,
JPEG quality 75), and once as a phone photo (200 dpi, a 2.5° turn, blur, JPEG quality 70). Each is read as the
app reads it: ``load_document`` on the image, the OCR in the bounded reader process. Measured per variant:
- character error rate: edit distance over the source's length, both sides NFKC-folded with whitespace removed
  (line breaks and the spaces OCR cannot see are not errors; a full-width comma read as a comma is not either);
- values exact: the record's measurements (value and unit, ``record.values``) found as written in the reading;
- of the values not read exactly, how many stand on a line the review flags (O1: OCR confidence below
  ``LOW_CONFIDENCE``), which is the promise: a misread value is never silent;
- seconds per page on this machine.
With ``--text-layer``: the same cases as text-layer PDFs as an EMR prints them (a header with the patient on every
page, 第 i 页 共 n 页), read back through PDFium: how many come back equal to their source up to whitespace (the
header once), and seconds per page.

    .venv/bin/python bench/scanned_records.py [--split dev] [--cases 34] [--dpis 150,200,300] [--no-photo]
                                              [--text-layer] [--out FILE]

``--split dev`` reads cases 0-39 instead: where the OCR's misreadings are looked at and its rules set (the
held-out cases only measure them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rapidfuzz import fuzz  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402

from bench.eval_io import SHARED, cmb_clin_cases  # noqa: E402
from inference.documents import load_document  # noqa: E402
from inference.record.provenance import LOW_CONFIDENCE  # noqa: E402
from inference.record.values import find_measurements  # noqa: E402
from tests import record_files  # noqa: E402

HELD_OUT_FROM = 40


def squeeze(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).replace("“", '"').replace("”", '"')


def identities(text: str) -> Counter:
    return Counter(m.identity for m in find_measurements(text))


def variants(text: str, dpis: list[int], photo: bool = True) -> list[tuple[str, list[bytes]]]:
    found = []
    for dpi in dpis:
        pages = [record_files.scan_of(page) for page in record_files.page_images(text, dpi)]
        found.append((f"scan {dpi} dpi", [record_files.image_bytes(page, "JPEG", quality=95) for page in pages]))
    if photo:
        found.append(("phone photo", [record_files.photo_of(page) for page in record_files.page_images(text, 200)]))
    return found


def measure(text: str, pages: list[bytes], folder: Path) -> dict:
    started = time.perf_counter()
    lines_read, reading = [], []
    for number, data in enumerate(pages):
        path = folder / f"page{number}.jpg"
        path.write_bytes(data)
        document = load_document(path)
        reading.append(document.text)
        lines_read += [(document.text[line.start:line.end], line.confidence) for line in document.provenance.lines]
    seconds = time.perf_counter() - started
    read = "\n".join(reading)
    source, got = squeeze(text), squeeze(read)
    wanted, found = identities(text), identities(read)
    exact = sum((wanted & found).values())
    missed = [m for m in find_measurements(text) if found[m.identity] < wanted[m.identity]]
    flagged = 0
    for measurement in missed:  # the reading's line most like the source's line around the value
        around = text[max(0, text.rfind("\n", 0, measurement.start) + 1):text.find("\n", measurement.end) % (len(text) + 1)]
        best = max(lines_read, key=lambda line: fuzz.partial_ratio(line[0], around[:60]), default=("", 1.0))
        flagged += best[1] is not None and best[1] < LOW_CONFIDENCE
    return {"chars": len(source), "errors": Levenshtein.distance(source, got), "values": sum(wanted.values()),
            "exact": exact, "missed": len(missed), "missed_flagged": flagged, "pages": len(pages), "seconds": seconds}


def text_layer(cases: list[dict], folder: Path) -> dict:
    equal, pages, seconds, unequal = 0, 0, 0.0, []
    for case in cases:
        chunks = [case["description"][i:i + 1200] for i in range(0, len(case["description"]), 1200)]
        path = folder / "record.pdf"
        path.write_bytes(record_files.text_pdf(chunks))
        started = time.perf_counter()
        document = load_document(path)
        seconds += time.perf_counter() - started
        pages += len(chunks)
        same = squeeze(document.text) == squeeze((record_files.HEADER if len(chunks) else "") + "".join(chunks))
        equal += same
        if not same:
            unequal.append(case["id"])
    return {"cases": len(cases), "pages": pages, "equal_up_to_whitespace": equal, "unequal_cases": unequal,
            "seconds_per_page": round(seconds / pages, 3)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--dpis", default="150,200,300")
    parser.add_argument("--text-layer", action="store_true", help="text-layer PDFs only")
    parser.add_argument("--split", choices=["held-out", "dev"], default="held-out")
    parser.add_argument("--no-photo", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cases = cmb_clin_cases(args.shared)
    if cases is None:
        return 0
    held_out = [c for c in cases if (int(c["id"]) >= HELD_OUT_FROM) == (args.split == "held-out")][:args.cases]
    if args.text_layer:
        with tempfile.TemporaryDirectory() as folder:
            return _write({"machine": "2-core VM, no GPU", "text_layer_pdfs": text_layer(held_out, Path(folder))},
                          args.out)
    totals: dict[str, Counter] = {}
    with tempfile.TemporaryDirectory() as folder:
        for case in held_out:
            for name, pages in variants(case["description"], [int(d) for d in args.dpis.split(",")], not args.no_photo):
                row = measure(case["description"], pages, Path(folder))
                totals.setdefault(name, Counter()).update(row)
                print(f"case {case['id']} {name}: {json.dumps({k: round(v, 2) for k, v in row.items()})}",
                      file=sys.stderr, flush=True)
    results = {name: {"cases": len(held_out), "pages": t["pages"], "cer": round(t["errors"] / t["chars"], 4),
                      "values": t["values"], "values_exact": round(t["exact"] / t["values"], 4) if t["values"] else None,
                      "misread_values": t["missed"], "misread_flagged": t["missed_flagged"],
                      "seconds_per_page": round(t["seconds"] / t["pages"], 2)} for name, t in totals.items()}
    return _write({"machine": "2-core VM, no GPU", "split": args.split, "low_confidence": LOW_CONFIDENCE,
                   "variants": results}, args.out)


def _write(payload: dict, out: Path | None) -> int:
    text = json.dumps(payload, ensure_ascii=False, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
