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

from inference import limits
from inference.errors import ModelError
from inference.paths import config_dir

MODEL_PATH_ENV = "MEDBRIEF_MODEL"
CONFIG_FILE_NAME = "config.json"


class ModelSettings(BaseModel):
    """Which GGUF, where it runs, how much it holds."""

    model_path: Path | None = Field(
        None, title="GGUF 模型文件", description="留空：模型文件夹中唯一的模型，否则内置演示模型（非临床用途） / GGUF file to "
        "load. None means the one model in the models folder, else the bundled demo model (not for clinical use).",
        json_schema_extra={"unset": "自动选择"},
    )
    lora_path: Path | None = Field(
        None, title="LoRA 适配器", description="医院自己的写作风格，加在模型之上；留空：不使用 / GGUF LoRA adapter "
        "applied over the model (a hospital's writing style); None: no adapter.", json_schema_extra={"unset": "不使用"},
    )
    lora_scale: float = Field(1.0, ge=0.0, le=4.0, title="LoRA 强度", description="0 = 不起作用；1 = 按训练时的强度 / "
                              "How strongly the LoRA adapter applies (0 turns it off).")
    n_gpu_layers: int = Field(-1, ge=-1, title="GPU 层数", description="放到 GPU 上的层数：-1 = 全部层，0 = 只用 CPU / "
                              "Layers offloaded to the GPU; -1 offloads all, 0 runs on CPU.",
                              json_schema_extra={"special": "全部层（-1）"})
    flash_attn: bool = Field(True, title="Flash Attention", description="节省显存、加快长病历；q8_0 KV 缓存必须开启 / "
                             "Flash attention: less KV memory and faster long prompts on CUDA.")
    n_ctx: int = Field(32768, ge=512, le=262144, title="上下文长度（token）", description="提示词加摘要的上限 / Context "
                       "window in tokens (prompt plus summary).")
    kv_cache_type: Literal["f16", "q8_0"] = Field(
        "f16", title="KV 缓存精度", description="q8_0：32K 上下文时 KV 显存减半，须开启 Flash Attention / KV cache precision; "
        "q8_0 halves KV memory at 32K context but needs flash attention.",
    )
    n_batch: int = Field(2048, ge=32, le=65536, title="提示批大小（逻辑）", description="每次交给 llama.cpp 的提示 token 数 / "
                         "Prompt tokens handed to llama.cpp per call (logical batch).")
    n_ubatch: int | None = Field(
        None, ge=32, le=65536, title="提示批大小（物理）", description="一次计算的提示 token 数；自动：GPU 2048，CPU 512 / "
        "Prompt tokens computed at once (physical batch). None: 2048 on a GPU (prompts 9% faster than 512 on an H200, "
        "for 0.9 GiB more compute buffer), 512 on a CPU (8% faster than 2048 there).", json_schema_extra={"unset": "自动"},
    )
    n_threads: int | None = Field(None, ge=1, le=1024, title="CPU 线程数", description="自动：由 llama.cpp 决定 / CPU "
                                  "threads; None lets llama.cpp choose.", json_schema_extra={"unset": "自动"})
    use_mmap: bool = Field(True, title="内存映射模型文件", description="映射而不是读入内存 / Memory-map the GGUF instead of "
                           "reading it into RAM.")

    @model_validator(mode="after")
    def _quantized_v_cache_needs_flash_attention(self) -> "ModelSettings":
        if self.kv_cache_type == "q8_0" and not self.flash_attn:
            raise ValueError("kv_cache_type q8_0 requires flash_attn=True (llama.cpp cannot quantize V without it)")
        return self


class GenerationSettings(BaseModel):
    """How much a call writes, how a record is cut, how tokens are chosen."""

    max_tokens: int = Field(2048, ge=16, le=16384, title="每次输出上限（token）", description="一次调用最多生成的 token 数 / "
                            "Upper bound on generated tokens per request.")
    part_tokens: int | None = Field(
        None, ge=200, le=200_000, title="分段长度（token）", description="每次调用摘要的病历 token 数，长病历按标题分段；自动：按"
        "模型大小（3B 以下 1500，其余 8000） / Record tokens summarized per call; a longer record is summarized in parts "
        "at its section headings. None: by model size (1,500 under 3B parameters, measured on the demo model; 8,000 "
        "otherwise).", json_schema_extra={"unset": "按模型大小"},
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, title="温度", description="0 = 贪心解码：最忠实、可重复 / 0 is greedy: "
                               "the most faithful, repeatable draft.")
    top_k: int = Field(40, ge=0, le=100_000, title="top-k", description="温度 > 0 时：在最可能的 k 个中抽取（0：全部） / "
                       "With temperature > 0: draw among the k likeliest allowed tokens (0: all).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, title="top-p", description="温度 > 0 时：核采样阈值 / With temperature > 0: "
                         "nucleus cut within the top k.")
    min_p: float = Field(0.05, ge=0.0, lt=1.0, title="min-p", description="温度 > 0 时：去掉低于最佳 min_p 倍的 token / With "
                         "temperature > 0: drop tokens under min_p × the best.")
    draft_tokens: int = Field(
        8, ge=0, le=32, title="提示查找草稿 token 数", description="每步校验的草稿 token 数，0 = 关闭；输出不变 / Prompt-lookup "
        "drafts verified per step; 0 turns them off. The output is unchanged; on the sample record they made decoding "
        "1.58x faster on an H200 and 1.38x on a 2-core CPU.",
    )
    seed: int = Field(42, ge=0, le=2**31 - 1, title="随机种子", description="随每次运行记录 / Sampling seed, recorded with "
                      "every run.")


class ServerSettings(BaseModel):
    """The model on a department's OpenAI-compatible server instead of this PC."""

    backend: Literal["embedded", "server"] = Field(
        "embedded", title="运行方式", description="本机模型，或科室的 OpenAI 兼容模型服务器 / embedded: llama.cpp in this "
        "process; server: an OpenAI-compatible model server.",
        json_schema_extra={"choices": {"embedded": "本机模型（内嵌）", "server": "科室模型服务器（OpenAI 兼容）"}},
    )
    server_url: str | None = Field(None, title="服务器地址", description="如 https://llm.hospital.local:8000（明文 http 仅限"
                                   "本机） / Server backend: e.g. https://llm.hospital.local:8000",
                                   json_schema_extra={"unset": "https://llm.hospital.local:8000"})
    server_model: str | None = Field(
        None, title="服务器模型", description="服务器必须提供的模型，不符即拒绝；留空：服务器的第一个 / Server backend: the model "
        "the server must serve (refused otherwise); None: its first.", json_schema_extra={"unset": "服务器提供的模型"},
    )
    server_template: str = Field(
        "qwen3", title="对话模板", description="提示词用的对话模板：qwen3、qwen2.5 或 .jinja 文件 / Server backend: chat "
        "template the prompts are rendered with: qwen3, qwen2.5 or a .jinja file (the served model's own).",
    )
    server_constraint: Literal["grammar", "structured_outputs", "guided_grammar"] = Field(
        "grammar", title="约束字段", description="语法如何发给服务器 / Server backend: how the GBNF grammar is sent: grammar "
        "(llama.cpp's llama-server, llama-cpp-python), structured_outputs (vLLM 0.12 and later) or guided_grammar "
        "(vLLM before 0.12).",
        json_schema_extra={"choices": {"grammar": "grammar（llama.cpp）", "structured_outputs": "structured_outputs（vLLM ≥ 0.12）",
                                       "guided_grammar": "guided_grammar（vLLM < 0.12）"}},
    )
    server_timeout_s: float = Field(120.0, gt=0, le=3600, title="服务器超时（秒）", description="多少秒无响应即报错 / Server "
                                    "backend: seconds without an answer.")
    server_ca_bundle: Path | None = Field(
        None, title="CA 证书", description="医院自己的 CA 证书（PEM 文件）；留空：系统信任的证书 / Server backend: the "
        "CA bundle (PEM) the server's certificate must chain to, e.g. the hospital's own CA; None: the system's.",
        json_schema_extra={"unset": "系统证书", "file_filter": "CA 证书 (*.pem *.crt *.cer)"},
    )
    server_allow_http: bool = Field(
        False, title="允许明文 HTTP 连接其他主机", description="默认只用 HTTPS（本机除外） / Server backend: allow plain HTTP to "
        "another machine (HTTPS otherwise; loopback always).",
    )


class EngineSettings(ServerSettings, GenerationSettings, ModelSettings):
    """Every knob, one field each, in three groups (as llama-cpp-python splits ModelSettings and ServerSettings):
    the CLI's flags and the settings dialog are built from the fields, their constraints and descriptions."""

    @model_validator(mode="after")
    def _server_backend_needs_a_url(self) -> "EngineSettings":
        if self.backend == "server" and not self.server_url:
            raise ValueError("backend 'server' needs server_url")
        if self.backend == "server" and self.lora_path is not None:
            raise ValueError("a LoRA adapter is loaded by the server (llama-server --lora, vLLM --lora-modules), "
                             "not by the server backend")
        return self


# The settings dialog's tabs, in order.
SETTINGS_GROUPS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("模型与设备", ModelSettings), ("生成", GenerationSettings), ("科室模型服务器", ServerSettings))


class AppConfig(BaseModel):
    """The per-user config file (``config.json`` in the config dir)."""

    engine: EngineSettings = Field(default_factory=EngineSettings)
    icd_table: str | None = Field(None, description="Name of the active ICD table; None is the bundled WHO table.")
    max_record_pages: int = Field(limits.RECORD_PAGES, ge=1, le=limits.RECORD_PAGES_CEILING,
                                  description="页数上限：一份 PDF、多页扫描件或一个患者文件夹最多读取的页数 / the most pages read "
                                              "from one PDF, multi-page scan or patient folder")


def config_path() -> Path:
    return config_dir() / CONFIG_FILE_NAME


def load_config() -> AppConfig:
    """The config file (absent: the defaults); a copy saved by Notepad, with a BOM, reads the same."""
    path = config_path()
    if not path.exists():
        return AppConfig()
    try:
        if path.stat().st_size > limits.CONFIG_FILE_BYTES:
            raise ValueError(f"larger than {limits.CONFIG_FILE_BYTES // 1024} KB")
        return AppConfig.model_validate(json.loads(path.read_text(encoding="utf-8-sig")))
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
