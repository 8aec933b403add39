"""ICD-10 code tables, with provenance: the bundled WHO table ships read-only inside the app
(``resources/icd/who-zh.tsv``, beside its GPL text); tables a user imports are SQLite files in their data dir.

Every table records its name, version, source and a content hash, and every lookup result carries
them, so a code shown to a doctor can always be traced to the exact table that produced it.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from inference.errors import IcdTableError
from inference.llm.settings import load_config
from inference.paths import data_dir, make_private, private_dir, resources_dir

BUNDLED_TABLE = "who-zh"
BUNDLED_TABLE_PATH = resources_dir() / "icd" / f"{BUNDLED_TABLE}.tsv"
BUNDLED_LICENCE_PATH = resources_dir() / "icd" / f"{BUNDLED_TABLE}.COPYING"
_TSV_META = ("name", "version", "source", "licence")
# Letters (Chinese too), digits, - _ and inner dots; \Z, not $, so that a trailing newline is refused.
_TABLE_NAME = re.compile(r"[^\W_][\w.\-]{0,63}\Z")
# I50 / I50.1 / I50.905 / I50.900x018 / I10xx02 / dagger-asterisk pairs A01.005+J17.0*
# and ICD-O morphology codes (M800000/3) that 临床版 tables carry.
_CODE_SHAPE = re.compile(
    r"^([A-Z][0-9]{2}(\.?[0-9A-Za-z]{1,8})?(\+[A-Z][0-9]{2}(\.[0-9A-Za-z]{1,4})?\*?)?[+*]?|M[0-9]{4,6}/[0-9])$"
)
LOOKUP_LEVELS = ("category", "subcategory", "detail", "morphology")


@dataclass(frozen=True)
class IcdEntry:
    code: str
    name: str
    level: str  # chapter | block | category | subcategory | detail


@dataclass(frozen=True)
class TableInfo:
    name: str
    version: str
    source: str
    sha256: str
    rows: int
    created: str
    licence: str = ""

    def as_dict(self) -> dict[str, str | int]:
        return {"name": self.name, "version": self.version, "source": self.source,
                "sha256": self.sha256[:16], "rows": self.rows}


class IcdTable:
    def __init__(self, info: TableInfo, entries: list[IcdEntry]) -> None:
        self.info = info
        self.entries = entries
        self._by_code: dict[str, IcdEntry] = {}
        for entry in entries:  # a code may have several names (北京临床版); the first is its title
            self._by_code.setdefault(entry.code, entry)

    def get(self, code: str) -> IcdEntry | None:
        return self._by_code.get(normalize_code(code))

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and normalize_code(code) in self._by_code

    def lookup_entries(self) -> list[IcdEntry]:
        return [entry for entry in self.entries if entry.level in LOOKUP_LEVELS]

    def closest_existing(self, code: str) -> IcdEntry | None:
        """The code itself, else its 4-character subcategory, else its 3-character category."""
        code = normalize_code(code)
        if level_of(code) == "morphology":  # M8000/3 is a tumour morphology, never WHO category M80
            entry = self._by_code.get(code)
            return entry if entry is not None and entry.level in LOOKUP_LEVELS else None
        for candidate in (code, code[:5], code[:3]):
            entry = self._by_code.get(candidate)
            if entry is not None and entry.level in LOOKUP_LEVELS:
                return entry
        return None


def normalize_code(raw: str) -> str:
    """``i501`` / ``I50.1`` / ``Ｉ５０．１`` → ``I50.1``; detail suffixes (``I50.900x018``, ``I10xx02``) kept as written."""
    code = unicodedata.normalize("NFKC", raw).strip().replace(" ", "")
    code = code[:1].upper() + code[1:]
    if len(code) >= 4 and "." not in code and "/" not in code and code[0].isalpha() and code[1:3].isdigit() and code[3:4].isdigit():
        code = f"{code[:3]}.{code[3:]}"
    return code


def looks_like_code(raw: str) -> bool:
    return bool(_CODE_SHAPE.match(normalize_code(raw)))


def level_of(code: str) -> str:
    if "/" in code:
        return "morphology"
    if len(code) == 3:
        return "category"
    if len(code) == 5 and code[3] == ".":
        return "subcategory"
    return "detail"


def content_hash(entries: Iterable[IcdEntry]) -> str:
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry.code}\t{entry.name}\t{entry.level}\n".encode())
    return digest.hexdigest()


def tables_dir() -> Path:
    return data_dir() / "icd_tables"


def table_path(name: str) -> Path:
    if not _TABLE_NAME.match(name) or ".." in name or name.endswith("."):
        raise IcdTableError(f"表名只能以字母或数字开头，包含字母、数字、-_. / invalid table name: {name!r}")
    return tables_dir() / f"{name}.sqlite"


def check_new_table_name(name: str, *, replace: bool = False) -> None:
    """An import may not take the bundled table's name, nor replace an imported table unless asked to; names
    are compared ignoring case (WHO-ZH is who-zh: on Windows they are one file)."""
    table_path(name)  # refuses a name that is not one
    if name.casefold() == BUNDLED_TABLE.casefold():
        raise IcdTableError(f"'{BUNDLED_TABLE}' 是内置编码表的名称，请换一个名称 / '{BUNDLED_TABLE}' is the bundled table; "
                            "choose another name")
    existing = {p.stem.casefold(): p.stem for p in tables_dir().glob("*.sqlite")} if tables_dir().is_dir() else {}
    if name.casefold() in existing and not (replace and existing[name.casefold()] == name):
        raise IcdTableError(f"编码表 '{existing[name.casefold()]}' 已存在；替换请用同一名称并加 --replace / table "
                            f"'{existing[name.casefold()]}' exists; pass --replace with its exact name")


def save_table(name: str, version: str, source: str, entries: list[IcdEntry], licence: str = "") -> TableInfo:
    if not entries:
        raise IcdTableError(f"编码表为空 / the table has no codes: {source}")
    path = table_path(name)
    private_dir(path.parent)
    info = TableInfo(name=name, version=version, source=source, sha256=content_hash(entries), rows=len(entries),
                     created=datetime.now(timezone.utc).isoformat(timespec="seconds"), licence=licence)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(partial) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE codes (code TEXT NOT NULL, name TEXT NOT NULL, level TEXT NOT NULL, UNIQUE (code, name))")
        db.execute("CREATE INDEX codes_by_code ON codes (code)")
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("name", info.name), ("version", info.version), ("source", info.source), ("sha256", info.sha256),
            ("rows", str(info.rows)), ("created", info.created), ("licence", info.licence)])
        db.executemany("INSERT OR IGNORE INTO codes VALUES (?, ?, ?)", [(e.code, e.name, e.level) for e in entries])
    make_private(partial)
    partial.replace(path)
    load_table.cache_clear()
    return info


@lru_cache(maxsize=4)
def load_table(path: Path) -> IcdTable:
    if not path.exists():
        raise IcdTableError(f"找不到 ICD 编码表 / ICD table not found: {path}")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
            rows = db.execute("SELECT code, name, level FROM codes ORDER BY rowid").fetchall()
    except sqlite3.DatabaseError as exc:
        raise IcdTableError(f"ICD 编码表已损坏 / ICD table is corrupt: {path}: {exc}") from exc
    entries = [IcdEntry(*row) for row in rows]
    info = TableInfo(name=meta.get("name", path.stem), version=meta.get("version", ""), source=meta.get("source", ""),
                     sha256=meta.get("sha256", ""), rows=len(entries), created=meta.get("created", ""),
                     licence=meta.get("licence", ""))
    return IcdTable(info, entries)


def write_table_tsv(path: Path, version: str, source: str, entries: list[IcdEntry], licence: str) -> None:
    """The bundled table's committed form: ``# key: value`` provenance lines, then code, name, level."""
    header = [f"# name: {path.stem}", f"# version: {version}", f"# source: {source}", f"# licence: {licence}"]
    rows = [f"{e.code}\t{e.name}\t{e.level}" for e in entries]
    path.write_text("\n".join(header + rows) + "\n", encoding="utf-8")


@lru_cache(maxsize=2)
def read_bundled_table(path: Path = BUNDLED_TABLE_PATH) -> IcdTable:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise IcdTableError(f"安装不完整：缺少内置 ICD 编码表 / the bundled ICD table is missing: {path}") from exc
    meta = {}
    entries = []
    for line in lines:
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            meta[key] = value
        elif line.strip():
            code, name, level = (line.split("\t") + ["", ""])[:3]
            entries.append(IcdEntry(code, name, level))
    if not entries or not set(_TSV_META) <= meta.keys():
        raise IcdTableError(f"内置 ICD 编码表已损坏 / the bundled ICD table is damaged: {path}")
    info = TableInfo(name=meta["name"], version=meta["version"], source=meta["source"], sha256=content_hash(entries),
                     rows=len(entries), created="", licence=meta["licence"])
    return IcdTable(info, entries)


def list_tables() -> list[TableInfo]:
    """The bundled table first, then the tables this user imported."""
    folder = tables_dir()
    imported = sorted(folder.glob("*.sqlite")) if folder.exists() else []
    return [read_bundled_table().info] + [
        load_table(path).info for path in imported if path.stem != BUNDLED_TABLE  # a copy older versions kept
    ]


def open_table(name_or_path: str | Path | None = None) -> IcdTable:
    """A table by name (the bundled one, or imported into the data dir) or by path; None is the configured
    or bundled table."""
    if name_or_path is None:
        name_or_path = load_config().icd_table or BUNDLED_TABLE
    candidate = Path(name_or_path)
    if candidate.suffix == ".sqlite" and candidate.exists():
        return load_table(candidate.resolve())
    if str(name_or_path) == BUNDLED_TABLE:
        return read_bundled_table()
    path = table_path(str(name_or_path))
    if not path.exists():
        raise IcdTableError(f"找不到 ICD 编码表 '{name_or_path}' / ICD table not found: {path}")
    return load_table(path)
