"""The coder-editable rule files of ``resources/icd/`` (combination rules, the patient's sex and age, chapter
sense, manifestation words), read one way: a missing, undecodable or wrong file is one ``IcdTableError``
naming the file and the row, never a traceback."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from inference.errors import IcdTableError
from inference.tsv_files import read_tsv

Rule = TypeVar("Rule")


def parse_rules(path: Path, columns: int, what: str, parse: Callable[[list[str]], Rule]) -> tuple[Rule, ...]:
    """Each row of ``path`` (``columns`` tab-separated cells) made a rule by ``parse``, which raises ValueError
    or re.error for a row it cannot take. ``what``: the file's name in Chinese, for the message."""
    try:
        rows = read_tsv(path, columns)
    except OSError as exc:
        raise IcdTableError(f"安装不完整：缺少{what}（{path.name}）/ {path.name} missing") from exc
    except ValueError as exc:  # UnicodeDecodeError
        raise IcdTableError(f"{what}（{path.name}）不是 UTF-8 文本 / {path.name} is not UTF-8 text") from exc
    rules = []
    for number, row in enumerate(rows, 1):
        try:
            rules.append(parse(row))
        except (ValueError, re.error) as exc:
            raise IcdTableError(f"{what}第 {number} 条有误 / {path.name} row {number}: {exc}") from exc
    return tuple(rules)
