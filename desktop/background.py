"""Work the GUI thread must not wait for, in the spirit of Anki's ``QueryOp``: an operation runs on a pool
thread; its success or failure callback runs on the GUI thread.

``Background.run(kind, operation, success)``: of several operations of one kind (reviews of successive
edits, searches as the doctor types), only the latest one's result is delivered, so an older answer never
overwrites a newer one. The engine is not run here: it has its own thread (``worker``).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

Failure = Callable[[Exception], None]


class _Signals(QObject):
    """Lives on the GUI thread, so a signal emitted from the pool thread reaches its slot there (queued)."""

    done = Signal(object, object)  # result, exception


class _Task(QRunnable):
    def __init__(self, operation: Callable[[], Any], signals: _Signals) -> None:
        super().__init__()
        self.operation = operation
        self.signals = signals

    def run(self) -> None:
        try:
            result = self.operation()
        except Exception as exc:  # noqa: BLE001 - delivered to the failure callback on the GUI thread
            self.signals.done.emit(None, exc)
            return
        self.signals.done.emit(result, None)


def _log(exc: Exception) -> None:
    traceback.print_exception(exc, file=sys.stderr)


class Background(QObject):
    """Runs operations off the GUI thread; ``pending`` counts those not yet delivered (tests wait on it)."""

    settled = Signal()  # nothing is pending any more

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._latest: dict[str, int] = {}
        self._running: set[_Signals] = set()

    @property
    def pending(self) -> int:
        return len(self._running)

    def run(self, kind: str, operation: Callable[[], Any], success: Callable[[Any], None],
            failure: Failure | None = None) -> None:
        generation = self._latest.get(kind, 0) + 1
        self._latest[kind] = generation
        signals = _Signals(self)
        self._running.add(signals)

        def deliver(result: Any, exc: Exception | None) -> None:
            self._running.discard(signals)
            signals.deleteLater()
            try:
                if self._latest.get(kind) != generation:
                    return  # superseded by a newer operation of the same kind
                if exc is not None:
                    (failure or _log)(exc)
                else:
                    success(result)
            finally:
                if not self._running:
                    self.settled.emit()

        signals.done.connect(deliver)
        self._pool.start(_Task(operation, signals))

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the pool is idle (shutdown only; never from a slot)."""
        return self._pool.waitForDone(timeout_ms)
