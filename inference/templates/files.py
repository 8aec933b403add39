"""One template file read: TOML by the standard library, checked by ``spec``, and a template that extends
another resolved against it. Every problem is one line naming the file, the line and the field.

A file that extends another takes its sections and may

- ``remove = ["id", …]`` sections,
- ``[rename]`` give a section a new heading (``id = "新标题"``),
- ``[instructions]`` give a section new instructions,
- add ``[[sections]]`` of its own (after the section named by ``after``, else at the end),

except what the template it extends locked: a section with ``locked = true`` stays as it is, one with
``lock_instructions = true`` keeps its instructions. What a section is checked for follows its kind and is not
a setting: a file that tries to turn the checks off is refused."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from inference.errors import TemplateError
from inference.templates.spec import MAX_SECTIONS, SummaryTemplate

MAX_FILE_BYTES = 256 * 1024  # 出院记录 is 4 KB; a template file is text a person writes
MAX_DEPTH = 5  # a chain of templates, each extending the one before
_TOP_KEYS = {"id", "name", "version", "description", "extends", "loinc", "remove", "rename", "instructions",
             "sections"}
_CHECK_WORDS = re.compile(r"check|review|valid|guard|ground|verify|核对|校验|检查")


def _problem(path: Path, text: str, location: tuple[Any, ...], message: str) -> TemplateError:
    line = _line_of(text, location)
    field = ".".join(str(part) for part in location) or "-"
    return TemplateError(f"{path.name}:{line}: {field}: {message}")


def _line_of(text: str, location: tuple[Any, ...]) -> int:
    """The line of ``location`` (("sections", 2, "kind")) in a TOML text; the closest line found."""
    lines = text.splitlines()
    line, start = 1, 0
    if location and location[0] == "sections" and len(location) > 1 and isinstance(location[1], int):
        tables = [i for i, row in enumerate(lines) if row.strip().startswith("[[sections]]")]
        if location[1] < len(tables):
            start = tables[location[1]]
            line = start + 1
            location = location[2:]
        else:
            location = location[:1]
    for key in (str(part) for part in location if isinstance(part, str)):
        pattern = re.compile(rf"^\s*(\[+\s*)?{re.escape(key)}\b")
        found = next((i for i in range(start, len(lines)) if pattern.match(lines[i])), None)
        if found is not None:
            line, start = found + 1, found
    return line


def read_template_file(path: Path, resolve: Callable[[str, int], SummaryTemplate] | None = None,
                       depth: int = 0) -> SummaryTemplate:
    """The template in ``path``; ``resolve(id, depth)`` gives the template it extends (None: it may not)."""
    if not path.is_file():  # a FIFO named ward.toml would block the read, a device never end
        raise TemplateError(f"{path.name}: 不是普通文件")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TemplateError(f"{path.name}: 无法读取模板文件（{exc.strerror or exc}）") from None
    if len(raw) > MAX_FILE_BYTES:
        raise TemplateError(f"{path.name}: 模板文件超过 {MAX_FILE_BYTES // 1024} KB")
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise TemplateError(f"{path.name}: 模板文件不是 UTF-8 文本") from None
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"line (\d+)", str(exc))
        raise TemplateError(f"{path.name}:{where.group(1) if where else 1}: TOML 格式错误（{exc}）") from None
    except RecursionError:  # [[[[…]]]] 60,000 deep: tomllib reads nesting by recursion
        raise TemplateError(f"{path.name}:1: TOML 嵌套过深") from None
    return _template(path, text, data, resolve, depth)


def _template(path: Path, text: str, data: dict[str, Any], resolve: Callable[[str, int], SummaryTemplate] | None,
              depth: int) -> SummaryTemplate:
    for key in data:
        if key not in _TOP_KEYS:
            if _CHECK_WORDS.search(key.lower()):
                raise _problem(path, text, (key,), "模板不能关闭或改变核对：每个段落按其类型对照原文核对，这不是模板的设置")
            raise _problem(path, text, (key,), f"未知字段（可用：{'、'.join(sorted(_TOP_KEYS))}）")
    sections = data.get("sections", [])
    if not isinstance(sections, list) or len(sections) > MAX_SECTIONS:
        raise _problem(path, text, ("sections",), f"段落最多 {MAX_SECTIONS} 个")
    for index, section in enumerate(sections):
        for key in section if isinstance(section, dict) else ():
            if _CHECK_WORDS.search(key.lower()):
                raise _problem(path, text, ("sections", index, key),
                               "模板不能关闭或改变核对：每个段落按其类型对照原文核对，这不是模板的设置")
    base_id = data.get("extends")
    if base_id is not None:
        if resolve is None or not isinstance(base_id, str):
            raise _problem(path, text, ("extends",), "内置模板不能继承其他模板")
        if depth >= MAX_DEPTH:
            raise _problem(path, text, ("extends",), f"继承层数超过 {MAX_DEPTH}（是否循环继承？）")
        base = resolve(base_id, depth + 1)
        data = {"loinc": base.loinc, **data, "sections": _inherited(path, text, base, data)}
    elif any(key in data for key in ("remove", "rename", "instructions")):
        key = next(key for key in ("remove", "rename", "instructions") if key in data)
        raise _problem(path, text, (key,), "只有继承其他模板（extends）的模板才能删除、改名或改写段落")
    _no_repeats(path, text, data.get("sections", []))
    fields = {key: value for key, value in data.items() if key not in ("remove", "rename", "instructions")}
    try:
        return SummaryTemplate.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise _problem(path, text, tuple(error["loc"]), _in_words(error)) from None


def _inherited(path: Path, text: str, base: SummaryTemplate, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The base's sections as dicts, with this file's removals, renames, instructions and additions."""
    sections = [section.model_dump(exclude_none=True) for section in base.sections]
    by_id = {section["id"]: section for section in sections}
    remove, rename, instructions = data.get("remove", []), data.get("rename", {}), data.get("instructions", {})
    if not isinstance(remove, list) or not isinstance(rename, dict) or not isinstance(instructions, dict):
        raise _problem(path, text, ("remove",), "remove 是段落编号列表，rename 与 instructions 是表")
    for key, changes in (("remove", dict.fromkeys(remove, "")), ("rename", rename), ("instructions", instructions)):
        for section_id, value in changes.items():
            section = by_id.get(section_id)
            if section is None:
                raise _problem(path, text, (key,), f"模板 {base.id} 没有段落 {section_id}")
            if section.get("locked") or (key == "instructions" and section.get("lock_instructions")):
                raise _problem(path, text, (key,), f"模板 {base.id} 锁定了段落 {section_id}，不能{_VERBS[key]}")
            if key == "rename":
                section["heading"] = value
            elif key == "instructions":
                section["instructions"] = value
    sections = [section for section in sections if section["id"] not in remove]
    for index, added in enumerate(data.get("sections", [])):
        if not isinstance(added, dict):
            raise _problem(path, text, ("sections", index), "段落必须是表 [[sections]]")
        added = dict(added)
        after = added.pop("after", None)
        position = next((i + 1 for i, s in enumerate(sections) if s["id"] == after), None)
        if after is not None and position is None:
            raise _problem(path, text, ("sections", index, "after"), f"没有段落 {after}")
        sections.insert(len(sections) if position is None else position, added)
    return sections


def _no_repeats(path: Path, text: str, sections: list[Any]) -> None:
    """Two sections with one id or one heading: the second named where it stands."""
    for key, what in (("id", "编号"), ("heading", "标题")):
        seen: set[str] = set()
        for index, section in enumerate(sections):
            value = section.get(key) if isinstance(section, dict) else None
            if isinstance(value, str) and value in seen:
                raise _problem(path, text, ("sections", index, key), f"段落{what}重复：{value}")
            if isinstance(value, str):
                seen.add(value)


def _in_words(error: Any) -> str:
    """pydantic's complaint, in the words an IT admin reads."""
    context = error.get("ctx") or {}
    words = {
        "missing": "缺少必填字段",
        "extra_forbidden": "未知字段",
        "literal_error": "类型只能是 text、values、diagnoses、medications、dates 之一",
        "string_too_long": f"过长（最多 {context.get('max_length')} 字）",
        "string_too_short": "不能为空",
        "too_long": f"过多（最多 {context.get('max_length')} 个）",
        "too_short": "至少要有一个",
        "string_pattern_mismatch": f"格式不对（应符合 {context.get('pattern')}）",
        "greater_than_equal": f"不能小于 {context.get('ge')}",
        "less_than_equal": f"不能大于 {context.get('le')}",
    }
    return words.get(error["type"], str(error["msg"]).removeprefix("Value error, "))


_VERBS = {"remove": "删除", "rename": "改名", "instructions": "改写说明"}

