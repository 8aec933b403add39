"""``medbrief summarize``: one record (or ``--batch DIR``) through the pipeline, printed, written and kept."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from inference.cli.engine_options import add_engine_options, engine_settings, max_pages
from inference.cli.output import StderrProgress, check_output_folder, findings_text, icd_text, write_output
from inference.errors import (
    DraftRejected,
    GenerationCancelled,
    GenerationError,
    IcdTableError,
    InputError,
    MedBriefError,
    ModelError,
    StorageError,
    UsageError,
)

if TYPE_CHECKING:
    from inference.llm.engine import EngineInfo
    from inference.llm.settings import EngineSettings
    from inference.pipeline import Report


def add_parser(commands: argparse._SubParsersAction, epilog: str) -> None:
    summarize = commands.add_parser(
        "summarize", help="summarize a record (text, .docx, PDF, scans, OFD, CDA, FHIR; several files: one patient)",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    summarize.add_argument("file", nargs="*", help="the record, told by its content: text (UTF-8, UTF-8 BOM, "
                           "GBK/GB18030), .docx, PDF (text layer, or OCR for scanned pages), an image of a page (PNG, "
                           "JPEG, TIFF, ...), OFD, CDA XML or FHIR JSON; several files or one folder are one patient's "
                           "record, a heading per file, in the order given (a folder's: by name)")
    summarize.add_argument("--max-pages", type=int, metavar="N", help="the page limit for PDFs, multi-page scans and "
                           "folders (default: max_record_pages in the config, 200)")
    summarize.add_argument("--batch", metavar="DIR", help="summarize every record file in DIR into --out-dir (one "
                           "JSON each; failures.jsonl; rerunning skips what is done)")
    summarize.add_argument("--out-dir", help="batch: where the JSON files go (default: DIR/medbrief-summaries)")
    summarize.add_argument("--workers", type=int, default=1, help="batch: records at once (server backend; the "
                           "embedded engine runs one at a time)")
    summarize.add_argument("--template", metavar="ID", help="write with this summary template (medbrief template "
                           "list; default: the ward's default, 病历摘要)")
    summarize.add_argument("--json", action="store_true", help="print one JSON object instead of EMR text")
    summarize.add_argument("--out", help="write the output to this file instead of stdout")
    summarize.add_argument("--quiet", action="store_true", help="no progress on stderr")
    summarize.add_argument("--table", help="ICD table name or .sqlite path (default: the active table)")
    summarize.add_argument("--no-icd", action="store_true", help="skip ICD coding")
    summarize.add_argument("--save", action="store_true", help="keep this run in the local history database")
    summarize.add_argument("--fail-on-findings", action="store_true",
                           help="exit 1 when validation finds an error-level problem")
    add_engine_options(summarize)
    summarize.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from inference.templates.catalog import TemplateCatalog

    template = TemplateCatalog().get(args.template)  # an unknown or broken template fails before the model loads
    if args.batch:
        from inference.cli.batch import run_batch

        return run_batch(args, engine_settings(args), template)
    if not args.file:
        raise UsageError("需要病历文件或 --batch 文件夹 / summarize needs a FILE or --batch DIR")
    # The model and the pipeline load only once a record is to be summarized (start-up time of the other commands).
    from inference.documents import ReadOptions, load_documents
    from inference.icd.table import open_table
    from inference.llm.backends import open_engine
    from inference.pipeline import run_pipeline
    from inference.progress import RunContext
    from inference.summary.summarizer import retry_part_tokens

    progress = StderrProgress(args.quiet)
    check_output_folder(args.out)  # fail before minutes of generation
    cancel = threading.Event()
    with ctrl_c_sets(cancel):
        document = load_documents(args.file, ReadOptions(
            max_pages=max_pages(args), cancelled=cancel.is_set,
            on_page=lambda page, pages, phase: progress.step(f"读取第 {page}/{pages} 页 · {phase}")))
    settings = engine_settings(args)
    pages = document.provenance.pages
    progress.step(f"读取 {document.file_name}（{document.encoding}，{len(document.text)} 字"
                  + (f"，{pages} 页，其中文字识别 {document.provenance.ocr_pages} 页" if pages else "") + "）")
    progress.step("加载模型 / loading model …")
    with ctrl_c_sets(cancel):
        engine = open_engine(settings)
        try:
            stop_if_cancelled(cancel)
            progress.step(f"模型 {engine.info.label}，运行于 {engine.info.placement}，加载 {engine.info.load_s:.1f}s")
            if engine.info.warning:
                progress.step(f"警告 / warning: {engine.info.warning}")
            table = None if args.no_icd else open_table(args.table)
            stop_if_cancelled(cancel)
            report = run_pipeline(document, engine, RunContext(on_progress=progress.progress, cancel=cancel),
                                table=table, template=template)
        except (GenerationError, ModelError, IcdTableError) as exc:
            if args.save:
                save_failure(exc, engine.info.model_path)
            raise
        finally:
            engine.close()
    progress.step(f"完成，用时 {report.elapsed_s:.1f} 秒 / done in {report.elapsed_s:.1f} s")
    # The draft goes out before the history is touched: a history that cannot be written never costs the
    # minutes of generation. Every problem is reported; the exit code is the last (the most serious) one's.
    problems: list[MedBriefError] = []
    try:
        write_summary(report, args)
    except InputError as exc:
        problems.append(exc)
    if args.save:
        problems += save_run(report, settings, engine.info, progress, written=not problems)
    if report.validation is not None and report.rejected:
        problems.append(DraftRejected(
            f"未通过核对：摘要与原文不符（{'；'.join(report.validation.rejection_reasons)}）。草稿不可使用；可用 "
            f"--part-tokens {retry_part_tokens(report.result.part_tokens)} 分段重新生成 / "
            "draft rejected: it does not come from the record"))
    for problem in problems[:-1]:
        print(f"medbrief: {problem.message}", file=sys.stderr)
    if problems:
        raise problems[-1]
    return 1 if args.fail_on_findings and report.has_errors else 0


@contextmanager
def ctrl_c_sets(cancel: threading.Event) -> Iterator[None]:
    """Ctrl+C sets ``cancel`` instead of raising: an exception raised while llama.cpp loads lands in its log
    callback, where ctypes swallows it. A second Ctrl+C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("medbrief: 正在停止… / stopping (Ctrl+C again to quit at once)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_if_cancelled(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise GenerationCancelled("已取消 / cancelled")


def write_summary(report: Report, args: argparse.Namespace) -> None:
    if args.json:
        write_output(json.dumps(report.as_json(), ensure_ascii=False, indent=2), args.out)
    elif not report.rejected:  # a rejected draft is not a summary of this record: nothing to paste
        validation = report.validation
        write_output(report.emr_text() + icd_text(report.icd)
                     + findings_text(validation.findings if validation else [],
                                     validation.unchecked if validation else 0), args.out)


def save_failure(exc: MedBriefError, model_path: str) -> None:
    """Count a run that ended without a draft in the history's statistics (best effort: the error is reported
    either way)."""
    from inference.history.store import HistoryStore

    try:
        store = HistoryStore.open()
        try:
            store.log_failure(type(exc).__name__, exc.exit_code, Path(model_path).name)
        finally:
            store.close()
    except (StorageError, OSError):
        pass


def save_run(report: Report, settings: EngineSettings, info: EngineInfo, progress: StderrProgress,
             written: bool) -> list[MedBriefError]:
    """Keep the run in the history; the problems to report (a failed save, a history found corrupt)."""
    from inference.history.store import HistoryStore
    from inference.llm.gguf_header import model_fingerprint

    kept = ("摘要已输出" if written else "摘要未能输出") if not report.rejected else "草稿未通过核对"
    try:
        store = HistoryStore.open()
        try:
            recorded = store.record_run(report.run_record(), settings.model_dump(mode="json"),
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
