"""Codes a coder can sign: combination rules over a record's diagnoses and the way down to a leaf code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inference.errors import IcdTableError
from inference.icd.coding import DIRECT_LOOKUP, MANUAL, MANUAL_NOT_LEAF, IcdAssignment, to_final_codes
from inference.icd.importer import read_entries
from inference.icd.lookup import matcher_for
from inference.icd.precision import NEEDS_CHOICE, CodeTree, load_rules, refine, refine_record
from inference.icd.table import IcdTable, TableInfo, open_table
from tests.conftest import REPO_ROOT, shared_path

SEED_DIAGNOSES = ["慢性心力衰竭急性加重", "高血压心脏病", "肾功能不全"]


@pytest.fixture(scope="module")
def who() -> IcdTable:
    return open_table("who-zh")


def _lookup_codes(diagnoses: list[str], table: IcdTable) -> list[tuple[str, str | None]]:
    matcher = matcher_for(table)
    return [(d, (matcher.lookup(d, 1) or [None])[0] and matcher.lookup(d, 1)[0].code) for d in diagnoses]


def test_the_seed_record_ends_at_leaf_codes_with_the_combination_rule_shown(who: IcdTable) -> None:
    looked_up = _lookup_codes(SEED_DIAGNOSES, who)
    assert looked_up[1][1] == "I11"  # the lookup alone stops at the category
    final = refine_record(looked_up, who)
    assert [f.code for f in final] == ["I50.9", "I11.0", "N19"]
    assert all(f.leaf for f in final)
    assert final[1].note == "同时诊断心力衰竭 → I11.0"
    assert final[1].name == "高血压心脏病伴有（充血性）心力衰竭"


def test_without_heart_failure_hypertensive_heart_disease_is_i11_9(who: IcdTable) -> None:
    final = refine_record(_lookup_codes(["高血压心脏病", "肾功能不全"], who), who)
    assert final[0].code == "I11.9" and "未诊断心力衰竭" in final[0].note


@pytest.mark.parametrize(
    ("record", "index", "code"),
    [
        ([("高血压心脏病", "I11"), ("高血压肾病", "I12"), ("心力衰竭", "I50.9"), ("慢性肾衰竭", "N18.9")], 0, "I13.2"),
        ([("高血压心脏病", "I11"), ("高血压肾病", "I12.9"), ("心力衰竭", "I50")], 1, "I13.0"),
        ([("高血压肾病", "I12"), ("慢性肾衰竭", "N18")], 0, "I12.0"),
        ([("高血压肾病", "I12")], 0, "I12.9"),
        ([("2型糖尿病", "E11"), ("糖尿病肾病", "N08.3")], 0, "E11.2"),
        ([("2型糖尿病", "E11"), ("糖尿病视网膜病变", "H36.0")], 0, "E11.3"),
        ([("1型糖尿病", "E10"), ("糖尿病周围神经病变", "G63.2")], 0, "E10.4"),
        ([("2型糖尿病", "E11.9"), ("糖尿病足病", "I79.2")], 0, "E11.5"),
        ([("2型糖尿病", "E11"), ("糖尿病肾病", "N08.3"), ("糖尿病视网膜病变", "H36.0")], 0, "E11.7"),
        ([("2型糖尿病", "E11")], 0, "E11.9"),
        ([("陈旧性脑梗死", "I63.9")], 0, "I69.3"),
        ([("脑出血后遗症", "I61")], 0, "I69.1"),
        ([("脑梗死", "I63")], 0, "I63.9"),
        ([("PCI术后", "Z95")], 0, "Z95.5"),
        ([("冠状动脉搭桥术后", "Z95")], 0, "Z95.1"),
        ([("心力衰竭", "I50")], 0, "I50.9"),
    ],
)
def test_combination_rules_and_the_way_down_to_a_leaf(
    who: IcdTable, record: list[tuple[str, str]], index: int, code: str
) -> None:
    final = refine_record(record, who)[index]
    assert final is not None and final.code == code and final.leaf, final
    assert final.reasons and final.code in who


def test_every_rule_names_codes_that_exist_in_the_bundled_table(who: IcdTable) -> None:
    rules = load_rules()
    assert len(rules) >= 20
    for rule in rules:
        targets = [rule.becomes.format(category=c) for c in ("E10", "E11", "E12", "E13", "E14")] \
            if "{category}" in rule.becomes else [rule.becomes]
        assert all(t in who for t in targets), rule


def test_a_broken_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.tsv"
    path.write_text("^I11\t^I50(\t\tI11.0\t同时诊断心力衰竭\n", encoding="utf-8")
    with pytest.raises(IcdTableError, match="第 1 条"):
        load_rules(path)
    path.write_text("^I11\t^I50\t\t\t\n", encoding="utf-8")
    with pytest.raises(IcdTableError, match="不完整|incomplete"):
        load_rules(path)


def test_a_code_the_table_cannot_take_further_is_marked_for_the_coder() -> None:
    from inference.icd.table import IcdEntry

    table = IcdTable(TableInfo("t", "", "", "", 0, ""), [
        IcdEntry("X01", "某病", "category"), IcdEntry("X01.1", "某病甲型", "subcategory"),
        IcdEntry("X01.2", "某病乙型", "subcategory")])
    final = refine("X01", "完全不同的写法", [], table)
    assert final.code == "X01" and not final.leaf and final.reasons == (NEEDS_CHOICE,)
    assert refine("X01", "某病乙型", [], table).code == "X01.2"  # the child named as the diagnosis
    assert CodeTree(table).children("X01") == ["X01.1", "X01.2"]


def test_tables_with_detail_codes_get_their_most_specific_code() -> None:
    csv = shared_path("data", "icd10", "beijing_v601", "icd10_beijing_v601.csv")
    beijing = IcdTable(TableInfo("beijing", "", "", "", 0, ""), read_entries(csv))
    final = refine_record([("慢性心力衰竭急性加重", "I50"), ("高血压心脏病", "I11"), ("肾功能不全", "N19")], beijing)
    assert [f.code for f in final] == ["I50.905", "I11.001", "N19xx02"], final
    assert final[0].name == "慢性心力衰竭" and final[0].reasons[-1] == "名称最接近 → I50.905"
    assert final[1].reasons == ("同时诊断心力衰竭 → I11.0", "唯一细目 → I11.001")
    assert all(f.leaf and f.code in beijing for f in final)
    tree = CodeTree(beijing)
    assert tree.is_leaf("I10xx02") and not tree.is_leaf("I10")


def test_final_codes_keep_the_looked_up_code_and_never_change_a_doctors_choice(who: IcdTable) -> None:
    def assignment(diagnosis: str, code: str, provenance: str = DIRECT_LOOKUP) -> IcdAssignment:
        return IcdAssignment(diagnosis, code, who.get(code).name, 0.9, provenance, [], {})

    final = to_final_codes([assignment("慢性心力衰竭", "I50.9"), assignment("高血压心脏病", "I11"),
                            assignment("2型糖尿病", "E11", MANUAL)], who)
    assert (final[1].code, final[1].refined_from, final[1].precision) == ("I11.0", "I11", "同时诊断心力衰竭 → I11.0")
    assert final[1].candidates[0].code == "I11.0"  # the final code is among the row's candidates
    assert final[2].code == "E11" and final[2].precision == MANUAL_NOT_LEAF
    restored = IcdAssignment.from_record(json.loads(json.dumps(final[1].to_record(), ensure_ascii=False)))
    assert (restored.code, restored.refined_from, restored.precision) == ("I11.0", "I11", final[1].precision)


def test_cli_icd_answers_the_field_report_query_with_leaf_codes(tmp_path: Path) -> None:
    """The issue's example as a new user runs it: a fresh data dir, nothing learned locally."""
    env = {**os.environ, "MEDBRIEF_DATA_DIR": str(tmp_path / "data"), "MEDBRIEF_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.run([sys.executable, "-m", "inference", "icd", ",".join(SEED_DIAGNOSES), "--json"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert [r["final"]["code"] for r in results] == ["I50.9", "I11.0", "N19"]
    assert results[1]["final"]["reasons"] == ["同时诊断心力衰竭 → I11.0"]
    text = subprocess.run([sys.executable, "-m", "inference", "icd", ",".join(SEED_DIAGNOSES)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, env=env).stdout
    assert "→ 编码 I11.0" in text and "同时诊断心力衰竭" in text
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.sqlite"))


def test_a_sequela_rule_leaves_a_diagnosis_that_also_states_an_acute_event(who: IcdTable) -> None:
    assert refine("I63.9", "陈旧性脑梗死", [], who).code == "I69.3"
    assert refine("I63.9", "急性脑梗塞陈旧性脑干梗塞", [], who).code == "I63.9"
