"""``medbrief summarize --batch DIR``: a backlog or a research export, one JSON per record.

Each record's summary is written as ``OUT/<name>.json`` when it is done (atomically: a file there is whole),
and each failure as one line of ``OUT/failures.jsonl``; a rerun skips the records that have their JSON and
tries the failed ones again. Against a server the ``--workers`` records run at once; the embedded engine
holds one model and runs them one after another. Ctrl+C stops after the records in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from inference.errors import GenerationCancelled, InputError, MedBriefError, UsageError

if TYPE_CHECKING:
    from inference.icd.table import IcdTable
    from inference.llm.engine import ChatEngine
    from inference.llm.settings import EngineSettings

RECORD_SUFFIXES = (".txt", ".docx")
BATCH_FAILED = 10


def run_batch(args: argparse.Namespace, settings: EngineSettings) -> int:
    from inference.llm.backends import open_engine

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
    records = sorted(p for p in source.iterdir() if p.suffix.lower() in RECORD_SUFFIXES and p.is_file())
    todo = [p for p in records if not (out / f"{p.stem}.json").exists()]
    workers = args.workers if settings.backend == "server" else 1
    if workers < args.workers:
        print("medbrief: 内嵌模型一次处理一份病历 / the embedded engine runs one record at a time", file=sys.stderr)
    bar = _Bar(len(records), len(records) - len(todo), quiet=args.quiet)
    if not todo:
        bar.finish(0)
        return 0
    from inference.icd.table import open_table

    table = None if args.no_icd else open_table(args.table)  # once: every record is coded against the same table
    cancel = threading.Event()
    engine = open_engine(settings)
    failures: list[dict[str, str]] = []
    lock = threading.Lock()

    def one(path: Path) -> None:
        try:
            _summarize_one(path, engine, table, out, cancel)
        except MedBriefError as exc:
            with lock:
                failures.append({"file": path.name, "error": exc.message, "exit_code": str(exc.exit_code)})
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
    _write_failures(out / "failures.jsonl", failures)
    bar.finish(len(failures))
    return BATCH_FAILED if failures else 0


def _summarize_one(path: Path, engine: ChatEngine, table: IcdTable | None, out: Path, cancel: threading.Event) -> None:
    from inference.documents import load_document
    from inference.pipeline import run_pipeline
    from inference.progress import RunContext

    if cancel.is_set():
        raise GenerationCancelled("已停止 / stopped")
    document = load_document(path)
    report = run_pipeline(document, engine, RunContext(cancel=cancel), table=table)
    target = out / f"{path.stem}.json"
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(report.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(partial, target)


def _write_failures(target: Path, failures: list[dict[str, str]]) -> None:
    lines = "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in sorted(failures, key=lambda f: f["file"]))
    target.write_text(lines, encoding="utf-8")


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
