"""Run a reader of untrusted pages (PDFium, the OCR) in a child process bounded in memory and time.

PDFium inflated a 195 KB PDF (one flate-compressed content stream) to 16 GB of memory in 64 s on a 2-core VM:
no check before parsing can see that coming, so the parse itself is fenced. The child gets an address-space
limit (``limits.READER_MEMORY_BYTES``, POSIX ``RLIMIT_AS``) and the parent a wall-clock deadline; a child that
runs out of either (the deadline is per page: it restarts at each page read), crashes or is cancelled is killed, and the caller gets one ``InputError`` line (exit 3) or
``GenerationCancelled``. Nothing the child did survives it: the parent's state is untouched. The child reports
its progress (page i of n, the phase) and the cancel is checked between those reports. On Windows the child
has the deadline but no memory limit (a job object would give one; not built yet).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from inference import limits
from inference.errors import GenerationCancelled, InputError

if sys.platform != "win32":
    import resource

Report = Callable[[int, int, str], None]  # page (1-based), pages, phase
# "module:function", imported in the child only (the parent never loads PDFium or onnxruntime); the function takes
# (data, file name, options, report) and returns a picklable result.
Task = str
_POLL_S = 0.1


def run_bounded(task: Task, data: bytes, name: str, options: Any = None, *, seconds: float,
                memory: int = limits.READER_MEMORY_BYTES, on_page: Report | None = None,
                cancelled: Callable[[], bool] | None = None) -> Any:
    """The function ``task`` names, called as ``(data, name, options, report)`` in a spawned child (never forked:
    the parent holds a model and Qt); its result, or its InputError re-raised here."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, task, data, name, options, memory), daemon=True)
    child.start()
    sender.close()
    deadline = time.monotonic() + seconds
    try:
        while True:
            if cancelled is not None and cancelled():
                raise GenerationCancelled("已取消读取 / reading cancelled")
            if time.monotonic() > deadline:
                raise InputError(f"读取文件超时（一页超过 {seconds:.0f} 秒）/ reading one page took too long: {name}")
            if not receiver.poll(_POLL_S):
                if not child.is_alive() and not receiver.poll(0):
                    raise InputError(_died(name, child, memory))
                continue
            try:
                kind, *payload = receiver.recv()
            except (EOFError, OSError):
                raise InputError(_died(name, child, memory)) from None
            if kind == "page":
                deadline = time.monotonic() + seconds
                if on_page is not None:
                    on_page(*payload)
            elif kind == "done":
                return payload[0]
            elif kind == "refused":
                raise InputError(payload[0])
            elif kind == "memory":
                raise InputError(f"文件解析需要的内存超出上限（{memory // limits.MIB} MB）/ the file needs more than "
                                 f"{memory // limits.MIB} MB to read: {name}")
            else:
                raise InputError(f"文件已损坏，无法解析 / corrupt file, cannot be parsed: {name}")
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)


def _died(name: str, child: Any, memory: int) -> str:
    child.join(1)
    exitcode = child.exitcode
    return (f"读取文件时解析进程异常退出（可能超出 {memory // limits.MIB} MB 内存上限，或文件已损坏）/ the reader stopped "
            f"(exit {exitcode}): the file is corrupt or needs more than {memory // limits.MIB} MB: {name}")


# onnxruntime's own switches for its telemetry (1DS on Linux and macOS from 1.29, ETW on Windows): off before it loads.
_NO_TELEMETRY = {"ORT_DISABLE_TELEMETRY": "1", "ORT_TELEMETRY_DISABLED": "1"}


def _child(sender: Any, task: Task, data: bytes, name: str, options: Any, memory: int) -> None:
    _limit_memory(memory)
    os.environ.update(_NO_TELEMETRY)

    def report(page: int, pages: int, phase: str) -> None:
        sender.send(("page", page, pages, phase))

    try:
        module, function = task.split(":")
        sender.send(("done", getattr(importlib.import_module(module), function)(data, name, options, report)))
    except InputError as exc:
        sender.send(("refused", exc.message))
    except MemoryError:
        sender.send(("memory",))
    except Exception as exc:  # noqa: BLE001 - a parser's own error type on a malformed file: the parent says so
        sender.send(("failed", f"{type(exc).__name__}: {exc}"[:500]))
    finally:
        sender.close()


def _limit_memory(memory: int) -> None:
    if sys.platform != "win32":
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
