"""The one worker thread that owns the model.

``Llama`` is not thread-safe, so a single ``EngineWorker`` living in its own ``QThread`` loads the engine
and runs every job; the GUI thread only sends requests (queued signals) and receives results. Threading
contract: the job functions run in the worker thread and never touch a widget. Cancel is a
``threading.Event`` set from the GUI thread and checked by the core after every token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, QThread, Signal, Slot

from inference.crash_log import internal_error
from inference.documents import Document
from inference.errors import GenerationCancelled, InternalError, MedBriefError
from inference.icd.table import IcdTable
from inference.llm.engine import ChatEngine
from inference.llm.settings import EngineSettings
from inference.pipeline import Report
from inference.progress import RunContext
from inference.summary.summarizer import StoppedRun
from inference.templates.spec import SummaryTemplate

TOKEN_FLUSH_S = 0.1  # repaint the progress view at most ten times a second, not per token

LoadEngine = Callable[[EngineSettings], ChatEngine]


class RunJob(Protocol):
    """The worker's job: ``pipeline.run_pipeline`` in the app, a fake in UI tests."""

    def __call__(self, document: Document, engine: ChatEngine, context: RunContext, *, table: IcdTable | None,
                 part_budget: int | None, resume: StoppedRun | None = None,
                 template: SummaryTemplate | None = None) -> Report: ...


class EngineWorker(QObject):
    loaded = Signal(object)  # the engine's EngineInfo
    load_failed = Signal(str)
    step = Signal(object)  # a Progress (phase, part i of n, tokens, elapsed and remaining time)
    tokens = Signal(str)  # throttled chunks of streamed text
    finished = Signal(object)  # the job's result (a BriefReport, or a TemplatedReport)
    failed = Signal(str)
    failure_kind = Signal(str, int)  # a failed run's error type and exit code (statistics: never its text)
    cancelled = Signal()

    def __init__(self, load_engine: LoadEngine, run_job: RunJob) -> None:
        super().__init__()
        self._load_engine = load_engine
        self._run_job = run_job
        self.engine: ChatEngine | None = None
        self.cancel_event = threading.Event()
        self._buffer: list[str] = []
        self._last_flush = 0.0

    @Slot(object)
    def load(self, settings: EngineSettings) -> None:
        self._close_engine()
        try:
            self.engine = self._load_engine(settings)
        except MedBriefError as exc:
            self.load_failed.emit(exc.message)
            return
        except MemoryError:
            self.load_failed.emit("内存不足，无法加载模型 / out of memory while loading the model")
            return
        except Exception as exc:  # noqa: BLE001 - the window must learn that loading ended, whatever ended it
            self.load_failed.emit(_unexpected(exc, "load the model"))
            return
        self.loaded.emit(self.engine.info)

    @Slot(object, object, int, object, object)
    def run(self, document: Document, table: IcdTable | None, part_budget: int = 0,
            resume: StoppedRun | None = None, template: SummaryTemplate | None = None) -> None:
        if self.engine is None:
            self.failed.emit("模型尚未加载 / no model loaded")
            return
        self._buffer.clear()
        try:
            context = RunContext(on_progress=self.step.emit, on_token=self._on_token, cancel=self.cancel_event)
            chosen = {"template": template} if template is not None else {}  # the default: the four sections
            result = self._run_job(document, self.engine, context, table=table, part_budget=part_budget or None,
                                   resume=resume, **chosen)
        except GenerationCancelled:
            self._flush()
            self.cancelled.emit()
            return
        except MedBriefError as exc:
            self._flush()
            self.failure_kind.emit(type(exc).__name__, exc.exit_code)
            self.failed.emit(exc.message)
            return
        except MemoryError:
            self.failure_kind.emit("MemoryError", InternalError.exit_code)
            self.failed.emit("内存不足 / out of memory during generation")
            return
        except Exception as exc:  # noqa: BLE001 - never leave the window waiting for a run that died
            self._flush()
            self.failure_kind.emit(type(exc).__name__, InternalError.exit_code)
            self.failed.emit(_unexpected(exc, "generate"))
            return
        self._flush()
        self.finished.emit(result)

    @Slot(object)
    def prepare(self, table: IcdTable) -> None:
        """Build the table's lookup index here (1–2 s), not on the GUI thread at the first ICD search."""
        from inference.icd.lookup import matcher_for

        matcher_for(table)

    @Slot()
    def shutdown(self) -> None:
        self._close_engine()

    def _close_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()
        self.engine = None

    def _on_token(self, piece: str) -> None:
        self._buffer.append(piece)
        if time.perf_counter() - self._last_flush >= TOKEN_FLUSH_S:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self.tokens.emit("".join(self._buffer))
            self._buffer.clear()
        self._last_flush = time.perf_counter()


def _unexpected(exc: BaseException, where: str) -> str:
    """An error no message was written for: its traceback goes to the log for IT, the window gets one line."""
    return internal_error(exc, where).message


class WorkerHost(QObject):
    """Owns the thread; the GUI talks to the worker only through these queued signals."""

    _load_requested = Signal(object)
    # document, table, record tokens per part (0: by model size), stopped run, template (None: the four sections)
    _run_requested = Signal(object, object, int, object, object)
    _prepare_requested = Signal(object)
    _shutdown_requested = Signal()

    def __init__(self, load_engine: LoadEngine, run_job: RunJob, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("medbrief-engine")
        self.worker = EngineWorker(load_engine, run_job)
        self.worker.moveToThread(self.thread)
        self._load_requested.connect(self.worker.load)
        self._run_requested.connect(self.worker.run)
        self._prepare_requested.connect(self.worker.prepare)
        self._shutdown_requested.connect(self.worker.shutdown)
        self.thread.start()

    def load(self, settings: EngineSettings) -> None:
        self._load_requested.emit(settings)

    def run(self, document: Document, table: IcdTable | None, part_budget: int | None = None,
            resume: StoppedRun | None = None, template: SummaryTemplate | None = None) -> None:
        self.worker.cancel_event.clear()  # here, not in the worker: a stop pressed before the run starts holds
        self._run_requested.emit(document, table, part_budget or 0, resume, template)

    def prepare(self, table: IcdTable) -> None:
        self._prepare_requested.emit(table)

    def cancel(self) -> None:
        self.worker.cancel_event.set()

    def stop(self) -> None:
        self.worker.cancel_event.set()
        self._shutdown_requested.emit()
        self.thread.quit()
        self.thread.wait(10_000)
