"""Prompt templates kept as editable text in ``resources/prompts/``, each with a version id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from inference.errors import GenerationError
from inference.paths import resources_dir

SUMMARY_PROMPT = "summary"  # resources/prompts/summary.txt: the summary's instructions and example
TEMPLATED_PROMPT = "templated"  # resources/prompts/templated.txt: a template's rules and example record
_SECTION = re.compile(r"^=== (\w+) ===\s*$", re.MULTILINE)
_VERSION = re.compile(r"^prompt_version:\s*(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    sections: dict[str, str]

    def section(self, name: str) -> str:
        try:
            return self.sections[name]
        except KeyError:
            raise GenerationError(f"提示词模板缺少段落 '{name}' / prompt template lacks section {name!r}") from None


def parse_prompt(text: str, source: str) -> PromptTemplate:
    version = _VERSION.search(text)
    if not version:
        raise GenerationError(f"提示词模板缺少 prompt_version / prompt template has no version: {source}")
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}
    return PromptTemplate(version=version.group(1), sections=sections)


@lru_cache(maxsize=8)
def load_prompt(name: str) -> PromptTemplate:
    path: Path = resources_dir() / "prompts" / f"{name}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GenerationError(f"找不到提示词模板 / prompt template missing: {path}") from exc
    return parse_prompt(text, str(path))
