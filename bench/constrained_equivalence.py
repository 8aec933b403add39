"""Is the app's constrained decoder byte-identical to llama-cpp-python's full-mask path on real records?

For the sample record and the first N CMB-Clin cases (held out: only measured), the summary is generated
twice on one engine under the summary grammar — by ``Engine.generate`` (check-the-pick-first) and by
``reference_engine.reference_completion`` (create_completion, grammar over the whole vocabulary at every step) —
and the texts are compared. Reports identical count, rejection rate and the speed of both.

    .venv/bin/python bench/constrained_equivalence.py [--cases 20] [--model PATH] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.reference_engine import reference_completion  # noqa: E402
from inference.llm.engine import Engine  # noqa: E402
from inference.llm.settings import EngineSettings  # noqa: E402
from inference.summary.output_grammar import summary_gbnf  # noqa: E402
from inference.summary.summarizer import build_messages  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    records = [("sample", (ROOT / "resources" / "samples" / "sample_record.txt").read_text(encoding="utf-8"))]
    path = args.shared / "eval" / "cmb_clin" / "CMB-test-qa.json"
    if path.exists():
        cases = json.loads(path.read_text(encoding="utf-8"))[: args.cases]
        records += [(f"cmb-{case['id']}", case["description"]) for case in cases]
    else:
        print(f"{path} not found: sample record only", file=sys.stderr)
    engine = Engine(EngineSettings(model_path=args.model, n_ctx=8192))
    grammar = engine.compile_grammar(summary_gbnf())
    rows = []
    for name, text in records:
        prompt = engine.template.render(build_messages(text))
        new = engine.generate(prompt, grammar=grammar)
        old = reference_completion(engine, prompt, grammar=grammar)
        rows.append({
            "record": name, "identical": new.text == old.text, "tokens": new.completion_tokens,
            "new_tokens_per_s": round(new.tokens_per_s, 1), "old_tokens_per_s": round(old.tokens_per_s, 1),
            **new.picks.as_dict(),
        })
        print(json.dumps(rows[-1], ensure_ascii=False), file=sys.stderr)
    engine.close()
    picks = sum(r["picks"] for r in rows)
    summary = {
        "model": engine.info.as_dict()["file"], "records": len(rows), "identical": sum(r["identical"] for r in rows),
        "tokens": sum(r["tokens"] for r in rows),
        "rejection_rate": round(sum(r["rejected_first"] for r in rows) / picks, 4),
        "full_mask_rate": round(sum(r["full_masks"] for r in rows) / picks, 4),
        "median_new_tokens_per_s": statistics.median(r["new_tokens_per_s"] for r in rows),
        "median_old_tokens_per_s": statistics.median(r["old_tokens_per_s"] for r in rows),
        "rows": rows,
    }
    text = json.dumps(summary, ensure_ascii=False, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, ensure_ascii=False, indent=1))
    return 0 if summary["identical"] == summary["records"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
