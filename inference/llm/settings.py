"""Engine settings: one pydantic model, one field per knob, and where the model path comes from.

Defaults target production: Qwen3-14B GGUF fully offloaded to one RTX 4090 at 32K context.
The same settings run on CPU-only machines (llama.cpp then ignores the GPU layer count).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from inference.errors import ModelError
from inference.paths import config_dir

MODEL_PATH_ENV = "MEDBRIEF_MODEL"
CONFIG_FILE_NAME = "config.json"


class EngineSettings(BaseModel):
    model_path: Path | None = Field(
        None, description="GGUF file to load. None means the bundled demo model (not for clinical use)."
    )
    n_gpu_layers: int = Field(-1, description="Layers offloaded to the GPU; -1 offloads all, 0 runs on CPU.")
    flash_attn: bool = Field(True, description="Flash attention: less KV memory and faster long prompts on CUDA.")
    n_ctx: int = Field(32768, ge=512, description="Context window in tokens (prompt plus summary).")
    n_batch: int = Field(2048, ge=32, description="Prompt tokens handed to llama.cpp per call (logical batch).")
    n_ubatch: int | None = Field(
        None, ge=32, description="Prompt tokens computed at once (physical batch). None: 2048 on a GPU (prompts "
        "9% faster than 512 on an H200, for 0.9 GiB more compute buffer), 512 on a CPU (8% faster than 2048 there)."
    )
    n_threads: int | None = Field(None, ge=1, description="CPU threads; None lets llama.cpp choose.")
    max_tokens: int = Field(2048, ge=16, le=16384, description="Upper bound on generated tokens per request.")
    part_tokens: int | None = Field(
        None, ge=200, description="Record tokens summarized per call; a longer record is summarized in parts at "
        "its section headings. None: by model size (1,500 under 3B parameters, measured on the demo model; 8,000 "
        "otherwise)."
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 is greedy: the most faithful, repeatable draft.")
    top_k: int = Field(40, ge=0, description="With temperature > 0: draw among the k likeliest allowed tokens (0: all).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="With temperature > 0: nucleus cut within the top k.")
    min_p: float = Field(0.05, ge=0.0, lt=1.0, description="With temperature > 0: drop tokens under min_p × the best.")
    draft_tokens: int = Field(
        8, ge=0, le=32, description="Prompt-lookup drafts verified per step; 0 turns them off. The output is "
        "unchanged; on the sample record they made decoding 1.58x faster on an H200 and 1.38x on a 2-core CPU."
    )
    seed: int = Field(42, description="Sampling seed, recorded with every run.")
    use_mmap: bool = Field(True, description="Memory-map the GGUF instead of reading it into RAM.")
    lora_path: Path | None = Field(
        None, description="GGUF LoRA adapter applied over the model (a hospital's writing style); None: no adapter."
    )
    lora_scale: float = Field(1.0, ge=0.0, le=4.0, description="How strongly the LoRA adapter applies (0 turns it off).")
    backend: Literal["embedded", "server"] = Field(
        "embedded", description="embedded: llama.cpp in this process; server: an OpenAI-compatible model server."
    )
    server_url: str | None = Field(None, description="Server backend: e.g. https://llm.hospital.local:8000")
    server_model: str | None = Field(
        None, description="Server backend: the model the server must serve (refused otherwise); None: its first."
    )
    server_template: str = Field(
        "qwen3", description="Server backend: chat template the prompts are rendered with: qwen3, qwen2.5 or a "
        ".jinja file (the served model's own)."
    )
    server_constraint: Literal["grammar", "structured_outputs", "guided_grammar"] = Field(
        "grammar", description="Server backend: how the GBNF grammar is sent: grammar (llama.cpp's llama-server, "
        "llama-cpp-python), structured_outputs (vLLM 0.12 and later) or guided_grammar (vLLM before 0.12)."
    )
    server_timeout_s: float = Field(120.0, gt=0, le=3600, description="Server backend: seconds without an answer.")
    server_allow_http: bool = Field(
        False, description="Server backend: allow plain HTTP to another machine (HTTPS otherwise; loopback always)."
    )
    kv_cache_type: Literal["f16", "q8_0"] = Field(
        "f16", description="KV cache precision; q8_0 halves KV memory at 32K context but needs flash attention."
    )

    @model_validator(mode="after")
    def _server_backend_needs_a_url(self) -> "EngineSettings":
        if self.backend == "server" and not self.server_url:
            raise ValueError("backend 'server' needs server_url")
        if self.backend == "server" and self.lora_path is not None:
            raise ValueError("a LoRA adapter is loaded by the server (llama-server --lora, vLLM --lora-modules), "
                             "not by the server backend")
        return self

    @model_validator(mode="after")
    def _quantized_v_cache_needs_flash_attention(self) -> "EngineSettings":
        if self.kv_cache_type == "q8_0" and not self.flash_attn:
            raise ValueError("kv_cache_type q8_0 requires flash_attn=True (llama.cpp cannot quantize V without it)")
        return self


class AppConfig(BaseModel):
    """The per-user config file (``config.json`` in the config dir)."""

    engine: EngineSettings = Field(default_factory=EngineSettings)
    icd_table: str | None = Field(None, description="Name of the active ICD table; None is the bundled WHO table.")


def config_path() -> Path:
    return config_dir() / CONFIG_FILE_NAME


def load_config() -> AppConfig:
    path = config_path()
    if not path.exists():
        return AppConfig()
    try:
        return AppConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ModelError(f"配置文件中的设置无效 / invalid setting in the config file {path}: {where}: "
                         f"{first['msg']}") from exc
    except (OSError, ValueError, RecursionError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"配置文件无法读取 / config file unreadable: {path}: {first_line}") from exc


def save_config(config: AppConfig) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, path)


def resolve_model_path(cli_path: str | Path | None, config: AppConfig | None = None) -> Path | None:
    """CLI flag, then ``MEDBRIEF_MODEL``, then the config file, then the one model in the models folder;
    None means "use the demo model"."""
    from inference.llm.model_catalog import folder_model

    if cli_path:
        return Path(cli_path).expanduser()
    env_path = os.environ.get(MODEL_PATH_ENV)
    if env_path:
        return Path(env_path).expanduser()
    config = config if config is not None else load_config()
    return config.engine.model_path or folder_model()
