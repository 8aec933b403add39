"""Work the GUI thread must not wait for, in the spirit of Anki's ``QueryOp``: an operation runs on a
background thread; its success or failure callback runs on the GUI thread.

``Background.run(kind, operation, success)``: of several operations of one kind (reviews of successive
edits, searches as the doctor types), only the latest one's result is delivered, so an older answer never
overwrites a newer one. ``Background(serial=True)`` runs every operation, one after another in the order
given, and delivers every result: the history's writes (autosave, status), which must keep their order.
The engine is not run here: it has its own thread (``worker``).

Plain Python threads (``concurrent.futures``) do the work; a queued Qt signal brings the result back. Qt's
``QRunnable`` is not used: a Python runnable collected while its thread still runs crashes the process.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any

from PySide6.QtCore import QObject, Signal

from inference.crash_log import log_unexpected

Failure = Callable[[Exception], None]


def _log(exc: Exception) -> None:
    log_unexpected(exc, "background work of the window")


class Background(QObject):
    """Runs operations off the GUI thread; ``pending`` counts those not yet delivered (tests wait on it)."""

    settled = Signal()  # nothing is pending any more
    _finished = Signal(object, object, object)  # (kind, generation, success, failure), result, exception

    def __init__(self, parent: QObject | None = None, serial: bool = False) -> None:
        super().__init__(parent)
        self._serial = serial
        self._executor = ThreadPoolExecutor(max_workers=1 if serial else 2, thread_name_prefix="medbrief-background")
        self._latest: dict[str, int] = {}
        self._futures: set[Future[None]] = set()
        self.pending = 0
        self._finished.connect(self._deliver)  # queued: emitted from the worker thread, run on this one

    def run(self, kind: str, operation: Callable[[], Any], success: Callable[[Any], None],
            failure: Failure | None = None) -> None:
        generation = self._latest.get(kind, 0) + 1
        self._latest[kind] = generation
        job = (kind, generation, success, failure)
        self.pending += 1

        def work() -> None:
            try:
                result, error = operation(), None
            except Exception as exc:  # noqa: BLE001 - delivered to the failure callback on the GUI thread
                result, error = None, exc
            try:
                self._finished.emit(job, result, error)
            except RuntimeError:  # the window closed while this ran: nobody is left to tell
                pass

        future = self._executor.submit(work)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def _deliver(self, job: tuple[str, int, Callable[[Any], None], Failure | None], result: Any,
                 error: Exception | None) -> None:
        kind, generation, success, failure = job
        self.pending -= 1
        try:
            if not self._serial and self._latest.get(kind) != generation:
                return  # superseded by a newer operation of the same kind
            if error is not None:
                (failure or _log)(error)
            else:
                success(result)
        finally:
            if not self.pending:
                self.settled.emit()

    def wait(self, timeout_s: float = 30.0) -> None:
        """Block until the operations started so far have run (closing the window; never from a slot)."""
        wait_for(list(self._futures), timeout=timeout_s)
