"""Where MedBrief keeps its files: bundled resources and the per-user cache, data and config dirs.

Each per-user dir can be redirected with an environment variable (IT deployments, tests).
"""

from __future__ import annotations

import os
import stat
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


def sample_record_path() -> Path:
    """The bundled sample record the demo, the self-tests and the server check run."""
    return resources_dir() / "samples" / "sample_record.txt"


def sample_scan_path() -> Path:
    """The sample record as a scanner gives it (the top half of an A4 page at 200 dpi, rendered from
    sample_record.txt with Noto Sans CJK): the self-test's OCR check."""
    return resources_dir() / "samples" / "sample_scan.png"


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


def app_folder() -> Path | None:
    """The installed folder (``medbrief/``, holding the executables) in a PyInstaller build; None from source."""
    return Path(sys.executable).resolve().parent if getattr(sys, "frozen", False) else None


def models_dir() -> Path:
    """GGUF models and LoRA adapters. A ward PC keeps them in ``models/`` beside the app folder, so an update
    that replaces the app folder leaves them in place; from source, the user cache (where setup puts the
    demo model)."""
    override = os.environ.get("MEDBRIEF_MODELS_DIR")
    if override:
        return Path(override)
    folder = app_folder()
    return folder.parent / "models" if folder is not None else cache_dir() / "models"


def templates_dir() -> Path:
    """A department's summary templates, put there by IT: ``templates/`` beside the app folder (read-only to
    doctors, as the models folder is); from source, under the config folder."""
    override = os.environ.get("MEDBRIEF_TEMPLATES_DIR")
    if override:
        return Path(override)
    folder = app_folder()
    return folder.parent / "templates" if folder is not None else config_dir() / "templates"


def config_dir() -> Path:
    return _dir_from_env("MEDBRIEF_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME, appauthor=False))


# A ward PC is shared by many OS accounts: what MedBrief keeps about patients is readable by its owner only.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private(path: Path) -> None:
    """Take group and other permissions off a file or folder this account owns (a no-op where it cannot:
    another owner, a read-only disk, Windows, whose profile folders are private already)."""
    try:
        status = path.lstat()
        if hasattr(os, "geteuid") and status.st_uid != os.geteuid():
            return
        mode = PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE
        if status.st_mode & 0o077 and not path.is_symlink():
            path.chmod(mode)
    except OSError:
        pass


def private_dir(path: Path) -> Path:
    """The folder, created 0700 if missing; an existing one loses group and other access. Raises OSError.
    A folder inside the data dir makes the data dir itself private first (mkdir gives parents default modes)."""
    data = data_dir()
    if data in path.parents:
        private_dir(data)
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    make_private(path)
    return path


def make_tree_private(root: Path) -> None:
    """Repair an install made before files were private: every folder 0700 and every file 0600 under root."""
    if not root.is_dir():
        return
    make_private(root)
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            make_private(Path(folder) / name)


def write_private(path: Path, text: str) -> None:
    """A file of patient data outside the data folder (--out, batch outputs, exports): readable by this OS
    account only, like the history, whatever the umask. Raises OSError."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        # An existing file keeps its mode through O_CREAT; a device (--out /dev/null) is left as it is.
        if hasattr(os, "fchmod") and stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
        handle.write(text)
