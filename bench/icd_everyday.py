"""Everyday diagnoses as wards write them, coded as a coder would sign them: the development set of issue #30.

``build`` makes ``tests/data/icd_everyday.tsv`` from CHIP-CDN **train** (never dev): the most frequent standard
terms among strings that name exactly one diagnosis, with up to two of their raw wordings each, each term's
北京临床版 code taken to the WHO code it refines (E11.201 → E11.2, I10xx02 → I10); then the field report's own
cases (``FIELD_CASES``), which carry a patient where the code depends on it. ``score`` runs the whole coding
path the pipeline runs — the lookup, the coder's rules, the combination rules, down to the leaf — over every
row with the bundled WHO table and reports the share right at category (3 characters) and at leaf, the wrong
ones by error class, and the time per query.

    .venv/bin/python bench/icd_everyday.py build [--shared ../shared] [--terms 160]
    .venv/bin/python bench/icd_everyday.py score [--show-wrong]
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.icd.table import open_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEV_SET = ROOT / "tests" / "data" / "icd_everyday.tsv"
HEADER = """# Everyday inpatient diagnoses as wards write them, with the WHO ICD-10 code a coder signs for each.
# Rows from CHIP-CDN train (CBLUE, Sherlock-coder/CBLUE data/CHIP-CDN, commit 8f879e36): the most frequent
# standard terms among strings naming exactly one diagnosis, up to two raw wordings each; the term's code in
# ICD-10 北京临床版 v6.01 (same source) taken to the WHO code it refines. Then the field report's cases (source
# "field"). Built by bench/icd_everyday.py build; CHIP-CDN dev is not used here (it stays a measurement).
# Columns: wording, patient (sex/age as a record would state it, or -), WHO code, source
"""
# The field report's cases (issue #30) and the classes of error it names: one disease split, a chapter the
# words do not mean, detail dropped, the patient ignored, the opposite of the words.
FIELD_CASES = [
    ("2型糖尿病肾病", "-", "E11.2"),
    ("2型糖尿病性肾病", "-", "E11.2"),
    ("2型糖尿病视网膜病变", "-", "E11.3"),
    ("2型糖尿病周围神经病变", "-", "E11.4"),
    ("1型糖尿病酮症酸中毒", "-", "E10.1"),
    ("急性肾损伤", "-", "N17.9"),
    ("胆囊结石伴急性胆囊炎", "-", "K80.0"),
    ("胆囊结石伴慢性胆囊炎", "-", "K80.1"),
    ("慢性肾脏病5期", "-", "N18.5"),
    ("慢性肾脏病3期", "-", "N18.3"),
    ("皮肤黄染", "患者男性，52岁", "R17.0"),
    ("脓毒性休克", "-", "R57.2"),
    ("高血压病3级", "-", "I10"),
    ("冠状动脉粥样硬化性心脏病", "-", "I25.1"),
    ("慢性阻塞性肺疾病急性加重", "-", "J44.1"),
    ("脑梗死后遗症", "-", "I69.3"),
    # Everyday inpatient diagnoses of the same classes, written as wards write them.
    ("2型糖尿病", "-", "E11.9"),
    ("2型糖尿病伴周围血管病变", "-", "E11.5"),
    ("2型糖尿病性周围神经病", "-", "E11.4"),
    ("糖尿病酮症酸中毒", "-", "E14.1"),
    ("高血压性心脏病", "-", "I11.9"),
    ("高血压肾病", "-", "I12.9"),
    ("慢性心力衰竭", "-", "I50.9"),
    ("急性左心衰竭", "-", "I50.1"),
    ("阵发性心房颤动", "-", "I48.0"),
    ("持续性心房颤动", "-", "I48.1"),
    ("心房颤动", "-", "I48.9"),
    ("冠心病", "-", "I25.1"),
    ("不稳定型心绞痛", "-", "I20.0"),
    ("急性心肌梗死", "-", "I21.9"),
    ("心源性休克", "-", "R57.0"),
    ("肺栓塞", "-", "I26.9"),
    ("肺炎", "-", "J18.9"),
    ("急性上呼吸道感染", "-", "J06.9"),
    ("慢性阻塞性肺疾病", "-", "J44.9"),
    ("支气管哮喘", "-", "J45.9"),
    ("急性呼吸衰竭", "-", "J96.0"),
    ("急性胰腺炎", "-", "K85.9"),
    ("急性胆源性胰腺炎", "-", "K85.1"),
    ("急性阑尾炎", "-", "K35.9"),
    ("胆总管结石伴胆管炎", "-", "K80.3"),
    ("胆囊结石", "-", "K80.2"),
    ("急性胆囊炎", "-", "K81.0"),
    ("慢性胆囊炎", "-", "K81.1"),
    ("肝硬化", "-", "K74.6"),
    ("上消化道出血", "-", "K92.2"),
    ("胃溃疡伴出血", "-", "K25.4"),
    ("慢性胃炎", "-", "K29.5"),
    ("肠梗阻", "-", "K56.7"),
    ("缺铁性贫血", "-", "D50.9"),
    ("泌尿道感染", "-", "N39.0"),
    ("急性肾衰竭", "-", "N17.9"),
    ("慢性肾脏病4期", "-", "N18.4"),
    ("肾结石", "-", "N20.0"),
    ("前列腺增生", "患者男性，72岁", "N40"),
    ("子宫肌瘤", "患者女性，45岁", "D25.9"),
    ("妊娠期糖尿病", "患者女性，28岁", "O24.4"),
    ("甲状腺功能减退症", "-", "E03.9"),
    ("低钾血症", "-", "E87.6"),
    ("脑出血", "-", "I61.9"),
    ("短暂性脑缺血发作", "-", "G45.9"),
    ("帕金森病", "-", "G20"),
    ("癫痫", "-", "G40.9"),
    ("骨质疏松症", "-", "M81.9"),
    ("股骨颈骨折", "-", "S72.0"),
    ("带状疱疹", "-", "B02.9"),
    ("脓毒症", "-", "A41.9"),
    ("慢性乙型病毒性肝炎", "-", "B18.1"),
]


def _who_code(beijing_code: str, who: set[str]) -> str | None:
    """The WHO code a 北京临床版 code refines: itself, its subcategory (4 characters) or its category."""
    for candidate in (beijing_code, beijing_code[:5], beijing_code[:3]):
        if candidate in who:
            return candidate
    return None


def build(shared: Path, terms: int) -> None:
    from inference.icd.training.corpus import read_term_codes, read_training_set, record_terms

    train = read_training_set(shared / "eval" / "chip_cdn" / "CHIP-CDN_train.json")
    term_codes = read_term_codes(shared / "data" / "icd10" / "beijing_v601" / "icd10_beijing_v601.csv")
    who = {entry.code for entry in open_table("who-zh").entries}
    wordings: dict[str, list[str]] = {}
    for record in train:
        found = record_terms(record)
        text = record["text"].strip()
        if len(found) == 1 and found[0] in term_codes and 2 <= len(text) <= 40 and "##" not in text:
            wordings.setdefault(found[0], []).append(text)
    frequent = sorted(wordings, key=lambda term: (-len(wordings[term]), term))
    rows = []
    for term in frequent:
        if "/" in term_codes[term]:
            continue  # a morphology code (M81400/3): not a diagnosis code of the WHO table
        code = _who_code(term_codes[term], who)
        if code is None:
            continue
        for text in list(dict.fromkeys(wordings[term]))[:2]:
            rows.append((text, "-", code, f"CHIP-CDN train: {term}"))
        if len({row[2] for row in rows}) >= terms:
            break
    rows += [(text, patient, code, "field") for text, patient, code in FIELD_CASES]
    DEV_SET.parent.mkdir(parents=True, exist_ok=True)
    DEV_SET.write_text(HEADER + "".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    print(f"{len(rows)} rows ({len(rows) - len(FIELD_CASES)} from CHIP-CDN train) → {DEV_SET}")


def read_dev_set(path: Path = DEV_SET) -> list[tuple[str, str, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            text, patient, code, source = line.split("\t")
            rows.append((text, patient, code, source))
    return rows


def code_one(text: str, patient_words: str, table) -> str | None:  # type: ignore[no-untyped-def]
    """The final code the pipeline's coding path gives one diagnosis string without the model."""
    from inference.icd.coding import direct_assignment, to_final_codes

    try:
        from inference.record.patient import patient_of
    except ImportError:  # an older checkout: no patient
        def patient_of(_words: str) -> None:  # type: ignore[misc]
            return None

    patient = patient_of(patient_words) if patient_words != "-" else None
    takes_patient = "patient" in inspect.signature(direct_assignment).parameters  # an older checkout's did not
    assignment = to_final_codes([direct_assignment(text, table, **({"patient": patient} if takes_patient else {}))],
                                table)[0]
    return assignment.code


def score(show_wrong: bool) -> dict[str, object]:
    from inference.icd.precision import is_leaf

    table = open_table("who-zh")
    rows = read_dev_set()
    code_one(rows[0][0], "-", table)  # the index is built once, not timed
    wrong, right_category, right_leaf, times = [], 0, 0, []
    for text, patient, gold, source in rows:
        started = time.perf_counter()
        code = code_one(text, patient, table) or ""
        times.append(time.perf_counter() - started)
        right_category += code[:3] == gold[:3]
        # A term coded at a category the WHO table subdivides (骨坏死 M87) is right at any leaf under it.
        leaf_right = code == gold or (not is_leaf(gold, table) and code.startswith(gold) and is_leaf(code, table))
        right_leaf += leaf_right
        if not leaf_right:
            wrong.append({"text": text, "gold": gold, "got": code, "source": source,
                          "class": "chapter" if code[:1] != gold[:1] else "category" if code[:3] != gold[:3]
                          else "leaf"})
    n = len(rows)
    result = {"rows": n, "category": round(right_category / n, 4), "leaf": round(right_leaf / n, 4),
              "wrong_by_class": dict(Counter(w["class"] for w in wrong)),
              "ms_per_query": round(1000 * sum(times) / n, 1),
              "field_cases_right": sum(1 for t, _p, g, s in rows if s == "field") - sum(
                  1 for w in wrong if w["source"] == "field")}
    print(json.dumps(result, ensure_ascii=False))
    if show_wrong:
        for item in wrong:
            print(json.dumps(item, ensure_ascii=False))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("build")
    made.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    made.add_argument("--terms", type=int, default=160)
    scored = commands.add_parser("score")
    scored.add_argument("--show-wrong", action="store_true")
    args = parser.parse_args()
    if args.command == "build":
        build(args.shared, args.terms)
    else:
        score(args.show_wrong)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
