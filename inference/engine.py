"""The inference engine: one loaded GGUF, streaming generation, cooperative cancel.

An ``Engine`` is not thread-safe (neither is ``Llama``): one thread owns it. Cancel is a
``threading.Event`` checked by llama.cpp's stopping criteria after every token, so a stop takes
effect within one token's time and leaves the engine ready for the next request.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.chat_template import ChatTemplate, strip_thinking
from inference.demo_model import DEMO_MODEL_LABEL, is_demo_model, require_demo_model
from inference.errors import GenerationCancelled, GenerationError, ModelError
from inference.gguf_header import GgufInfo, check_loadable, read_gguf_header
from inference.settings import EngineSettings

TokenCallback = Callable[[str], None]

_GGML_TYPE_F16 = 1
_GGML_TYPE_Q8_0 = 8


@dataclass(frozen=True)
class EngineInfo:
    """What the engine actually runs: shown in the status bar and recorded with every output."""

    model_path: str
    model_name: str
    architecture: str
    quantization: str
    file_size: int
    is_demo: bool
    n_ctx: int
    n_ctx_train: int | None
    backend: str  # "GPU" or "CPU"
    gpu_layers_offloaded: int
    total_layers: int
    flash_attn: bool
    load_s: float

    @property
    def label(self) -> str:
        demo = f" [{DEMO_MODEL_LABEL}]" if self.is_demo else ""
        return f"{Path(self.model_path).name} ({self.quantization}){demo}"

    @property
    def placement(self) -> str:
        if self.backend == "GPU":
            return f"GPU {self.gpu_layers_offloaded}/{self.total_layers} 层"
        return "CPU"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": Path(self.model_path).name,
            "path": self.model_path,
            "name": self.model_name,
            "architecture": self.architecture,
            "quantization": self.quantization,
            "demo": self.is_demo,
            "label": DEMO_MODEL_LABEL if self.is_demo else "",
            "backend": self.backend,
            "gpu_layers_offloaded": self.gpu_layers_offloaded,
            "total_layers": self.total_layers,
            "n_ctx": self.n_ctx,
            "flash_attn": self.flash_attn,
        }


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    total_s: float
    finish_reason: str

    @property
    def tokens_per_s(self) -> float:
        decode_s = self.total_s - self.ttft_s
        return self.completion_tokens / decode_s if decode_s > 0 else 0.0


@dataclass
class _Stopper:
    cancel: threading.Event | None
    fired: bool = field(default=False)

    def __call__(self, _tokens: Any, _logits: Any) -> bool:
        if self.cancel is not None and self.cancel.is_set():
            self.fired = True
        return self.fired


class Engine:
    def __init__(self, settings: EngineSettings) -> None:
        """Load the model. Raises ModelError with the reason, never a bare llama.cpp failure."""
        import llama_cpp  # deferred: importing inference must not need the native library

        self.settings = settings
        path = settings.model_path if settings.model_path is not None else require_demo_model()
        self.gguf: GgufInfo = read_gguf_header(path)
        check_loadable(self.gguf, settings.n_ctx)
        started = time.perf_counter()
        try:
            with _quiet_native_stderr():
                self._llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_gpu_layers=settings.n_gpu_layers,
                    flash_attn=settings.flash_attn,
                    n_ctx=settings.n_ctx,
                    n_batch=settings.n_batch,
                    n_threads=settings.n_threads,
                    seed=settings.seed,
                    use_mmap=settings.use_mmap,
                    type_k=_GGML_TYPE_Q8_0 if settings.kv_cache_type == "q8_0" else _GGML_TYPE_F16,
                    type_v=_GGML_TYPE_Q8_0 if settings.kv_cache_type == "q8_0" else _GGML_TYPE_F16,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"模型加载失败（显存/内存不足或文件损坏）/ model failed to load (out of memory or corrupt file): "
                f"{path.name}: {exc}"
            ) from exc
        load_s = time.perf_counter() - started
        total_layers = int(llama_cpp.llama_model_n_layer(self._llama.model)) + 1  # + output layer
        gpu = bool(llama_cpp.llama_supports_gpu_offload()) and settings.n_gpu_layers != 0
        offloaded = 0
        if gpu:
            offloaded = total_layers if settings.n_gpu_layers < 0 else min(settings.n_gpu_layers, total_layers)
        self.info = EngineInfo(
            model_path=str(path),
            model_name=self.gguf.name,
            architecture=self.gguf.architecture,
            quantization=self.gguf.quantization,
            file_size=self.gguf.file_size,
            is_demo=is_demo_model(path),
            n_ctx=self._llama.n_ctx(),
            n_ctx_train=self.gguf.context_length,
            backend="GPU" if gpu else "CPU",
            gpu_layers_offloaded=offloaded,
            total_layers=total_layers,
            flash_attn=settings.flash_attn,
            load_s=load_s,
        )
        vocab = self._llama._model
        self.template = ChatTemplate(
            self.gguf.chat_template,
            bos_token=_token_text(vocab, vocab.token_bos()),
            eos_token=_token_text(vocab, vocab.token_eos()),
        )

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def compile_grammar(self, gbnf: str) -> Any:
        """Check a GBNF grammar with llama.cpp's own parser; an invalid one raises instead of crashing."""
        import llama_cpp
        from llama_cpp.llama_grammar import LlamaGrammar

        sampler = llama_cpp.llama_sampler_init_grammar(
            self._llama._model.vocab, gbnf.encode("utf-8"), b"root"
        )
        if not sampler:
            raise GenerationError("约束语法无效 / the output grammar failed to compile in llama.cpp")
        llama_cpp.llama_sampler_free(sampler)
        return LlamaGrammar.from_string(gbnf, verbose=False)

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        grammar: Any = None,
        max_tokens: int | None = None,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        return self.generate(
            self.template.render(messages, tools=tools),
            grammar=grammar,
            max_tokens=max_tokens,
            on_token=on_token,
            cancel=cancel,
        )

    def generate(
        self,
        prompt: str,
        *,
        grammar: Any = None,
        max_tokens: int | None = None,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        import llama_cpp

        limit = min(max_tokens or self.settings.max_tokens, self.settings.max_tokens)
        tokens = self._llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        prompt_tokens = len(tokens)
        if prompt_tokens + limit > self.info.n_ctx:
            raise GenerationError(
                f"病历过长：提示 {prompt_tokens} 个 token，加上输出上限 {limit} 超过上下文 {self.info.n_ctx} / "
                "record too long for the context window; raise n_ctx or shorten the record"
            )
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("已停止 / generation stopped")
        stopper = _Stopper(cancel)
        started = time.perf_counter()
        first_token_at: float | None = None
        pieces: list[str] = []
        finish_reason = "stop"
        stream = self._llama.create_completion(
            tokens,
            max_tokens=limit,
            temperature=self.settings.temperature,
            seed=self.settings.seed,
            repeat_penalty=1.0,
            stream=True,
            grammar=grammar,
            stopping_criteria=llama_cpp.StoppingCriteriaList([stopper]),
        )
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                piece = choice["text"]
                if piece:
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                    pieces.append(piece)
                    if on_token is not None:
                        on_token(piece)
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
                if stopper.fired:
                    break
        finally:
            stream.close()  # same thread that iterates it
        total_s = time.perf_counter() - started
        if stopper.fired:
            raise GenerationCancelled("已停止 / generation stopped")
        text = "".join(pieces)
        completion_tokens = self.count_tokens(text) if text else 0
        return GenerationResult(
            text=strip_thinking(text),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            ttft_s=(first_token_at or time.perf_counter()) - started,
            total_s=total_s,
            finish_reason=finish_reason,
        )

    def close(self) -> None:
        llama = getattr(self, "_llama", None)
        if llama is not None:
            llama.close()
            self._llama = None


def _token_text(vocab: Any, token: int) -> str:
    if token < 0:
        return ""
    return vocab.token_get_text(token) if hasattr(vocab, "token_get_text") else ""


@contextlib.contextmanager
def _quiet_native_stderr():  # type: ignore[no-untyped-def]
    """llama.cpp prints load errors to fd 2; keep them off a doctor's terminal unless debugging."""
    if os.environ.get("MEDBRIEF_DEBUG"):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
