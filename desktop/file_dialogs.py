"""Open and save dialogs in Chinese whatever Qt translations a build carries (a ward PC showed "Look in" and
"Files of type"), opening where the doctor last opened or saved a file — remembered across sessions."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

from inference.documents import SUPPORTED_SUFFIXES
from inference.paths import config_dir

LABELS = {QFileDialog.DialogLabel.LookIn: "查找范围：", QFileDialog.DialogLabel.FileName: "文件名：",
          QFileDialog.DialogLabel.FileType: "文件类型：", QFileDialog.DialogLabel.Reject: "取消"}
_FOLDER_KEYS = {"open": "folders/open", "save": "folders/export"}


def _state() -> QSettings:
    """The window's own memory (folders), beside the user's config: never in the registry or the history."""
    return QSettings(str(config_dir() / "desktop-state.ini"), QSettings.Format.IniFormat)


def last_folder(kind: str) -> Path:
    """The folder last used, or home when the state file is damaged or the folder is gone."""
    folder = Path(str(_state().value(_FOLDER_KEYS[kind], "") or Path.home()))
    try:
        return folder if folder.is_dir() else Path.home()
    except OSError:  # a name too long, a path the system refuses: not a folder to open
        return Path.home()


def remember_folder(kind: str, path: Path) -> None:
    _state().setValue(_FOLDER_KEYS[kind], str(path.parent))


def file_dialog(parent: QWidget, title: str, kind: str, filters: list[str], name: str = "") -> QFileDialog:
    """The dialog, not yet shown: in the last folder of its ``kind`` ("open" or "save"), labels in Chinese."""
    dialog = QFileDialog(parent, title, str(last_folder(kind) / name if name else last_folder(kind)))
    dialog.setNameFilters(filters)
    if kind == "save":
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        dialog.setLabelText(QFileDialog.DialogLabel.Accept, "保存")
    else:
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setLabelText(QFileDialog.DialogLabel.Accept, "打开")
    for label, text in LABELS.items():
        dialog.setLabelText(label, text)
    return dialog


# Any file is read by its content; the filter only narrows the list.
RECORD_FILTERS = [f"病历 ({' '.join('*' + suffix for suffix in SUPPORTED_SUFFIXES)})", "所有文件 (*)"]


def ask_paths(parent: QWidget, title: str, filters: list[str]) -> list[Path]:
    """The files chosen to open (one or several, in the order the doctor selected them); empty when cancelled."""
    dialog = file_dialog(parent, title, "open", filters)
    dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
    if not dialog.exec() or not dialog.selectedFiles():
        return []
    paths = [Path(name) for name in dialog.selectedFiles()]
    remember_folder("open", paths[0])
    return paths


def ask_path(parent: QWidget, title: str, kind: str, filters: list[str], name: str = "") -> tuple[Path, str] | None:
    """The chosen file and filter, remembering its folder; None when cancelled."""
    dialog = file_dialog(parent, title, kind, filters, name)
    if not dialog.exec() or not dialog.selectedFiles():
        return None
    path = Path(dialog.selectedFiles()[0])
    remember_folder(kind, path)
    return path, dialog.selectedNameFilter()
