"""The inference engine: one loaded GGUF, streaming generation, cooperative cancel.

An ``Engine`` is not thread-safe (neither is ``Llama``): one thread owns it. Generation runs in
``decoder.Decoder``; cancel is a ``threading.Event`` checked before every step, so a stop takes effect
within one step's time and leaves the engine ready for the next request.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from inference.errors import GenerationCancelled, GenerationError, ModelError
from inference.llm.chat_template import ChatTemplate, strip_thinking
from inference.llm.decoder import Decoder, DecodeResult, PromptCallback, TokenCallback, common_prefix
from inference.llm.demo_model import DEMO_MODEL_LABEL, is_demo_model, require_demo_model
from inference.llm.gguf_header import GgufInfo, check_loadable, read_gguf_header
from inference.llm.gpu_memory import GpuDevice, MemoryEstimate, estimate, gpu_devices
from inference.llm.lora import check_adapter
from inference.llm.native import llama_cpp
from inference.llm.sampling import CompiledGrammar, DraftStats, GrammarMatcher, PickStats, SamplingParams, TokenPicker
from inference.llm.settings import EngineSettings

if TYPE_CHECKING:
    from llama_cpp._internals import LlamaModel

GPU_UBATCH, CPU_UBATCH = 2048, 512  # measured: bench/results/h200_synthetic_qwen3_14b.json and the README
_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")

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
    draft_tokens: int = 0
    n_params: int = 0  # parameters, as llama.cpp counts them: sizes the record part a model summarizes well
    warning: str = ""  # shown in the status bar: CPU-only build, or fewer layers on the GPU than asked
    lora: str = ""  # the adapter as history records it: file, scale, hash prefix ("" without one)
    server: str = ""  # server backend: its URL and the model /v1/models named
    fingerprint: str = ""  # server backend: a hash of the /v1/models answer (a GGUF's is read from the file)

    @property
    def adapter(self) -> str:
        """The LoRA as shown to a person: file and scale ("" without one); the record adds its hash."""
        return self.lora.split(" sha256:")[0]

    @property
    def label(self) -> str:
        demo = f" [{DEMO_MODEL_LABEL}]" if self.is_demo else ""
        adapter = f" + LoRA {self.adapter}" if self.lora else ""
        return f"{Path(self.model_path).name} ({self.quantization}){adapter}{demo}"

    @property
    def placement(self) -> str:
        if self.server:
            return f"服务器 {self.server.split()[0]}"
        if self.gpu_layers_offloaded > 0:
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
            "draft_tokens": self.draft_tokens,
            "n_params": self.n_params,
            "warning": self.warning,
            "lora": self.lora,
            "server": self.server,
        }


@dataclass
class Timings:
    """How long model calls took and how many tokens they read and wrote: one call's (``GenerationResult``)
    or a run's, with each of its calls listed (``SummaryResult.timings``)."""

    load_s: float = 0.0
    ttft_s: float = 0.0
    total_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_evaluated: int = 0  # the rest came from the KV cache or a prefix snapshot
    calls: list[dict[str, Any]] = field(default_factory=list)  # one per model call: summary parts, ICD rounds

    @property
    def tokens_per_s(self) -> float:
        decode_s = self.total_s - self.ttft_s
        return self.completion_tokens / decode_s if decode_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "load_s": round(self.load_s, 3),
            "ttft_s": round(self.ttft_s, 3),
            "total_s": round(self.total_s, 3),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens_per_s": round(self.tokens_per_s, 1),
            "prompt_tokens_evaluated": self.prompt_tokens_evaluated,
            "calls": self.calls,
        }


@dataclass
class GenerationResult(Timings):
    """One model call: its text and how it ended, with its timings and the grammar's and drafts' counts."""

    text: str = ""
    finish_reason: str = ""
    picks: PickStats = field(default_factory=PickStats)
    drafts: DraftStats = field(default_factory=DraftStats)

    @classmethod
    def from_decode(cls, result: DecodeResult) -> "GenerationResult":
        return cls(
            text=strip_thinking(result.text), prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens, ttft_s=result.ttft_s, total_s=result.total_s,
            finish_reason=result.finish_reason, prompt_tokens_evaluated=result.prompt_tokens_evaluated,
            picks=result.picks, drafts=result.drafts,
        )


class Grammar(Protocol):
    """An output grammar as an engine compiled it: llama.cpp's parsed sampler here, the text for a server."""

    gbnf: str


class ChatEngine(Protocol):
    """The seam the pipeline runs on: ``Engine`` (llama.cpp in this process) or ``server.ServerEngine``."""

    settings: EngineSettings
    info: EngineInfo
    template: ChatTemplate

    def count_tokens(self, text: str) -> int: ...

    def compile_grammar(self, gbnf: str) -> Grammar: ...

    def chat(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
             grammar: Grammar | None = None,
             max_tokens: int | None = None, fixed_messages: int = 0, on_token: TokenCallback | None = None,
             on_prompt: PromptCallback | None = None, cancel: threading.Event | None = None) -> GenerationResult: ...

    def close(self) -> None: ...


class Engine:
    def __init__(self, settings: EngineSettings) -> None:
        """Load the model. Raises ModelError with the reason, never a bare llama.cpp failure."""
        lib = llama_cpp()
        self.settings = settings
        path = settings.model_path if settings.model_path is not None else require_demo_model()
        self.gguf: GgufInfo = read_gguf_header(path)
        check_loadable(self.gguf, settings.n_ctx)
        ChatTemplate(self.gguf.chat_template)  # a template that does not parse is refused before loading
        adapter = check_adapter(settings.lora_path, self.gguf) if settings.lora_path is not None else None
        wants_gpu = settings.n_gpu_layers != 0 and lib.llama_supports_gpu_offload()
        devices = gpu_devices() if wants_gpu else []
        if settings.n_ubatch is None:
            settings = settings.model_copy(update={"n_ubatch": physical_batch(settings, on_gpu=bool(devices))})
            self.settings = settings
        if wants_gpu:
            _check_fits(self.gguf, settings, devices)
        started = time.perf_counter()
        try:
            with _llama_log() as log, _quiet_native_stderr():
                self._llama = lib.Llama(
                    model_path=str(path),
                    n_gpu_layers=settings.n_gpu_layers,
                    flash_attn=settings.flash_attn,
                    n_ctx=settings.n_ctx,
                    n_batch=settings.n_batch,
                    n_ubatch=settings.n_ubatch,
                    n_threads=settings.n_threads,
                    seed=settings.seed,
                    use_mmap=settings.use_mmap,
                    type_k=_GGML_TYPE_Q8_0 if settings.kv_cache_type == "q8_0" else _GGML_TYPE_F16,
                    type_v=_GGML_TYPE_Q8_0 if settings.kv_cache_type == "q8_0" else _GGML_TYPE_F16,
                    lora_path=str(adapter.path) if adapter else None,
                    lora_scale=settings.lora_scale,
                    verbose=False,
                )
        except Exception as exc:  # noqa: BLE001 - llama.cpp and llama-cpp-python fail in many types (jinja, assert)
            if adapter is not None and "LoRA" in str(exc):
                said = [line.strip() for line in log if "lora" in line.lower()]
                raise ModelError(f"LoRA 适配器无法加载 / LoRA adapter failed to load: {adapter.path.name}: "
                                 f"{said[-1] if said else exc}") from exc
            raise ModelError(
                f"模型加载失败（显存/内存不足或文件损坏）/ model failed to load (out of memory or corrupt file): "
                f"{path.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc
        load_s = time.perf_counter() - started
        total_layers = int(lib.llama_model_n_layer(self._llama.model)) + 1  # + output layer
        offloaded, total_layers = _placed_layers("".join(log), total_layers)
        warning = _placement_warning(settings.n_gpu_layers, offloaded, total_layers,
                                     bool(lib.llama_supports_gpu_offload()))
        self.info = EngineInfo(
            model_path=str(path),
            model_name=self.gguf.name,
            architecture=self.gguf.architecture,
            quantization=self.gguf.quantization,
            file_size=self.gguf.file_size,
            is_demo=is_demo_model(path),
            n_ctx=self._llama.n_ctx(),
            n_ctx_train=self.gguf.context_length,
            backend="GPU" if offloaded > 0 else "CPU",
            gpu_layers_offloaded=offloaded,
            total_layers=total_layers,
            flash_attn=settings.flash_attn,
            load_s=load_s,
            draft_tokens=settings.draft_tokens,
            n_params=int(lib.llama_model_n_params(self._llama.model)),
            warning=warning,
            lora=adapter.record(settings.lora_scale) if adapter else "",
        )
        vocab = self._llama._model
        self.template = ChatTemplate(
            self.gguf.chat_template,
            bos_token=_token_text(vocab, vocab.token_bos()),
            eos_token=_token_text(vocab, vocab.token_eos()),
        )
        self._n_vocab = self._llama.n_vocab()
        self.eos_token = int(self._llama.token_eos())
        self.load_log = "".join(log)  # what llama.cpp said while loading: placement, buffers (for IT and bench/)
        self._decoder = Decoder(lib, self._llama._ctx.ctx, self._llama._model.vocab, self._n_vocab,
                                settings.n_batch, settings.draft_tokens)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text, add_bos=False))

    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        return self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def compile_grammar(self, gbnf: str) -> CompiledGrammar:
        """Check a GBNF grammar with llama.cpp's own parser; an invalid one raises instead of crashing."""
        return CompiledGrammar(self._llama._model.vocab, gbnf)

    @property
    def sampling(self) -> SamplingParams:
        s = self.settings
        return SamplingParams(temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, min_p=s.min_p, seed=s.seed)

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        grammar: CompiledGrammar | None = None,
        max_tokens: int | None = None,
        fixed_messages: int = 0,
        on_token: TokenCallback | None = None,
        on_prompt: PromptCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Render with the model's template and generate. The first ``fixed_messages`` messages (with the
        tools) are the same for every record: their tokens are evaluated once per loaded model."""
        fixed = self.template.render(messages[:fixed_messages], tools=tools) if fixed_messages else None
        return self.generate(
            self.template.render(messages, tools=tools),
            grammar=grammar,
            max_tokens=max_tokens,
            fixed_prefix=fixed,
            on_token=on_token,
            on_prompt=on_prompt,
            cancel=cancel,
        )

    def generate(
        self,
        prompt: str,
        *,
        grammar: CompiledGrammar | None = None,
        max_tokens: int | None = None,
        fixed_prefix: str | None = None,
        on_token: TokenCallback | None = None,
        on_prompt: PromptCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        tokens, limit = self._prompt_tokens(prompt, max_tokens)
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("已停止 / generation stopped")
        keep = common_prefix(tokens, self.tokenize(fixed_prefix)) if fixed_prefix else 0
        picker = self._new_picker(grammar.matcher(self._n_vocab) if grammar is not None else None)
        try:
            result = self._decoder.generate(tokens, picker, limit=limit, keep_prefix=keep,
                                            draft=self.info.draft_tokens > 0, on_token=on_token, on_prompt=on_prompt,
                                            cancel=cancel)
        finally:
            if picker.grammar is not None:
                picker.grammar.close()
        return GenerationResult.from_decode(result)

    def _new_picker(self, grammar: GrammarMatcher | None) -> TokenPicker:
        """Each call's token picker (``bench/`` replays a recorded output through its own)."""
        return TokenPicker(self.sampling, grammar)

    def _prompt_tokens(self, prompt: str, max_tokens: int | None) -> tuple[list[int], int]:
        limit = min(max_tokens or self.settings.max_tokens, self.settings.max_tokens)
        tokens = self.tokenize(prompt)
        require_room(len(tokens), limit, self.info.n_ctx)
        return tokens, limit

    def close(self) -> None:
        decoder = getattr(self, "_decoder", None)
        if decoder is not None:
            decoder.close()
            self._decoder = None
        llama = getattr(self, "_llama", None)
        if llama is not None:
            llama.close()
            self._llama = None


def physical_batch(settings: EngineSettings, on_gpu: bool) -> int:
    """The configured n_ubatch, else what measured fastest where the model runs."""
    if settings.n_ubatch is not None:
        return settings.n_ubatch
    return GPU_UBATCH if on_gpu else CPU_UBATCH


def memory_estimate(gguf: GgufInfo, settings: EngineSettings, devices: list[GpuDevice]) -> MemoryEstimate:
    """What these settings need on the first GPU: the one estimate the engine, `model inspect` and the models
    list all state."""
    return estimate(gguf, n_ctx=settings.n_ctx, kv_cache_type=settings.kv_cache_type,
                    n_ubatch=physical_batch(settings, on_gpu=bool(devices)), flash_attn=settings.flash_attn,
                    n_gpu_layers=settings.n_gpu_layers, device=devices[0] if devices else None)


def _check_fits(gguf: GgufInfo, settings: EngineSettings, devices: list[GpuDevice]) -> None:
    """Refuse, before llama.cpp allocates anything, a model that cannot fit the free GPU memory."""
    memory = memory_estimate(gguf, settings, devices)
    if memory.fits is False:  # the same rule `medbrief model inspect` states
        raise ModelError(f"显存不足 / not enough GPU memory: {memory.verdict()}")


def _placed_layers(log: str, total_layers: int) -> tuple[int, int]:
    """What llama.cpp actually put on the GPU, from its load log ("offloaded 41/41 layers to GPU")."""
    found = _OFFLOADED.findall(log)
    if not found:
        return 0, total_layers
    offloaded, total = found[-1]
    return int(offloaded), int(total)


def _placement_warning(requested: int, offloaded: int, total: int, gpu_build: bool) -> str:
    if requested == 0:
        return ""
    if not gpu_build:
        return "此版本 llama.cpp 不支持 GPU，模型在 CPU 上运行（很慢）/ CPU-only llama.cpp build: running on the CPU"
    if offloaded == 0:
        return "未找到可用的 GPU，模型在 CPU 上运行（很慢）/ no usable GPU found: running on the CPU"
    wanted = total if requested < 0 else min(requested, total)
    if offloaded < wanted:
        return (f"只有 {offloaded}/{total} 层放到了 GPU 上（显存不足？），速度会明显下降 / only {offloaded} of "
                f"{total} layers on the GPU")
    return ""


def _token_text(vocab: LlamaModel, token: int) -> str:
    if token < 0:
        return ""
    return vocab.token_get_text(token) if hasattr(vocab, "token_get_text") else ""


@contextlib.contextmanager
def _llama_log():  # type: ignore[no-untyped-def]
    """Collect what llama.cpp logs while the block runs (it says where it placed the layers)."""
    lib = llama_cpp()
    lines: list[str] = []

    @lib.llama_log_callback
    def collect(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace"))
        if os.environ.get("MEDBRIEF_DEBUG"):
            lib._logger.llama_log_callback(level, text, _user_data)

    lib.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        lib.llama_log_set(lib._logger.llama_log_callback, ctypes.c_void_p(0))


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


def require_room(prompt_tokens: int, limit: int, n_ctx: int) -> None:
    """A prompt and its output bound must fit the context (a server's: one slot's) before anything is sent."""
    if prompt_tokens + limit > n_ctx:
        raise GenerationError(
            f"病历过长：提示 {prompt_tokens} 个 token，加上输出上限 {limit} 超过上下文 {n_ctx} / "
            "record too long for the context window; raise n_ctx or shorten the record"
        )
