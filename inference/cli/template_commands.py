"""``medbrief template list | show ID | check FILE``: the summary templates this ward can write with, one of them
as the model will be asked, and a template file checked before IT puts it in the department folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from inference.errors import TemplateError

if TYPE_CHECKING:
    from inference.templates.spec import SummaryTemplate


def add_parser(commands: argparse._SubParsersAction, epilog: str) -> None:
    template = commands.add_parser("template", help="summary templates: list, show, check a file", epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = template.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the built-in and department templates, usable or not (and why)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    show = actions.add_parser("show", help="a template's sections and what the model will be asked")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=run_show)
    check = actions.add_parser("check", help="check a template file: every problem as file:line: field: message")
    check.add_argument("file")
    check.set_defaults(handler=run_check)


def run_list(args: argparse.Namespace) -> int:
    from inference.templates.catalog import TemplateCatalog

    catalog = TemplateCatalog()
    if args.json:
        print(json.dumps({"folder": str(catalog.folder), "default": catalog.default_id,
                          "department_problem": catalog.department_problem,
                          "templates": [e.as_dict() for e in catalog.entries]}, ensure_ascii=False, indent=2))
        return 0
    print(f"科室模板文件夹 / department folder: {catalog.folder}")
    if catalog.department_problem:
        print(f"  ! {catalog.department_problem}")
    for entry in catalog.entries:
        where = "内置" if entry.builtin else "科室"
        mark = "*" if entry.id == catalog.default_id else " "
        if entry.template is not None:
            t = entry.template
            line = f"{mark} {t.id:<16} {t.name}  v{t.version}  {len(t.sections)} 段  {where}"
            print(line + ("" if entry.usable else f"  不可用：{entry.problem}"))
        else:
            print(f"{mark} {entry.id:<16} （{entry.file.name}）{where}  不可用：{entry.problem}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from inference.templates.catalog import TemplateCatalog

    template = TemplateCatalog().get(args.id)
    if args.json:
        print(json.dumps(template.model_dump(mode="json") | {"hash": template.content_hash}, ensure_ascii=False,
                         indent=2))
        return 0
    _describe(template)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from inference.templates.catalog import TemplateCatalog
    from inference.templates.files import read_template_file

    path = Path(args.file)
    if not path.is_file():
        raise TemplateError(f"找不到模板文件 / no such file: {path}")
    catalog = TemplateCatalog()
    template = read_template_file(path, catalog.resolve)
    if path.stem != template.id:
        raise TemplateError(f"{path.name}:1: id: 模板 id “{template.id}” 应与文件名 {path.stem} 相同")
    if any(entry.builtin and entry.id == template.id for entry in catalog.entries):
        raise TemplateError(f"{path.name}:1: id: 与内置模板 {template.id} 同名")
    print(f"{path.name}: 可用 / valid")
    _describe(template)
    return 0


def _describe(template: SummaryTemplate) -> None:
    from inference.summary.output_grammar import summary_gbnf
    from inference.summary.summarizer import build_messages
    from inference.summary.templated import template_gbnf, template_messages
    from inference.templates.catalog import DEFAULT_TEMPLATE

    print(f"{template.name}（{template.id} v{template.version}，内容哈希 {template.content_hash}"
          + (f"，继承 {template.extends}" if template.extends else "") + "）")
    for spec in template.sections:
        bound = f"≤{spec.char_bound} 字" if spec.kind == "text" else f"≤{spec.item_bound} 项" + (
            f"，≤{spec.max_chars} 字" if spec.max_chars else "")
        locks = "，锁定" if spec.locked else ("，说明锁定" if spec.lock_instructions else "")
        print(f"  【{spec.heading}】{spec.id} · {spec.kind} · {'必填' if spec.required else '可选'} · {bound}{locks}")
    default = template.id == DEFAULT_TEMPLATE  # 病历摘要 is written by its own prompt and example (summary.txt)
    grammar = summary_gbnf() if default else template_gbnf(template)
    rules = sum(1 for line in grammar.splitlines() if "::=" in line)
    print(f"约束语法 / grammar: {len(grammar)} 字符，{rules} 条规则")
    print("模型收到的指令 / what the model is asked:")
    record = "（病历原文）"
    for message in build_messages(record) if default else template_messages(template, record):
        print(f"--- {message['role']} ---\n{message['content']}")
