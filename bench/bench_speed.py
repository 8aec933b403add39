"""The app's generation path against bare llama-cpp-python, in the same process, per record length.

    # here: records from CMB-Clin (../shared) and the demo model's own output for each (for replay)
    .venv/bin/python bench/bench_speed.py prepare --out bench/out/records
    # the benchmark (CPU with the demo model, or unchanged on CUDA with the synthetic 14B-shaped model)
    .venv/bin/python bench/bench_speed.py run --records bench/out/records [--model PATH] [--replay] [--out DIR]

For each record it measures, on one loaded engine:
  app       the app's summary call: grammar, streaming, prompt-lookup drafts (as configured), KV reuse
  free      the same engine and decoder without the grammar and without drafts (the "unconstrained" rate)
  bare      llama-cpp-python's create_completion on the identical prompt and settings, no grammar
  pipeline  the whole pipeline (summary, ICD function-calling rounds, validation) as the doctor runs it,
            after another record: the fixed prompt prefix comes from its snapshot
Cold runs start with an empty KV cache and no snapshots, so app and bare evaluate the same prompt.

``--replay``: a model with synthetic weights writes noise, so the grammar refuses its picks far more often
than a real model's and no summary ever ends. With --replay each call's tokens are forced to what the demo
model wrote for the same record (recorded by ``prepare``); the grammar still checks every token and drafts
are still verified, so the speed is that of a 14B model writing that summary. The synthetic model's own
picks are measured separately (``synthetic free run``) for the per-token costs and rejection rate.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# llama.cpp's libraries before numpy's: the other order segfaulted inside model loading on the H200 host (its
# python and numpy come from a PyTorch image; a second OpenMP runtime is the likely cause, not confirmed).
try:
    import llama_cpp  # noqa: F401
except ImportError:
    pass
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.reference_engine import buffer_sizes, forget_cache, reference_completion, set_draft_tokens  # noqa: E402
from inference.documents import document_from_text, load_document  # noqa: E402
from inference.errors import MedBriefError  # noqa: E402
from inference.icd.table import open_table  # noqa: E402
from inference.llm.engine import Engine, GenerationResult  # noqa: E402
from inference.llm.gpu_memory import estimate, gpu_devices  # noqa: E402
from inference.llm.sampling import GrammarMatcher, SamplingParams, TokenPicker  # noqa: E402
from inference.llm.settings import EngineSettings  # noqa: E402
from inference.pipeline import run_pipeline  # noqa: E402
from inference.summary.output_grammar import summary_gbnf  # noqa: E402
from inference.summary.summarizer import build_messages  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SAMPLE = ROOT / "resources" / "samples" / "sample_record.txt"
LENGTHS = {"2k": 2_000, "5k": 5_000, "10k": 10_000, "30k": 30_000}


# -- prepare (here, with ../shared and the demo model) -------------------------------------------------

def prepare(args: argparse.Namespace) -> int:
    cases = json.loads((SHARED / "eval" / "cmb_clin" / "CMB-test-qa.json").read_text(encoding="utf-8"))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "sample.txt").write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    for name, target in LENGTHS.items():
        parts, size = [], 0
        for index, case in enumerate(cases, 1):
            if size >= target:
                break
            text = f"【病例{index}】{case['title']}\n{case['description'].strip()}\n"
            parts.append(text)
            size += len(text)
        (out / f"{name}.txt").write_text("\n".join(parts), encoding="utf-8")
    engine = Engine(EngineSettings(model_path=None))
    table = open_table()
    replay: dict[str, list[str]] = {}
    for path in sorted(out.glob("*.txt"), key=_record_order):
        if path.stem not in args.record:
            continue
        try:
            report = run_pipeline(load_document(path), engine, table=table)
        except MedBriefError as exc:  # the 0.5B demo model loops on long records (issue #13's subject)
            print(f"{path.stem}: no replay ({exc})", file=sys.stderr)
            continue
        calls = [report.result.raw_output] + [g.text for g in (report.coding_trace.generations if report.coding_trace else [])]
        replay[path.stem] = calls
        print(f"{path.stem}: {len(path.read_text(encoding='utf-8'))} chars, {len(calls)} calls", file=sys.stderr)
        (out / "replay.json").write_text(json.dumps(replay, ensure_ascii=False, indent=1), encoding="utf-8")
    engine.close()
    return 0


def _record_order(path: Path) -> int:
    return -1 if path.stem == "sample" else LENGTHS.get(path.stem, 10**9)


# -- replay ------------------------------------------------------------------------------------------

class ReplayPicker(TokenPicker):
    """Picks what the recorded output says, at the cost of a real pick: argmax, then the grammar's check."""

    def __init__(self, params: SamplingParams, grammar: GrammarMatcher | None, forced: list[int], end: int) -> None:
        super().__init__(params, grammar)
        self.forced = forced
        self.end = end
        self.position = 0
        self.diverged = False

    def pick(self, logits: np.ndarray) -> int:
        if self.diverged:
            return super().pick(logits)
        self.stats.picks += 1
        np.argmax(logits)
        token = self.forced[self.position] if self.position < len(self.forced) else self.end
        self.position += 1
        if self.grammar is not None and not self._allows(token):
            self.diverged = True  # the recorded text does not fit this call's grammar: decode for real
            self.stats.picks -= 1
            return super().pick(logits)
        return token


class ReplayEngine(Engine):
    """The app's engine whose token picker the benchmark chooses per call (a replay of recorded output)."""

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)
        self.picker_factory: Callable[[SamplingParams, GrammarMatcher | None], TokenPicker] = TokenPicker

    def _new_picker(self, grammar: GrammarMatcher | None) -> TokenPicker:
        return self.picker_factory(self.sampling, grammar)


class Replay:
    def __init__(self, engine: Engine, calls: list[str]) -> None:
        self.engine = engine
        self.calls = list(calls)
        self.pickers: list[ReplayPicker] = []

    def __call__(self, params: SamplingParams, grammar: GrammarMatcher | None) -> TokenPicker:
        text = self.calls.pop(0) if self.calls else ""
        picker = ReplayPicker(params, grammar, self.engine.tokenize(text, add_bos=False), self.engine.eos_token)
        self.pickers.append(picker)
        return picker


# -- run ---------------------------------------------------------------------------------------------

def _call(result: GenerationResult, wall_s: float) -> dict[str, Any]:
    decode_s = result.total_s - result.ttft_s
    return {
        "wall_s": round(wall_s, 3), "ttft_s": round(result.ttft_s, 3), "prompt_tokens": result.prompt_tokens,
        "prompt_tokens_evaluated": result.prompt_tokens_evaluated,
        # Up to the first token: llama_decode returns before a GPU finishes, so the prompt phase alone under-counts.
        "prompt_tokens_per_s": round(result.prompt_tokens_evaluated / result.ttft_s, 1) if result.ttft_s else None,
        "completion_tokens": result.completion_tokens,
        "decode_tokens_per_s": round((result.completion_tokens - 1) / decode_s, 1) if decode_s > 0 else None,
        "grammar": result.picks.as_dict(), "drafts": result.drafts.as_dict(),
    }


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(rows[-1])
    for key, value in rows[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [r[key] for r in rows if r.get(key) is not None]
            merged[key] = round(statistics.median(values), 3) if values else None
    merged["runs"] = len(rows)
    return merged


def bench_record(engine: ReplayEngine, name: str, text: str, args: argparse.Namespace,
                 replay: dict[str, list[str]] | None, table: Any) -> dict[str, Any]:
    grammar = engine.compile_grammar(summary_gbnf())
    messages = build_messages(text)
    prompt = engine.template.render(messages)
    fixed = engine.template.render(messages[:-1])
    row: dict[str, Any] = {"record": name, "chars": len(text)}
    if replay is not None:
        row["replayed_output_of"] = name if name in replay else "sample"

    def use_replay() -> Replay | None:
        if replay is None:
            engine.picker_factory = TokenPicker
            return None
        player = Replay(engine, replay[name] if name in replay else replay["sample"])
        engine.picker_factory = player
        return player

    app_runs = []
    for _ in range(args.runs):
        forget_cache(engine)
        use_replay()
        started = time.perf_counter()
        result = engine.generate(prompt, grammar=grammar, fixed_prefix=fixed, max_tokens=args.max_tokens)
        app_runs.append(_call(result, time.perf_counter() - started))
    row["app"] = _median(app_runs)
    tokens = row["app"]["completion_tokens"]

    draft_tokens = engine.info.draft_tokens
    set_draft_tokens(engine, 0)
    engine.picker_factory = TokenPicker
    forget_cache(engine)
    started = time.perf_counter()
    free = engine.generate(prompt, max_tokens=tokens)
    row["free"] = _call(free, time.perf_counter() - started)
    if draft_tokens:
        forget_cache(engine)
        use_replay()
        started = time.perf_counter()
        nodraft = engine.generate(prompt, grammar=grammar, max_tokens=tokens)
        row["app_no_drafts"] = _call(nodraft, time.perf_counter() - started)
    set_draft_tokens(engine, draft_tokens)
    engine.picker_factory = TokenPicker

    bare_runs = []
    for _ in range(args.runs):
        started = time.perf_counter()
        bare = reference_completion(engine, prompt, max_tokens=tokens)
        bare_runs.append(_call(bare, time.perf_counter() - started))
    row["bare"] = _median(bare_runs)
    bare_m = row["bare"]
    # Bare text without the grammar can stop earlier or later: compare at the app's token count.
    rate = bare_m["decode_tokens_per_s"] or 0
    row["bare_same_tokens_s"] = round(bare_m["ttft_s"] + (tokens - 1) / rate, 3) if rate else None
    if name == "sample" and args.old_path:
        started = time.perf_counter()
        old = reference_completion(engine, prompt, grammar=grammar, max_tokens=tokens)
        row["old_path"] = _call(old, time.perf_counter() - started)

    if table is not None:
        # Twice: the first after the benchmark's cold runs (no snapshots), the second as the doctor's next
        # patient, with the fixed prompt prefixes restored from their snapshots.
        for key in ("pipeline_cold", "pipeline"):
            player = use_replay()
            started = time.perf_counter()
            try:
                report = run_pipeline(document_from_text(text, f"{name}.txt"), engine, table=table)
            except MedBriefError as exc:  # synthetic weights without --replay never finish a summary
                row[key] = {"error": str(exc)}
                break
            row[key] = {
                "wall_s": round(time.perf_counter() - started, 3),
                "calls": report.result.timings.calls,
                "icd_rounds": report.coding_trace.rounds if report.coding_trace else 0,
                "replay_diverged": any(p.diverged for p in player.pickers) if player else None,
            }
        engine.picker_factory = TokenPicker

    app = row["app"]
    row["ratios"] = {
        "constrained_vs_free_tokens_per_s": _ratio(
            (row.get("app_no_drafts") or app)["decode_tokens_per_s"], row["free"]["decode_tokens_per_s"]),
        "app_vs_bare_time": _ratio(app["wall_s"], row["bare_same_tokens_s"]),
    }
    return row


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def synthetic_free_run(engine: ReplayEngine, text: str, max_tokens: int) -> dict[str, Any]:
    """The model's own picks under the grammar: with synthetic weights, the worst case for the check-first rule."""
    engine.picker_factory = TokenPicker
    forget_cache(engine)
    grammar = engine.compile_grammar(summary_gbnf())
    prompt = engine.template.render(build_messages(text))
    started = time.perf_counter()
    result = engine.generate(prompt, grammar=grammar, max_tokens=max_tokens)
    return _call(result, time.perf_counter() - started)


def memory_variants(model: Path | None, records: dict[str, str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """VRAM and prompt speed for the batch sizes and KV precisions a 4090 owner would choose between."""
    rows = []
    text = records.get(args.memory_record) or max(records.values(), key=len)
    for n_ubatch, kv in ((512, "f16"), (2048, "f16"), (2048, "q8_0")):
        before = gpu_devices()
        settings = EngineSettings(model_path=model, n_batch=max(n_ubatch, 512), n_ubatch=n_ubatch, kv_cache_type=kv,
                                  n_ctx=args.n_ctx)
        engine = Engine(settings)
        after = gpu_devices()
        prompt = engine.template.render(build_messages(text))
        result = engine.generate(prompt, max_tokens=2)
        guess = estimate(engine.gguf, n_ctx=args.n_ctx, kv_cache_type=kv, n_ubatch=n_ubatch)
        rows.append({
            "n_ubatch": n_ubatch, "kv": kv, "load_s": round(engine.info.load_s, 2),
            "vram_used_gib": round((before[0].free - after[0].free) / 2**30, 2) if before and after else None,
            "llama_buffers_mib": buffer_sizes(engine),
            "estimate_gib": guess.as_dict(),
            "prompt_tokens": result.prompt_tokens,
            "prompt_tokens_per_s": round(result.prompt_tokens_evaluated / result.ttft_s, 1),
        })
        engine.close()
        print(json.dumps(rows[-1], ensure_ascii=False), file=sys.stderr)
    return rows


def run(args: argparse.Namespace) -> int:
    records = {p.stem: p.read_text(encoding="utf-8") for p in sorted(args.records.glob("*.txt"), key=_record_order)}
    if args.only:  # in the order given: the figures that matter most first, in case time runs out
        records = {k: records[k] for k in args.only.split(",") if k in records}
    replay = json.loads((args.records / "replay.json").read_text(encoding="utf-8")) if args.replay else None
    args.out.mkdir(parents=True, exist_ok=True)
    devices_before = gpu_devices()
    overrides = {} if args.draft_tokens is None else {"draft_tokens": args.draft_tokens}
    engine = ReplayEngine(EngineSettings(model_path=args.model, n_ctx=args.n_ctx, n_gpu_layers=args.gpu_layers,
                                        **overrides))
    devices_after = gpu_devices()
    table = open_table() if not args.no_icd else None
    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "gpu": devices_before[0].name if devices_before else None},
        "model": engine.info.as_dict(), "load_s": round(engine.info.load_s, 2),
        "vram_used_gib": round((devices_before[0].free - devices_after[0].free) / 2**30, 2)
        if devices_before and devices_after else None,
        "llama_buffers_mib": buffer_sizes(engine),
        "estimate": estimate(engine.gguf, n_ctx=args.n_ctx, n_ubatch=engine.settings.n_ubatch,
                             device=devices_before[0] if devices_before else None).as_dict(),
        "replay": bool(replay), "records": [],
    }
    out_json = args.out / "bench_speed.json"
    # Warm-up: the first call after loading pays for page faults in the memory-mapped weights and the
    # backend's first-use costs; without this the first path measured looks slower than the others.
    engine.generate(engine.template.render(build_messages(next(iter(records.values())))), max_tokens=8)

    def save() -> None:
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        out_json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        (args.out / "bench_speed.md").write_text(markdown(result), encoding="utf-8")

    for name, text in records.items():
        started = time.perf_counter()
        try:
            result["records"].append(bench_record(engine, name, text, args, replay, table))
        except Exception as exc:  # keep what was measured; say what broke
            result.setdefault("errors", []).append(f"{name}: {type(exc).__name__}: {exc}")
            print(result["errors"][-1], file=sys.stderr)
            continue
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        save()
        if name == "sample" and replay is not None:
            result["synthetic_free_run"] = synthetic_free_run(engine, text, args.max_tokens or 300)
            save()
    engine.close()
    if args.memory_variants and devices_before:
        result["memory_variants"] = memory_variants(args.model, records, args)
        save()
    print(markdown(result))
    return 0


def markdown(result: dict[str, Any]) -> str:
    model = result["model"]
    lines = [
        f"Machine: {result['machine']['processor']} / {result['machine']['gpu'] or 'no GPU'}; model {model['file']} "
        f"({model['quantization']}, {model['gpu_layers_offloaded']}/{model['total_layers']} layers on GPU, "
        f"drafts {model['draft_tokens']}); load {result['load_s']} s"
        + ("; outputs replayed from the demo model" if result["replay"] else ""),
        "",
        "| record | prompt tok | app TTFT s | app tok/s | free tok/s | constrained/free | app s | bare s (same tokens) "
        "| app/bare | prompt tok/s | pipeline s cold / next patient (ICD rounds) | rejections | drafts accepted |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["records"]:
        app, free = row["app"], row["free"]
        pipeline = row.get("pipeline") if "wall_s" in row.get("pipeline", {}) else None
        cold = row.get("pipeline_cold", {}).get("wall_s", "-")
        lines.append(
            f"| {row['record']} ({row['chars']} chars) | {app['prompt_tokens']} | {app['ttft_s']} | "
            f"{app['decode_tokens_per_s']} | {free['decode_tokens_per_s']} | "
            f"{row['ratios']['constrained_vs_free_tokens_per_s']} | {app['wall_s']} | {row['bare_same_tokens_s']} | "
            f"{row['ratios']['app_vs_bare_time']} | {app['prompt_tokens_per_s']} | "
            f"{cold} / {pipeline['wall_s'] if pipeline else '-'} ({pipeline['icd_rounds'] if pipeline else '-'}) | "
            f"{app['grammar']['rejection_rate']} | {app['drafts']['acceptance']} |"
        )
    for row in result["records"]:
        if "old_path" in row:
            old = row["old_path"]
            lines += ["", f"Old path (create_completion + grammar, full mask), sample record: {old['wall_s']} s, "
                          f"{old['decode_tokens_per_s']} tok/s."]
    free_run = result.get("synthetic_free_run")
    if free_run:
        g = free_run["grammar"]
        lines += ["", f"Synthetic weights, own picks under the grammar: {free_run['decode_tokens_per_s']} tok/s, "
                      f"rejection rate {g['rejection_rate']}, check {g['check_us_per_pick']} µs/pick, "
                      f"full mask {g['mask_ms_per_mask']} ms each ({g['full_masks']} of {g['picks']} picks)."]
    for variant in result.get("memory_variants", []):
        lines.append(f"- n_ubatch {variant['n_ubatch']}, KV {variant['kv']}: VRAM {variant['vram_used_gib']} GiB "
                     f"(estimate {variant['estimate_gib']['total_gib']}), prompt {variant['prompt_tokens_per_s']} tok/s "
                     f"on {variant['prompt_tokens']} tokens")
    lines += ["", f"Peak RSS {result.get('peak_rss_mib')} MiB; VRAM used by the engine {result.get('vram_used_gib')} GiB "
                  f"(estimate {result['estimate']['total_gib']} GiB)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "records")
    p.add_argument("--record", nargs="*", default=["sample", "2k", "5k"],
                   help="records to record the demo model's output for (the others replay the sample's)")
    r = commands.add_parser("run")
    r.add_argument("--records", type=Path, default=ROOT / "bench" / "out" / "records")
    r.add_argument("--model", type=Path)
    r.add_argument("--replay", action="store_true")
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--max-tokens", type=int)
    r.add_argument("--n-ctx", type=int, default=32768)
    r.add_argument("--gpu-layers", type=int, default=-1)
    r.add_argument("--draft-tokens", type=int)
    r.add_argument("--only", help="comma-separated record names")
    r.add_argument("--no-icd", action="store_true")
    r.add_argument("--old-path", action="store_true", help="also time create_completion with the grammar (slow)")
    r.add_argument("--memory-variants", action="store_true", help="CUDA: VRAM and prompt speed per n_ubatch/KV type")
    r.add_argument("--memory-record", default="10k", help="record whose prompt times each memory variant")
    r.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    return prepare(args) if args.command == "prepare" else run(args)


if __name__ == "__main__":
    raise SystemExit(main())
