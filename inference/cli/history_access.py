"""The history as a command uses it: opened (with its notices said on stderr), the command's work done, closed. A
history found damaged and salvaged on the way is exit 7 even when the work succeeded."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from inference.errors import StorageError

if TYPE_CHECKING:
    from inference.history.store import HistoryStore


def with_history(work: Callable[[HistoryStore], int]) -> int:
    from inference.history.store import HistoryStore  # start-up time: SQLAlchemy and alembic load when used

    store = HistoryStore.open()
    try:
        for notice in store.notices:
            print(f"medbrief: {notice}", file=sys.stderr)
        code = work(store)
    finally:
        store.close()
    return StorageError.exit_code if store.recovered and code == 0 else code
