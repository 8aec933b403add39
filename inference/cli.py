"""The ``medbrief`` command line. Every expected failure is one line on stderr and a documented exit code."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inference import __version__
from inference.errors import EXIT_CODES, InputError, MedBriefError

Handler = Callable[[argparse.Namespace], int]


def _exit_code_epilog() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="GGUF model file (else $MEDBRIEF_MODEL, the config file, the demo model)")
    parser.add_argument("--n-ctx", type=int, help="context window in tokens (default 32768)")
    parser.add_argument("--gpu-layers", type=int, help="layers offloaded to the GPU (-1 all, 0 CPU only)")
    parser.add_argument("--threads", type=int, help="CPU threads")
    parser.add_argument("--max-tokens", type=int, help="upper bound on generated tokens")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medbrief",
        description="MedBrief 病历摘要助手: offline structured summaries of Chinese medical records.",
        epilog=_exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"medbrief {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    summarize = commands.add_parser(
        "summarize", help="summarize a record (.txt UTF-8/GBK, .docx)", epilog=_exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    summarize.add_argument("file", help="the record: .txt (UTF-8, UTF-8 BOM, GBK/GB18030) or .docx")
    summarize.add_argument("--json", action="store_true", help="print one JSON object instead of EMR text")
    summarize.add_argument("--out", help="write the output to this file instead of stdout")
    summarize.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _add_engine_options(summarize)
    summarize.set_defaults(handler=_cmd_summarize)
    return parser


def _engine_settings(args: argparse.Namespace) -> Any:
    from inference.settings import EngineSettings, load_config, resolve_model_path

    config = load_config()
    overrides: dict[str, Any] = {"model_path": resolve_model_path(args.model, config)}
    for option, field_name in (("n_ctx", "n_ctx"), ("gpu_layers", "n_gpu_layers"), ("threads", "n_threads"),
                               ("max_tokens", "max_tokens")):
        value = getattr(args, option, None)
        if value is not None:
            overrides[field_name] = value
    try:
        return EngineSettings.model_validate({**config.engine.model_dump(), **overrides})
    except ValueError as exc:
        raise InputError(f"参数无效 / invalid engine option: {str(exc).splitlines()[-1].strip()}") from exc


class _StderrProgress:
    """Progress for long work on stderr; throttled so a terminal is not flooded per token."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tokens = 0

    def step(self, message: str) -> None:
        if not self.quiet:
            print(f"[medbrief] {message}", file=sys.stderr, flush=True)

    def token(self, _piece: str) -> None:
        self.tokens += 1
        if not self.quiet and self.tokens % 50 == 0:
            print(f"[medbrief] … {self.tokens} tokens", file=sys.stderr, flush=True)


def _cmd_summarize(args: argparse.Namespace) -> int:
    from inference.documents import load_document
    from inference.engine import Engine
    from inference.pipeline import run_pipeline

    progress = _StderrProgress(args.quiet)
    document = load_document(args.file)
    settings = _engine_settings(args)
    progress.step(f"读取 {document.file_name}（{document.encoding}，{len(document.text)} 字）")
    progress.step("加载模型 / loading model …")
    engine = Engine(settings)
    progress.step(f"模型 {engine.info.label}，运行于 {engine.info.placement}，加载 {engine.info.load_s:.1f}s")
    try:
        report = run_pipeline(
            document, engine, on_progress=progress.step, on_token=progress.token, cancel=threading.Event()
        )
    finally:
        engine.close()
    output = json.dumps(report.as_json(), ensure_ascii=False, indent=2) if args.json else report.emr_text()
    _write_output(output, args.out)
    return report.exit_code()


def _write_output(text: str, out: str | None) -> None:
    if out:
        try:
            Path(out).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"无法写入输出文件 / cannot write {out}: {exc.strerror}") from exc
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except MedBriefError as exc:
        print(f"medbrief: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("medbrief: 已取消 / cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
