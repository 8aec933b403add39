"""Summary templates as files: the built-ins, a department's own (inheritance, locking, the allowed list), and
every way a template file can be wrong — each one line naming the file, the line and the field, and nothing
else affected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference.cli.main import main
from inference.errors import TemplateError
from inference.record.summary import SECTIONS
from inference.summary.templated import template_gbnf, template_messages
from inference.templates.catalog import DEFAULT_TEMPLATE, TemplateCatalog, builtin_dir
from inference.templates.files import read_template_file
from inference.templates.spec import MAX_SECTIONS

BUILTINS = ("summary", "discharge", "first_course", "handover")


def _section(section_id: str = "notes", heading: str = "备注", kind: str = "text", **extra: object) -> str:
    lines = ["[[sections]]", f'id = "{section_id}"', f'heading = "{heading}"', f'kind = "{kind}"',
             'instructions = "照抄原文。"']
    lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def _write(folder: Path, template_id: str, body: str, head: str = "") -> Path:
    path = folder / f"{template_id}.toml"
    path.write_text(f'id = "{template_id}"\nname = "测试模板"\nversion = "1"\n{head}\n{body}', encoding="utf-8")
    return path


def test_the_built_in_templates_load_and_the_default_declares_the_four_sections(department: Path) -> None:
    catalog = TemplateCatalog()
    assert [entry.id for entry in catalog.entries] == list(BUILTINS)
    assert all(entry.usable and entry.builtin for entry in catalog.entries)
    default = catalog.get(None)
    assert default.id == DEFAULT_TEMPLATE
    assert [(s.id, s.heading) for s in default.sections] == SECTIONS  # the file and the four sections agree
    assert [s.kind for s in default.sections] == ["text", "text", "values", "diagnoses"]
    discharge = catalog.get("discharge")
    assert [s.heading for s in discharge.sections] == ["入院日期", "出院日期", "入院情况", "入院诊断", "诊疗经过",
                                                      "出院诊断", "出院情况", "出院医嘱"]
    assert {s.kind for s in discharge.sections} == {"dates", "text", "diagnoses", "medications"}
    assert [s.heading for s in catalog.get("first_course").sections][::2] == ["病例特点", "初步诊断", "诊疗计划"]
    assert [s.heading for s in catalog.get("handover").sections] == ["诊断", "目前情况", "需重点关注", "待办"]


def test_every_built_in_grammar_builds_and_its_prompt_shows_each_section(department: Path) -> None:
    for template in TemplateCatalog().usable():
        grammar = template_gbnf(template, ("mg/L", "μmol/L"))
        assert "root ::=" in grammar
        if any(s.kind == "values" for s in template.sections):
            assert '"\\"μmol/L\\""' in grammar  # units as the record writes them, not as JSON escapes
        system = template_messages(template, "病历")[0]["content"]
        assert all(f"{s.id}（{s.heading}" in system for s in template.sections)


def test_the_handover_reads_aloud_in_under_a_minute(department: Path) -> None:
    """Read aloud at 4.5 characters a second, a minute is 270 characters: every section of the handover has a bound
    in characters (a list's shared among its items in the grammar), and together they stay inside."""
    handover = TemplateCatalog().get("handover")
    assert all(s.max_chars for s in handover.sections)
    assert sum(s.char_bound for s in handover.sections) <= 270
    grammar = template_gbnf(handover)
    assert "ExamItemWatch-name" in grammar and "Diagnosis" in grammar  # the bounded lists' own item rules


def test_a_list_bound_in_characters_leaves_room_for_each_item(department: Path) -> None:
    path = _write(department, "ward", _section(kind="values", max_items=10, max_chars=50))
    with pytest.raises(TemplateError, match=r"ward.toml:5: sections.0: max_chars 太小：10 项每项至少 8 字"):
        read_template_file(path)


@pytest.mark.parametrize(("body", "line", "field", "words"), [
    ("", 1, "sections", "缺少必填字段"),
    (_section("a") + _section("a", "别的"), 11, "sections.1.id", "段落编号重复：a"),
    (_section("a") + _section("b", "备注"), 12, "sections.1.heading", "段落标题重复：备注"),
    (_section(kind="pictures"), 8, "sections.0.kind", "类型只能是"),
    (_section(example="患者男性，68岁，因胸闷3年入院，BP 150/90mmHg，HR 98次/分，肌酐 138 μmol/L"), 10,
     "sections.0.example", "完整病例"),
    ("".join(_section(f"s{i}", f"段{i}") for i in range(200)), 5, "sections", f"最多 {MAX_SECTIONS} 个"),
    (_section(checks=False), 10, "sections.0.checks", "模板不能关闭或改变核对"),
    (_section(max_items=5), 10, "sections.0.max_items", "文本段落用 max_chars"),
    (_section(heading="【出院诊断】"), 7, "sections.0.heading", "格式不对"),
], ids=["no sections", "duplicate ids", "duplicate headings", "unknown kind", "a whole patient as example",
        "200 sections", "checks off in a section", "bound of the wrong kind", "brackets in a heading"])
def test_a_bad_template_is_one_line_naming_file_line_and_field(department: Path, body: str, line: int, field: str,
                                                               words: str) -> None:
    path = _write(department, "ward", body)
    with pytest.raises(TemplateError) as caught:
        read_template_file(path)
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith(f"ward.toml:{line}: {field}: "), message
    assert words in message


def test_a_template_cannot_turn_off_the_checks_at_the_top_either(department: Path) -> None:
    path = _write(department, "ward", _section(), head="skip_validation = true")
    with pytest.raises(TemplateError, match=r"^ward.toml:4: skip_validation: 模板不能关闭或改变核对"):
        read_template_file(path)
    unknown = _write(department, "other", _section(), head="colour = 'red'")
    with pytest.raises(TemplateError, match=r"^other.toml:4: colour: 未知字段"):
        read_template_file(unknown)


@pytest.mark.parametrize(("raw", "words"), [
    (b'id = "ward"\nname = [\n', "TOML 格式错误"),
    ("id = 'ward'".encode("gbk") + b"\nname = '\xb3\xf6'\n", "不是 UTF-8"),
    (b"# " + b"x" * 300_000, "超过 256 KB"),
    (b"id = " + b"[" * 60_000 + b"]" * 60_000, "TOML 嵌套过深"),
    (b"a = " + b"{x = " * 20_000 + b"1" + b"}" * 20_000, "TOML 嵌套过深"),
], ids=["broken TOML", "not UTF-8", "too large", "nested arrays", "nested tables"])
def test_a_file_that_is_not_a_template_is_one_line(department: Path, raw: bytes, words: str) -> None:
    path = department / "ward.toml"
    path.write_bytes(raw)
    with pytest.raises(TemplateError, match=words):
        read_template_file(path)


def test_a_department_template_extends_a_built_in(department: Path) -> None:
    _write(department, "cardio_discharge", _section("cardiac_echo", "心脏超声", "values", after="hospital_course"),
           head='extends = "discharge"\nremove = ["admission_condition"]\n[rename]\nhospital_course = "住院经过"\n'
                '[instructions]\ndischarge_condition = "出院时症状、心功能分级和生命体征，照抄原文。"\n')
    template = TemplateCatalog().get("cardio_discharge")
    assert template.extends == "discharge" and template.loinc == "18842-5"
    assert [s.heading for s in template.sections] == ["入院日期", "出院日期", "入院诊断", "住院经过", "心脏超声",
                                                     "出院诊断", "出院情况", "出院医嘱"]
    assert template.section("discharge_condition").instructions.startswith("出院时症状、心功能分级")
    assert template.content_hash != TemplateCatalog().get("discharge").content_hash


@pytest.mark.parametrize(("head", "words"), [
    ('extends = "discharge"\nremove = ["discharge_diagnoses"]', "锁定了段落 discharge_diagnoses，不能删除"),
    ('extends = "discharge"\n[rename]\nadmission_date = "入院时间"', "锁定了段落 admission_date，不能改名"),
    ('extends = "discharge"\n[instructions]\ndischarge_orders = "写出院带药"', "锁定了段落 discharge_orders，不能改写说明"),
    ('extends = "discharge"\nremove = ["no_such"]', "没有段落 no_such"),
    ('extends = "nowhere"', "没有模板 nowhere"),
    ('remove = ["diagnoses"]', "只有继承其他模板"),
], ids=["remove a locked section", "rename a locked section", "re-instruct locked instructions", "unknown section",
        "unknown base", "remove without extends"])
def test_what_a_template_locked_stays_as_it_is(department: Path, head: str, words: str) -> None:
    _write(department, "ward", _section("ward_notes", "病区备注"), head=head)
    entry = next(e for e in TemplateCatalog().entries if e.id == "ward")
    assert not entry.usable and words in str(entry.problem)
    assert "\n" not in str(entry.problem)


def test_a_broken_template_is_listed_as_unusable_and_the_others_work(department: Path) -> None:
    _write(department, "broken", _section(kind="pictures"))
    _write(department, "loop_a", _section("x", "甲"), head='extends = "loop_b"')
    _write(department, "loop_b", _section("y", "乙"), head='extends = "loop_a"')
    _write(department, "discharge", _section())  # the name of a built-in
    _write(department, "mismatch", _section()).write_text(
        'id = "other"\nname = "名"\nversion = "1"\n' + _section(), encoding="utf-8")
    _write(department, "good", _section())
    catalog = TemplateCatalog()
    problems = {e.file.name: e.problem for e in catalog.entries if not e.usable}
    assert set(problems) == {"broken.toml", "loop_a.toml", "loop_b.toml", "discharge.toml", "mismatch.toml"}
    assert "继承层数超过" in str(problems["loop_a.toml"])
    assert "与内置模板 discharge 同名" in str(problems["discharge.toml"])
    assert catalog.get("good").name == "测试模板"
    assert catalog.get("discharge").name == "出院记录"  # the built-in, untouched
    with pytest.raises(TemplateError, match="模板 broken 不可用：broken.toml:8: sections.0.kind"):
        catalog.get("broken")


def test_a_fifo_or_a_folder_named_like_a_template_never_blocks_the_app(department: Path) -> None:
    import os

    os.mkfifo(department / "pipe.toml")
    (department / "folder.toml").mkdir()
    os.mkfifo(department / "department.toml")
    catalog = TemplateCatalog()  # would wait for a writer forever if it opened the FIFO
    problems = {e.file.name: e.problem for e in catalog.entries if not e.usable}
    assert problems == {"pipe.toml": "pipe.toml: 不是普通文件", "folder.toml": "folder.toml: 不是普通文件"}
    assert "不是普通文件" in str(catalog.department_problem) and len(catalog.usable()) == len(BUILTINS)


def test_the_department_chooses_the_allowed_templates_and_the_default(department: Path) -> None:
    _write(department, "ward", _section())
    (department / "department.toml").write_text('allowed = ["discharge", "ward"]\ndefault = "ward"\n', encoding="utf-8")
    catalog = TemplateCatalog()
    assert catalog.get(None).id == "ward"
    assert [t.id for t in catalog.usable()] == ["discharge", "ward"]
    with pytest.raises(TemplateError, match="模板 handover 不可用：科室未开放此模板"):
        catalog.get("handover")
    (department / "department.toml").write_bytes(b"allowed = " + b"[" * 60_000 + b"]" * 60_000)
    assert "嵌套过深" in str(TemplateCatalog().department_problem) and TemplateCatalog().get(None).id == DEFAULT_TEMPLATE
    (department / "department.toml").write_text('allowed = "everything"\n', encoding="utf-8")
    broken = TemplateCatalog()
    assert "allowed 应是模板编号列表" in str(broken.department_problem)
    assert len(broken.usable()) == len(BUILTINS) + 1  # a broken department file restricts nothing
    assert broken.get(None).id == DEFAULT_TEMPLATE


def test_the_hash_is_of_what_the_template_asks_not_of_its_layout(department: Path) -> None:
    one = read_template_file(_write(department, "ward", _section()))
    two = read_template_file(_write(department, "ward", "# a comment\n\n" + _section().replace(" = ", "=")))
    three = read_template_file(_write(department, "ward", _section().replace("照抄原文。", "照抄原文！")))
    assert one.content_hash == two.content_hash != three.content_hash


@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: t.encode("utf-8")))
def test_any_bytes_as_a_template_file_are_a_template_or_one_line(raw: bytes) -> None:
    folder = Path(__import__("tempfile").mkdtemp())
    path = folder / "fuzz.toml"
    path.write_bytes(raw)
    try:
        read_template_file(path)
    except TemplateError as exc:
        assert "\n" not in exc.message and exc.message.startswith("fuzz.toml")


@given(st.dictionaries(st.sampled_from(["id", "heading", "kind", "instructions", "max_chars", "max_items", "example",
                                        "locked", "after", "required"]),
                       st.one_of(st.text(max_size=30), st.integers(-5, 5000), st.booleans(), st.none(),
                                 st.lists(st.integers(), max_size=3)), max_size=8))
def test_any_section_table_is_a_template_or_one_line(section: dict[str, object]) -> None:
    import tomllib

    body = "[[sections]]\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in section.items()
                                      if v is not None)
    try:
        tomllib.loads(body)
    except tomllib.TOMLDecodeError:
        return
    folder = Path(__import__("tempfile").mkdtemp())
    path = _write(folder, "fuzz", body)
    try:
        read_template_file(path)
    except TemplateError as exc:
        assert "\n" not in exc.message and exc.message.startswith("fuzz.toml:")


def test_the_template_commands(department: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(department, "broken", _section(kind="pictures"))
    assert main(["template", "list"]) == 0
    listing = capsys.readouterr().out
    assert "交班摘要" in listing and "broken.toml" in listing and "不可用：broken.toml:8: sections.0.kind" in listing
    assert main(["template", "show", "discharge"]) == 0
    shown = capsys.readouterr().out
    assert "【出院医嘱】discharge_orders · medications" in shown and "约束语法 / grammar:" in shown
    assert "--- system ---" in shown and "--- assistant ---" in shown  # the example exchange
    assert main(["template", "show", "nowhere"]) == 12
    assert "没有模板 nowhere" in capsys.readouterr().err
    good = _write(department.parent, "ward", _section(), head='extends = "handover"')
    assert main(["template", "check", str(good)]) == 0
    assert "ward.toml: 可用" in capsys.readouterr().out
    assert main(["template", "check", str(department / "broken.toml")]) == 12
    assert capsys.readouterr().err.strip() == "medbrief: broken.toml:8: sections.0.kind: 类型只能是 text、values、" \
                                              "diagnoses、medications、dates 之一"
    listed = json.loads((main(["template", "list", "--json"]), capsys.readouterr().out)[1])
    assert {t["id"] for t in listed["templates"] if t["usable"]} == set(BUILTINS)


def test_summarize_with_an_unknown_template_fails_before_any_model_loads(department: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    record = department / "record.txt"
    record.write_text("主诉：胸闷。", encoding="utf-8")
    assert main(["summarize", str(record), "--template", "nowhere", "--model", str(department / "none.gguf")]) == 12
    assert "没有模板 nowhere" in capsys.readouterr().err
    (department / "department.toml").write_text('allowed = ["summary"]\n', encoding="utf-8")
    assert main(["summarize", "--batch", str(department), "--template", "handover",
                 "--model", str(department / "none.gguf")]) == 12
    assert "模板 handover 不可用：科室未开放此模板" in capsys.readouterr().err
    assert not (department / "medbrief-summaries").exists()  # refused before anything was written


def test_the_built_in_files_are_the_shipped_ones() -> None:
    assert sorted(p.stem for p in builtin_dir().glob("*.toml")) == sorted(BUILTINS)


@pytest.mark.parametrize(("template_field", "code", "words"), [
    (5, 3, "摘要格式不对"),
    ({"name": "交班摘要"}, 3, "摘要格式不对"),
    ({"id": "nowhere", "hash": "x"}, 12, "没有模板 nowhere"),
    ({"id": "handover", "hash": "0" * 16}, 12, "该模板已更改"),
], ids=["not an object", "no id", "unknown template", "template changed since"])
def test_validate_refuses_a_templates_summary_it_cannot_read_in_one_line(department: Path, template_field: object,
                                                                        code: int, words: str,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    summary = department / "summary.json"
    summary.write_text(json.dumps({"template": template_field, "sections": []}, ensure_ascii=False), encoding="utf-8")
    record = department / "record.txt"
    record.write_text("主诉：胸闷。", encoding="utf-8")
    assert main(["validate", str(summary), "--source", str(record), "--table", "who-zh"]) == code
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
