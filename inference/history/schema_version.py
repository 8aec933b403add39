"""The history file's schema version: alembic's migrations forward, a backup before each, and the refusal of a
file written by a newer MedBrief."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from inference.history.recovery import create_private, utc_now

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config(None))
    return str(script.get_current_head())


def known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config(None))
    return {rev.revision for rev in script.walk_revisions()}


def stored_revision(path: Path) -> str | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        has_table = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'").fetchone()
        if not has_table:
            return None
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(row[0]) if row else None


def migrate(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def backup(path: Path, label: str) -> Path:
    """A copy of the history (SQLite's online backup) beside it, before a migration changes it."""
    target = path.with_name(f"{path.name}.bak-{label}-{utc_now():%Y%m%d-%H%M%S}")
    create_private(target)
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return target
