"""Import a hospital's ICD-10 table (医保版, 国家临床版, 北京临床版 …) from CSV or XLSX.

Columns are detected: the code column is the one whose values mostly look like ICD-10 codes, the name
column the one that is mostly Chinese. A header row is optional. Either can be given explicitly
(by header name or 1-based number) when detection is not wanted.

A file is read within the bounds of ``limits`` (its size, an .xlsx's inflated size, rows, columns, the length of
a cell), a CSV strictly (an unterminated quote is an error, never a name that swallows the rest of the file),
an .xlsx's XML through defusedxml (no entities). The outcome is the table's rows or an ``IcdTableError``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path

from openpyxl import load_workbook

from inference import limits
from inference.documents import check_regular_file, check_zip_bounds, decode_text, read_bounded
from inference.errors import IcdTableError, InputError, described
from inference.icd.table import (
    IcdEntry,
    TableInfo,
    check_new_table_name,
    level_of,
    looks_like_code,
    normalize_code,
    save_table,
)

_MIN_CODE_SHARE = 0.8
_SAMPLE_ROWS = 500
MAX_TABLE_ROWS = limits.TABLE_ROWS
_MIN_CHINESE_NAME_SHARE = 0.5


def _cjk_share(values: list[str]) -> float:
    filled = [v for v in values if v]
    if not filled:
        return 0.0
    return sum(any("\u4e00" <= ch <= "\u9fff" for ch in v) for v in filled) / len(filled)


def _code_share(values: list[str]) -> float:
    filled = [v for v in values if v]
    return sum(looks_like_code(v) for v in filled) / len(filled) if filled else 0.0


def read_rows(path: Path) -> list[list[str]]:
    try:
        check_regular_file(path)
        data = read_bounded(path, limits.TABLE_FILE_BYTES, "编码表")
        suffix = path.suffix.lower()
        if suffix in (".xlsx", ".xlsm"):
            check_zip_bounds(data, path.name, "Excel 文件")
            rows = _xlsx_rows(data, path.name)
        elif suffix in (".csv", ".tsv", ".txt"):
            rows = _csv_rows(decode_text(data, path.name)[0], path.name)
        else:
            raise IcdTableError(f"只支持 CSV 或 XLSX / only CSV and XLSX tables can be imported: {path.name}")
    except InputError as exc:
        raise IcdTableError(exc.message) from exc
    for number, row in enumerate(rows, 1):
        if len(row) > limits.TABLE_COLUMNS:
            raise IcdTableError(f"第 {number} 行有 {len(row)} 列，不像编码表 / row {number} has too many columns: {path.name}")
        if any(len(cell) > limits.TABLE_CELL_CHARS for cell in row):
            raise IcdTableError(f"第 {number} 行有超过 {limits.TABLE_CELL_CHARS} 字的单元格（引号未闭合？）/ row {number} "
                                f"has a cell too long for a code or a name (an unterminated quote?): {path.name}")
    return rows


def _bounded(rows: Iterator[list[str]], name: str) -> list[list[str]]:
    kept = []
    for row in rows:
        kept.append(row)
        if len(kept) > limits.TABLE_ROWS + 1:  # a header and every row of the largest edition
            raise IcdTableError(f"编码表超过 {limits.TABLE_ROWS} 行，远超任何版本（北京临床版约 4 万行）/ too many rows "
                                f"for an ICD-10 edition: {name}")
    return kept


def _csv_rows(text: str, name: str) -> list[list[str]]:
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel_tab if "\t" in text[:4096] else csv.excel
    try:
        return _bounded(([cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect,
                                                                               strict=True)), name)
    except csv.Error as exc:  # an unterminated quote would swallow the rest of the file into one field
        raise IcdTableError(f"CSV 格式错误（可能有未闭合的引号）/ malformed CSV: {name}: {exc}") from exc


def _xlsx_rows(data: bytes, name: str) -> list[list[str]]:
    """The first sheet's rows; openpyxl parses the XML with defusedxml (installed with MedBrief), so an entity
    or a DTD is refused."""
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            if not workbook.worksheets:
                raise IcdTableError(f"Excel 文件中没有工作表 / the workbook has no sheet: {name}")
            cells = workbook.worksheets[0].iter_rows(values_only=True)
            return _bounded((["" if cell is None else str(cell).strip() for cell in row[:limits.TABLE_COLUMNS + 1]]
                             for row in cells), name)
        finally:
            workbook.close()
    except IcdTableError:
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl and its XML parsers fail on a damaged file in many types
        raise IcdTableError(f"无法读取 Excel 文件 / cannot read XLSX: {name}: {described(exc)}") from exc


def _pick_column(header: list[str], wanted: str | None, columns: list[list[str]],
                 score: Callable[[list[str]], float], label: str) -> int:
    if wanted is not None:
        if wanted.isdigit() and 1 <= int(wanted) <= len(columns):
            return int(wanted) - 1
        if wanted in header:
            return header.index(wanted)
        raise IcdTableError(f"找不到{label}列 '{wanted}' / no such {label} column; columns are: {', '.join(header)}")
    scores = [score(column) for column in columns]
    best = max(range(len(columns)), key=lambda i: scores[i], default=-1)
    if best < 0 or scores[best] < _MIN_CODE_SHARE:
        raise IcdTableError(
            f"无法识别{label}列，请用 --code-column/--name-column 指定 / cannot detect the {label} column"
        )
    return best


def import_table(
    path: str | Path,
    name: str,
    *,
    version: str = "",
    code_column: str | None = None,
    name_column: str | None = None,
    replace: bool = False,
) -> TableInfo:
    path = Path(path)
    check_new_table_name(name, replace=replace)
    entries = read_entries(path, code_column=code_column, name_column=name_column)
    return save_table(name, version=version or path.stem, source=f"imported from {path.name}", entries=entries)


def read_entries(path: Path, *, code_column: str | None = None, name_column: str | None = None) -> list[IcdEntry]:
    """The codes and names of a CSV/XLSX table (columns detected unless named); raises IcdTableError."""
    rows = [row for row in read_rows(path) if any(row)]
    if not rows:
        raise IcdTableError(f"文件没有数据 / the table file is empty: {path.name}")
    width = max(len(row) for row in rows)
    if width < 2:
        raise IcdTableError(f"至少需要编码和名称两列 / need at least a code and a name column: {path.name}")
    rows = [row + [""] * (width - len(row)) for row in rows]
    has_header = not any(looks_like_code(cell) for cell in rows[0])
    header = rows[0] if has_header else [str(i + 1) for i in range(width)]
    body = rows[1:] if has_header else rows
    sample = body[:_SAMPLE_ROWS]
    columns = [[row[i] for row in sample] for i in range(width)]
    code_index = _pick_column(header, code_column, columns, _code_share, "编码/code")
    name_scores = [(-1.0 if i == code_index else 0.0) for i in range(width)]
    name_index = _pick_column(
        header, name_column, columns,
        lambda column: _cjk_share(column) + name_scores[columns.index(column)], "名称/name",
    )
    if name_index == code_index:
        raise IcdTableError("编码列与名称列相同 / code and name columns must differ")
    entries: list[IcdEntry] = []
    seen: set[tuple[str, str]] = set()
    bad = 0
    for row in body:
        raw_code, title = row[code_index], row[name_index]
        if not raw_code or not title:
            continue
        if not looks_like_code(raw_code):
            bad += 1
            continue
        code = normalize_code(raw_code)
        if (code, title) not in seen:  # one code may carry several names: keep them all as synonyms
            seen.add((code, title))
            entries.append(IcdEntry(code=code, name=title, level=level_of(code)))
    if not entries:
        raise IcdTableError(f"没有可导入的 ICD 编码 / no ICD-10 codes found in {path.name}")
    if len(entries) > MAX_TABLE_ROWS:
        raise IcdTableError(f"编码表有 {len(entries)} 行，远超任何版本（北京临床版约 4 万行，上限 {MAX_TABLE_ROWS}）/ "
                            f"too many rows for an ICD-10 edition: {path.name}")
    if _cjk_share([e.name for e in entries]) < _MIN_CHINESE_NAME_SHARE:
        raise IcdTableError(f"名称列大多不是中文诊断名称 / most names are not Chinese diagnosis names: {path.name}")
    if bad > len(entries):
        raise IcdTableError(f"{bad} 行编码格式不正确，多于有效行 / most rows have malformed codes: {path.name}")
    return entries
