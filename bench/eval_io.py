"""What the CMB-Clin benches share: finding the held-out cases and writing their results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def cmb_clin_cases(shared: Path = SHARED) -> list[dict[str, Any]] | None:
    """The CMB-Clin cases (held out: measured, never tuned on); None, said on stderr, when absent."""
    path = shared / "eval" / "cmb_clin" / "CMB-test-qa.json"
    if not path.exists():
        print(f"skipped: {path} not found", file=sys.stderr)
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def finish(engine: Any, payload: dict[str, Any], out: Path | None) -> int:
    """Close the engine; print the results as JSON and write them to ``out`` when given."""
    engine.close()
    text = json.dumps({"model": engine.info.as_dict()["file"], **payload}, ensure_ascii=False, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def bench_parser() -> argparse.ArgumentParser:
    """The options every CMB-Clin bench takes: where ../shared is, the model, where to write the results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--out", type=Path)
    return parser
