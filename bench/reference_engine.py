"""What the benchmarks and the equivalence tests need of an engine beyond what the app uses: llama-cpp-python's
own ``create_completion`` as the reference, a cold cache without reloading, the drafts switched per call, and
the buffers llama.cpp allocated. They reach into the engine's internals on purpose: none of this ships."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from inference.errors import GenerationCancelled
from inference.llm.chat_template import strip_thinking
from inference.llm.decoder import TokenCallback
from inference.llm.engine import Engine, GenerationResult
from inference.llm.sampling import CompiledGrammar

_BUFFER = re.compile(r"(\S+) (model|KV|compute|output) buffer size =\s*([\d.]+) MiB")


@dataclass
class _Stopper:
    cancel: threading.Event | None
    fired: bool = field(default=False)

    def __call__(self, _tokens: np.ndarray, _logits: np.ndarray) -> bool:
        if self.cancel is not None and self.cancel.is_set():
            self.fired = True
        return self.fired


def reference_completion(
    engine: Engine,
    prompt: str,
    *,
    grammar: CompiledGrammar | None = None,
    max_tokens: int | None = None,
    on_token: TokenCallback | None = None,
    cancel: threading.Event | None = None,
) -> GenerationResult:
    """llama-cpp-python's own ``create_completion`` on the same prompt and settings: the baseline the benchmarks
    compare with and the tests check ``Engine.generate`` against (with a grammar it masks the whole vocabulary
    at every step)."""
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

    tokens, limit = engine._prompt_tokens(prompt, max_tokens)
    llama = engine._llama
    engine._decoder.forget()
    llama.reset()
    stopper = _Stopper(cancel)
    started = time.perf_counter()
    first_token_at: float | None = None
    pieces: list[str] = []
    finish_reason = "stop"
    s = engine.settings
    stream = llama.create_completion(
        tokens, max_tokens=limit, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, min_p=s.min_p,
        seed=s.seed, repeat_penalty=1.0, stream=True,
        grammar=LlamaGrammar.from_string(grammar.gbnf, verbose=False) if grammar is not None else None,
        stopping_criteria=llama_cpp.StoppingCriteriaList([stopper]),
    )
    try:
        for chunk in stream:
            choice = chunk["choices"][0]
            if choice["text"]:
                first_token_at = first_token_at or time.perf_counter()
                pieces.append(choice["text"])
                if on_token is not None:
                    on_token(choice["text"])
            if choice.get("finish_reason"):
                finish_reason = choice["finish_reason"]
            if stopper.fired:
                break
    finally:
        stream.close()  # same thread that iterates it
        llama.reset()
        engine._decoder.forget()
    total_s = time.perf_counter() - started
    if stopper.fired:
        raise GenerationCancelled("已停止 / generation stopped")
    text = "".join(pieces)
    return GenerationResult(
        text=strip_thinking(text), prompt_tokens=len(tokens), completion_tokens=engine.count_tokens(text) if text else 0,
        ttft_s=(first_token_at or time.perf_counter()) - started, total_s=total_s, finish_reason=finish_reason,
        prompt_tokens_evaluated=len(tokens),
    )


def set_draft_tokens(engine: Engine, n: int) -> None:
    engine._decoder.max_draft = n
    engine.info = dataclasses.replace(engine.info, draft_tokens=n)


def forget_cache(engine: Engine) -> None:
    """Empty the KV cache and drop the prefix snapshots: a cold start without reloading."""
    engine._decoder.forget(snapshots=True)


def buffer_sizes(engine: Engine) -> dict[str, float]:
    """The buffers llama.cpp allocated at load, in MiB, by device and kind (from its load log)."""
    sizes: dict[str, float] = {}
    for device, kind, mib in _BUFFER.findall(engine.load_log):
        key = f"{device} {kind}"
        sizes[key] = round(sizes.get(key, 0.0) + float(mib), 1)
    return sizes
