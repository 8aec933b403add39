"""File locks next to the history database: one desktop instance per database, and one process at a time
checking, repairing and migrating it.

The locks die with the process (also on ``kill -9``), so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

if os.name == "nt":  # one file lock per platform: Windows' msvcrt, POSIX's flock
    import msvcrt
else:
    import fcntl

from inference.errors import StorageError
from inference.paths import PRIVATE_FILE_MODE, private_dir


def _open_lock_file(path: Path) -> IO[str]:
    try:
        private_dir(path.parent)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise StorageError(f"无法在数据目录中写入（只读或没有权限）/ cannot write in the data folder {path.parent}: "
                           f"{exc.strerror}；可用 MEDBRIEF_DATA_DIR 指定可写目录") from None
    return os.fdopen(descriptor, "r+")


def _lock(handle: IO[str], wait: bool) -> None:
    if os.name == "nt":
        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Wait for, then hold, an exclusive lock on ``path`` (created 0600) for the block."""
    handle = _open_lock_file(path)
    try:
        _lock(handle, wait=True)
        yield
    finally:
        handle.close()


class InstanceRunning(StorageError):
    """Another MedBrief window holds this history database."""


class InstanceLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        handle = _open_lock_file(self.path)
        try:
            _lock(handle, wait=False)
        except OSError:
            handle.close()
            raise InstanceRunning(
                "另一个 MedBrief 窗口正在使用历史数据库，请切换到已打开的窗口 / another MedBrief instance is using "
                f"the history database ({self.path.parent})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
