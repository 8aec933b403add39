"""Where MedBrief keeps its files: bundled resources and the per-user cache, data and config dirs.

Each per-user dir can be redirected with an environment variable (IT deployments, tests).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "medbrief"


def resources_dir() -> Path:
    """The bundled ``resources/`` folder, also inside a PyInstaller bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def _dir_from_env(variable: str, default: str) -> Path:
    override = os.environ.get(variable)
    path = Path(override) if override else Path(default)
    return path


def cache_dir() -> Path:
    """Large rebuildable files: the assembled demo model."""
    return _dir_from_env("MEDBRIEF_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Files that must survive: ICD indexes, the history database."""
    return _dir_from_env("MEDBRIEF_DATA_DIR", platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    return _dir_from_env("MEDBRIEF_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME, appauthor=False))
