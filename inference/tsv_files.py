"""Read the project's tab-separated resource files: ``#`` comments and blank lines skipped, short rows padded."""

from __future__ import annotations

from pathlib import Path


def read_tsv(path: Path, columns: int) -> list[list[str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split("\t")]
        rows.append((cells + [""] * columns)[:columns])
    return rows
