"""The templates a ward can write with: the built-in ones (``resources/templates/``) and the department's
(``paths.templates_dir()``, put there by IT). A broken file never stops the app: it is listed as unusable with
its reason, and the others work. An optional ``department.toml`` in the folder says which templates doctors may
choose (``allowed = [...]``) and which one a new record gets (``default = "..."``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from inference.errors import TemplateError
from inference.paths import resources_dir, templates_dir
from inference.templates.files import MAX_FILE_BYTES, read_template_file
from inference.templates.spec import SummaryTemplate

DEFAULT_TEMPLATE = "summary"  # 病历摘要: the four sections, written by the classic prompt (summary.txt)
DEPARTMENT_FILE = "department.toml"
MAX_DEPARTMENT_FILES = 100


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    file: Path
    builtin: bool
    template: SummaryTemplate | None = None
    problem: str | None = None  # why it cannot be used (the file's own message, or "not allowed")
    allowed: bool = True

    @property
    def usable(self) -> bool:
        return self.template is not None and self.allowed

    def as_dict(self) -> dict[str, object]:
        template = self.template
        return {"id": self.id, "file": str(self.file), "builtin": self.builtin, "usable": self.usable,
                "allowed": self.allowed, "problem": self.problem,
                **(template.identity() | {"sections": [s.heading for s in template.sections]} if template else {})}


def builtin_dir() -> Path:
    return resources_dir() / "templates"


@lru_cache(maxsize=1)
def default_template() -> SummaryTemplate:
    """病历摘要 as its built-in file declares it (its sections' headings and LOINC codes)."""
    return read_template_file(builtin_dir() / f"{DEFAULT_TEMPLATE}.toml")


class TemplateCatalog:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else templates_dir()
        self._builtin = {path.stem: path for path in sorted(builtin_dir().glob("*.toml"),
                                                            key=lambda p: (p.stem != DEFAULT_TEMPLATE, p.stem))}
        self._department = self._department_files()
        self._read: dict[str, SummaryTemplate | TemplateError] = {}
        allowed, self.default_id, self.department_problem = self._department_settings()
        self.entries = [self._entry(template_id, path, True, allowed) for template_id, path in self._builtin.items()]
        self.entries += [self._entry(template_id, path, False, allowed) for template_id, path in self._department.items()]

    def _department_files(self) -> dict[str, Path]:
        try:
            paths = sorted(p for p in self.folder.glob("*.toml") if p.name != DEPARTMENT_FILE)[:MAX_DEPARTMENT_FILES]
        except OSError:
            return {}
        return {f"{path.stem}": path for path in paths}

    def _department_settings(self) -> tuple[set[str] | None, str, str | None]:
        path = self.folder / DEPARTMENT_FILE
        if not path.exists():
            return None, DEFAULT_TEMPLATE, None
        if not path.is_file():
            return None, DEFAULT_TEMPLATE, f"{DEPARTMENT_FILE}: 不是普通文件（已忽略，全部模板可用）"
        try:
            with path.open("rb") as handle:
                data = tomllib.loads(handle.read(MAX_FILE_BYTES).decode("utf-8"))
            allowed, default = data.get("allowed"), data.get("default", DEFAULT_TEMPLATE)
            if allowed is not None and not (isinstance(allowed, list) and all(isinstance(a, str) for a in allowed)):
                raise ValueError("allowed 应是模板编号列表")
            if not isinstance(default, str) or (allowed is not None and default not in allowed):
                raise ValueError("default 应是 allowed 中的一个模板编号")
        except RecursionError:
            return None, DEFAULT_TEMPLATE, f"{DEPARTMENT_FILE}: TOML 嵌套过深（已忽略，全部模板可用）"
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
            return None, DEFAULT_TEMPLATE, f"{DEPARTMENT_FILE}: {exc}（已忽略，全部模板可用）"
        return (set(allowed) if allowed is not None else None), default, None

    def _entry(self, file_id: str, path: Path, builtin: bool, allowed: set[str] | None) -> CatalogEntry:
        if not builtin and file_id in self._builtin:
            return CatalogEntry(file_id, path, False, problem=f"{path.name}: 与内置模板 {file_id} 同名，请改文件名和 id")
        try:
            template = self._template(file_id, 0)
        except TemplateError as exc:
            return CatalogEntry(file_id, path, builtin, problem=exc.message)
        permitted = allowed is None or template.id in allowed
        return CatalogEntry(template.id, path, builtin, template, None if permitted else "科室未开放此模板",
                            permitted)

    def resolve(self, file_id: str, depth: int = 0) -> SummaryTemplate:
        """The template a file extends (``extends = file_id``): a built-in or a department template."""
        return self._template(file_id, depth)

    def _template(self, file_id: str, depth: int) -> SummaryTemplate:
        """The template of the file named ``file_id``; one read per catalog (a chain reads its base once)."""
        if file_id not in self._read:
            builtin = file_id in self._builtin
            path = self._builtin.get(file_id) or self._department.get(file_id)
            if path is None:
                raise TemplateError(f"没有模板 {file_id}")
            try:
                template = read_template_file(path, None if builtin else self._template, depth)
                if template.id != file_id:
                    raise TemplateError(f"{path.name}:1: id: 模板 id “{template.id}” 应与文件名 {file_id} 相同")
                self._read[file_id] = template
            except TemplateError as exc:
                self._read[file_id] = exc
        found = self._read[file_id]
        if isinstance(found, TemplateError):
            raise TemplateError(found.message if depth == 0 else f"继承的模板 {file_id} 不可用：{found.message}")
        return found

    def usable(self) -> list[SummaryTemplate]:
        return [entry.template for entry in self.entries if entry.usable and entry.template is not None]

    def get(self, template_id: str | None = None) -> SummaryTemplate:
        """The usable template ``template_id`` (None: the ward's default, or 病历摘要 when that one is not usable),
        else one line saying why not."""
        if template_id is None:
            default = next((e for e in self.entries if e.id == self.default_id and e.usable), None)
            template_id = self.default_id if default is not None else DEFAULT_TEMPLATE
        entry = next((e for e in self.entries if e.id == template_id), None)
        if entry is None:
            names = "、".join(e.id for e in self.entries if e.usable)
            raise TemplateError(f"没有模板 {template_id}（可用：{names}）/ unknown template")
        if entry.template is None or not entry.allowed:
            raise TemplateError(f"模板 {template_id} 不可用：{entry.problem}")
        return entry.template
