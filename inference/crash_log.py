"""A failure no message was written for: its traceback goes to a log in the data folder for IT (private to the
OS account, bounded in size), and the doctor gets one line that says where it is. Every entry point — each
command, the batch, both self-tests, the window's thread hooks and worker — ends an unexpected exception here."""

from __future__ import annotations

import os
import sys
import traceback
from datetime import datetime
from pathlib import Path

from inference import __version__
from inference.errors import InternalError, described
from inference.paths import PRIVATE_FILE_MODE, data_dir, private_dir

LOG_FILE_NAME = "medbrief-errors.log"
MAX_LOG_BYTES = 1024 * 1024  # then the log moves to .1 (one older log is kept)


def log_path() -> Path:
    return data_dir() / "logs" / LOG_FILE_NAME


def log_unexpected(exc: BaseException, where: str) -> Path | None:
    """Append the traceback to the log; None when the data folder cannot take it (then it goes to stderr)."""
    text = "".join(traceback.format_exception(exc))
    entry = f"=== {datetime.now().isoformat(timespec='seconds')} MedBrief {__version__} · {where}\n{text}\n"
    path = log_path()
    try:
        private_dir(path.parent)
        if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
            os.replace(path, path.with_name(LOG_FILE_NAME + ".1"))
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
        with os.fdopen(descriptor, "a", encoding="utf-8", errors="backslashreplace") as log:
            log.write(entry)
    except OSError:
        try:
            sys.stderr.write(entry)
        except (OSError, ValueError, AttributeError):  # no stderr either (a windowed build): nowhere left
            pass
        return None
    return path


def internal_error(exc: BaseException, where: str) -> InternalError:
    """The one-line error for an unexpected failure, its traceback logged for IT."""
    path = log_unexpected(exc, where)
    kept = f"详情已写入 {path}" if path else "详情见标准错误输出"
    return InternalError(f"内部错误（{type(exc).__name__}），{kept} / internal error: {described(exc)}")
