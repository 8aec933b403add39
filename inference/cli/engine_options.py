"""The engine's flags, one per ``EngineSettings`` field (as llama-cpp-python's server builds its flags), and the
settings a command runs with: the config file, overridden by the flags, validated by the settings model."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

from pydantic import ValidationError

from inference import limits
from inference.errors import UsageError
from inference.llm.model_catalog import resolve_model_path
from inference.llm.settings import EngineSettings, load_config

# Shorter spellings kept from earlier releases; every other flag is the field's name.
_ENGINE_FLAG_ALIASES = {"model_path": ("--model",), "n_gpu_layers": ("--gpu-layers",), "n_threads": ("--threads",),
                        "lora_path": ("--lora",)}


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """One flag per field, typed and described by the field itself, so a new knob is on the command line the
    day it is added."""
    for name, field in EngineSettings.model_fields.items():
        flags = [*_ENGINE_FLAG_ALIASES.get(name, ()), f"--{name.replace('_', '-')}"]
        choices = [a for a in typing.get_args(field.annotation) if a is not type(None)] or [field.annotation]
        kind = choices[0]
        default = "the demo model" if name == "model_path" else field.default
        help_text = f"{field.description} (default: {default})".replace("%", "%%")
        if kind is bool:
            parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        elif typing.get_origin(field.annotation) is typing.Literal:
            parser.add_argument(*flags, dest=name, choices=list(choices), help=help_text)
        else:
            parser.add_argument(*flags, dest=name, type=str if kind is Path else kind, help=help_text)


def engine_settings(args: argparse.Namespace) -> EngineSettings:
    """The config file's engine settings with the flags given on top; a bad value is a usage error."""
    config = load_config()
    overrides: dict[str, object] = {name: getattr(args, name) for name in EngineSettings.model_fields
                                    if getattr(args, name, None) is not None}
    overrides["model_path"] = resolve_model_path(getattr(args, "model_path", None) or getattr(args, "model", None),
                                                 config)
    try:
        return EngineSettings.model_validate({**config.engine.model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise UsageError(f"参数无效 / invalid engine option {where}: "
                         f"{first['msg'].removeprefix('Value error, ')}") from exc


def self_test_settings(argv: list[str], prog: str = "medbrief --self-test") -> EngineSettings | None:
    """The engine a self-test runs (None with ``--no-model``): the configured one unless the flags say otherwise
    (--model, --lora, --backend …), validated as ``summarize`` validates it. Both programs' self-tests parse here."""
    parser = argparse.ArgumentParser(prog=prog, description="检查本机安装：编码表、学习数据、模型、摘要、核对、编码、"
                                                            "历史记录。全部通过时退出码 0，否则 9。")
    parser.add_argument("--no-model", action="store_true", help="check everything but the model (seconds)")
    add_engine_options(parser)
    args = parser.parse_args(argv)
    return None if args.no_model else engine_settings(args)


def max_pages(args: argparse.Namespace) -> int:
    """--max-pages, or the config's page limit (max_record_pages)."""
    pages = args.max_pages if args.max_pages is not None else load_config().max_record_pages
    if not 1 <= pages <= limits.RECORD_PAGES_CEILING:
        raise UsageError(f"--max-pages 须在 1 到 {limits.RECORD_PAGES_CEILING} 之间 / --max-pages must be "
                         f"1..{limits.RECORD_PAGES_CEILING}")
    return pages
