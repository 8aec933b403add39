"""``medbrief summarize --batch DIR``: a backlog or a research export, one JSON per record.

Each record's summary is written as one JSON file in the output folder when it is done (atomically: a file
there is whole, and a failed one leaves nothing); each record gets its own name (``x.json``, or ``x.txt.json``
and ``x.docx.json`` when two records share a stem), the same on every run. Every failure — an unreadable file,
a rejected draft, an error nobody foresaw — is one line of ``failures.jsonl``, written even when the batch is
stopped; a rerun skips the records that have their JSON and tries the failed ones again. Against a server the
``--workers`` records run at once; the embedded engine holds one model and runs them one after another.
Ctrl+C stops after the records in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from inference import limits
from inference.cli.engine_options import max_pages
from inference.crash_log import internal_error
from inference.errors import GenerationCancelled, InputError, MedBriefError, UsageError
from inference.paths import write_private

if TYPE_CHECKING:
    from inference.icd.table import IcdTable
    from inference.llm.engine import ChatEngine
    from inference.llm.settings import EngineSettings
    from inference.templates.spec import SummaryTemplate

BATCH_FAILED = 10
FAILURES_FILE = "failures.jsonl"


def output_names(records: list[Path]) -> dict[Path, str]:
    """Each record's JSON file name: its stem, or its whole name where stems collide (case-insensitively, as
    on Windows), numbered only if even those collide. Depends on the set of records, not on their order."""
    names = {path: f"{path.stem}.json" for path in records}
    for fallback in (lambda p: f"{p.name}.json", None):
        taken: dict[str, list[Path]] = defaultdict(list)
        for path in sorted(records):
            taken[names[path].casefold()].append(path)
        clashes = [paths for paths in taken.values() if len(paths) > 1]
        if not clashes:
            return names
        for paths in clashes:
            for number, path in enumerate(paths, 1):
                names[path] = fallback(path) if fallback else f"{path.name}.{number}.json"
    return names


def run_batch(args: argparse.Namespace, settings: EngineSettings, template: SummaryTemplate | None = None) -> int:
    from inference.documents import SUPPORTED_SUFFIXES

    source = Path(args.batch)
    if not source.is_dir():
        raise InputError(f"找不到文件夹 / batch folder not found: {source}")
    out = Path(args.out_dir) if args.out_dir else source / "medbrief-summaries"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"无法创建输出文件夹 / cannot create {out}: {exc.strerror}") from exc
    if args.workers < 1 or args.workers > 64:
        raise UsageError("--workers 须在 1 到 64 之间 / --workers must be 1..64")
    try:
        records = sorted(p for p in source.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file())
    except OSError as exc:
        raise InputError(f"无法读取文件夹 / cannot list {source}: {exc.strerror}") from exc
    if len(records) > limits.BATCH_RECORDS:
        raise InputError(f"文件夹中有 {len(records)} 份病历，超过一次批量的上限 {limits.BATCH_RECORDS} / too many records")
    names = output_names(records)
    todo = [p for p in records if not (out / names[p]).exists()]
    workers = args.workers if settings.backend == "server" else 1
    if workers < args.workers:
        print("medbrief: 内嵌模型一次处理一份病历 / the embedded engine runs one record at a time", file=sys.stderr)
    bar = _Bar(len(records), len(records) - len(todo), quiet=args.quiet)
    failures: list[dict[str, str]] = []
    try:
        if todo:
            _run(todo, names, out, settings, args, workers, failures, bar, template)
    finally:
        _write_failures(out / FAILURES_FILE, failures)
        bar.finish(len(failures))
    return BATCH_FAILED if failures else 0


def _run(todo: list[Path], names: dict[Path, str], out: Path, settings: EngineSettings, args: argparse.Namespace,
         workers: int, failures: list[dict[str, str]], bar: _Bar, template: SummaryTemplate | None) -> None:
    from inference.icd.table import open_table  # the engine and tables only once there is something to do
    from inference.llm.backends import open_engine

    table = None if args.no_icd else open_table(args.table)  # once: every record is coded against the same table
    pages = max_pages(args)
    cancel = threading.Event()
    engine = open_engine(settings)
    lock = threading.Lock()

    def one(path: Path) -> None:
        try:
            _summarize_one(path, engine, table, out / names[path], cancel, pages, template)
        except Exception as exc:  # noqa: BLE001 - one record's failure, whatever it is, never ends the batch
            error = exc if isinstance(exc, MedBriefError) else internal_error(exc, f"batch {path.name}")
            with lock:
                failures.append({"file": path.name, "error": error.message, "exit_code": str(error.exit_code)})
        bar.advance(len(failures))

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medbrief-batch") as pool:
            futures = [pool.submit(one, path) for path in todo]
            try:
                for future in as_completed(futures):
                    future.result()
            except KeyboardInterrupt:
                cancel.set()
                for future in futures:
                    future.cancel()
                raise
    finally:
        engine.close()


def _summarize_one(path: Path, engine: ChatEngine, table: IcdTable | None, target: Path,
                   cancel: threading.Event, max_pages: int, template: SummaryTemplate | None = None) -> None:
    from inference.documents import ReadOptions, load_document
    from inference.pipeline import run_pipeline
    from inference.progress import RunContext

    if cancel.is_set():
        raise GenerationCancelled("已停止 / stopped")
    document = load_document(path, ReadOptions(max_pages=max_pages, cancelled=cancel.is_set))
    report = run_pipeline(document, engine, RunContext(cancel=cancel), table=table, template=template)
    if report.stopped:  # Ctrl+C in the middle of a long record: not written, summarized whole on the next run
        raise GenerationCancelled("已停止 / stopped")
    partial = target.with_name(target.name + ".partial")
    try:
        write_private(partial, json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        os.replace(partial, target)
    except OSError as exc:
        raise InputError(f"无法写入 / cannot write {target}: {exc.strerror}") from exc
    finally:
        partial.unlink(missing_ok=True)


def _write_failures(target: Path, failures: list[dict[str, str]]) -> None:
    lines = "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in sorted(failures, key=lambda f: f["file"]))
    try:
        write_private(target, lines)
    except OSError as exc:
        raise InputError(f"无法写入失败清单 / cannot write {target}: {exc.strerror}") from exc


class _Bar:
    """One line on stderr, redrawn: done of total, failures, elapsed and the estimate."""

    def __init__(self, total: int, done: int, quiet: bool) -> None:
        self.total, self.done, self.skipped, self.quiet = total, done, done, quiet
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def advance(self, failed: int) -> None:
        with self._lock:
            self.done += 1
            self._draw(failed)

    def _draw(self, failed: int) -> None:
        if self.quiet:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        elapsed = time.monotonic() - self.started
        ran = self.done - self.skipped
        left = (self.total - self.done) * elapsed / ran if ran else 0
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} 份，失败 {failed}，"
              f"已用 {elapsed:.0f}s，预计还需 {left:.0f}s", end="", file=sys.stderr, flush=True)

    def finish(self, failed: int) -> None:
        if not self.quiet:
            print(f"\n完成 {self.done}/{self.total} 份（跳过已完成 {self.skipped}），失败 {failed} / batch done",
                  file=sys.stderr, flush=True)
