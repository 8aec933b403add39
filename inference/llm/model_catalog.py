"""The GGUF files in the models folder: what each is, and whether it fits this machine's GPU at the chosen
settings (the same estimate the engine checks before loading). Headers only; nothing is loaded.

Settings lists these so a clinic without an RTX 4090 can pick a smaller model knowingly, and the model
path, when nothing is configured, is the one chat model IT put in the folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import ModelError
from inference.llm.chat_template import ChatTemplate
from inference.llm.demo_model import is_demo_model
from inference.llm.engine import memory_estimate
from inference.llm.gguf_header import GgufInfo, check_loadable, read_gguf_header
from inference.llm.gpu_memory import GpuDevice, MemoryEstimate, gib
from inference.llm.settings import MODEL_PATH_ENV, AppConfig, EngineSettings, load_config
from inference.paths import models_dir


@dataclass(frozen=True)
class CatalogEntry:
    path: Path
    size: int
    kind: str  # "model", "adapter" (a LoRA for a model of ``architecture``) or "unusable"
    architecture: str = ""
    quantization: str = ""
    name: str = ""
    demo: bool = False
    problem: str = ""  # why it is unusable
    memory: MemoryEstimate | None = None

    @property
    def fits(self) -> bool | None:
        """True or False against the GPU; None without a GPU to compare with, or for what is not a model."""
        return self.memory.fits if self.memory is not None else None

    @property
    def kind_label(self) -> str:
        """What the file is, in the list's words: the architecture of a model, LoRA, or 不可用."""
        return {"adapter": "LoRA", "unusable": "不可用"}.get(self.kind, self.architecture)

    @property
    def verdict(self) -> str:
        if self.kind == "unusable":
            return self.problem
        if self.kind == "adapter":
            return f"LoRA 适配器（{self.architecture}）"
        if self.memory is None:
            return ""
        if self.memory.device is None or self.memory.gpu_layers == 0:
            return f"CPU 运行，约需内存 {gib(self.size + self.memory.kv_cache)}"
        return ("可放入 GPU" if self.fits else "显存不足") + f"（约 {gib(self.memory.total)}，" \
            f"{self.memory.device.name} 空闲 {gib(self.memory.device.free)}）"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.path.name, "path": str(self.path), "size": self.size, "kind": self.kind,
                "architecture": self.architecture, "quantization": self.quantization, "name": self.name,
                "demo": self.demo, "fits": self.fits, "verdict": self.verdict,
                "memory": self.memory.as_dict() if self.memory is not None else None}


def scan(settings: EngineSettings, devices: list[GpuDevice], folder: Path | None = None) -> list[CatalogEntry]:
    """Every ``*.gguf`` in ``folder`` (default: the models folder), models first, then adapters, by name."""
    entries = []
    for path, info in _headers(folder):
        if isinstance(info, ModelError):
            entries.append(CatalogEntry(path=path, size=_size(path), kind="unusable", problem=info.message))
            continue
        described = dict(path=path, size=info.file_size, architecture=info.architecture, name=info.name,
                         quantization=info.quantization)
        if _is_adapter(info):
            entries.append(CatalogEntry(kind="adapter", **described))
            continue
        try:
            check_loadable(info, settings.n_ctx)
            ChatTemplate(info.chat_template)  # the engine refuses a template that does not render: so does the list
            memory = memory_estimate(info, settings, devices)
        except ModelError as exc:
            entries.append(CatalogEntry(kind="unusable", problem=exc.message, **described))
            continue
        entries.append(CatalogEntry(kind="model", demo=is_demo_model(path), memory=memory, **described))
    order = {"model": 0, "adapter": 1, "unusable": 2}
    return sorted(entries, key=lambda entry: (order[entry.kind], entry.path.name))


def folder_model(folder: Path | None = None) -> Path | None:
    """The model to use when none is configured: the one chat model (other than the demo) in the models
    folder. None when there is none; several are a choice for settings, not a guess."""
    # What the model is, not what these settings ask of it: the smallest context, no GPU to fit.
    found = [entry.path for entry in scan(EngineSettings(n_ctx=512), [], folder)
             if entry.kind == "model" and not entry.demo]
    if len(found) > 1:
        raise ModelError(f"模型文件夹中有 {len(found)} 个模型（{'、'.join(p.name for p in found)}），请在设置中选择 / "
                         f"several models in {folder or models_dir()}: choose one in settings or with --model")
    return found[0] if found else None


def _headers(folder: Path | None) -> Iterator[tuple[Path, GgufInfo | ModelError]]:
    folder = folder if folder is not None else models_dir()
    for path in sorted(folder.glob("*.gguf")) if folder.is_dir() else []:
        try:
            yield path, read_gguf_header(path)
        except ModelError as exc:
            yield path, exc


def _is_adapter(info: GgufInfo) -> bool:
    return info.metadata.get("general.type") == "adapter"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def resolve_model_path(cli_path: str | Path | None, config: AppConfig | None = None) -> Path | None:
    """CLI flag, then ``MEDBRIEF_MODEL``, then the config file, then the one model in the models folder;
    None means "use the demo model"."""
    if cli_path:
        return Path(cli_path).expanduser()
    env_path = os.environ.get(MODEL_PATH_ENV)
    if env_path:
        return Path(env_path).expanduser()
    config = config if config is not None else load_config()
    return config.engine.model_path or folder_model()
