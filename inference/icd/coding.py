"""ICD-10 coding of a summary's diagnoses through the model's function calls.

Round by round the model calls ``get_icd_code`` (Qwen's ``<tool_call>`` format, grammar-constrained so
every call parses), we run the lookup against the active table and answer with tool messages, until
the model states one code per diagnosis. Rounds are bounded. A stated code that is not in the active
table is rejected; a diagnosis the model did not settle is looked up directly and marked so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from inference.errors import GenerationError
from inference.icd.lookup import Candidate, lookup_provenance, matcher_for
from inference.icd.patient_rules import patient_conflict
from inference.icd.precision import is_leaf, refine_record
from inference.icd.reading import COMBINATION, DETAIL, SENSE
from inference.icd.table import IcdTable
from inference.llm.engine import ChatEngine, GenerationResult
from inference.llm.grammar import gbnf_from_json_schema
from inference.llm.tool_calls import Tool, ToolCall, parse_tool_calls, run_tool_call
from inference.progress import CODING, RunContext
from inference.record.patient import Patient

MAX_ROUNDS = 5
# The model chooses among the close candidates only: within this much of the best lookup score, top 3.
CHOICE_MARGIN = 0.15
CHOICE_LIMIT = 3
TOP_K = 5
FUNCTION_NAME = "get_icd_code"

SYSTEM_PROMPT = (
    "你是医院病案室的ICD-10编码助手。必须先对每一个诊断调用 get_icd_code 函数查询编码，"
    "再根据查询结果为每个诊断选定一个编码。只能使用查询结果中出现的编码，不得自行编写编码。"
)
FINAL_INSTRUCTION = '请根据查询结果为每个诊断选定一个最合适的编码，只输出 JSON：{"诊断": "编码", …}'

# Provenance of a chosen code, and how the CLI and the desktop name it.
MODEL_TOOL_CALL = "model_tool_call"
DIRECT_LOOKUP = "direct_lookup"
MANUAL = "manual"
PROVENANCE_LABELS = {MODEL_TOOL_CALL: "模型函数调用", DIRECT_LOOKUP: "直接查询", MANUAL: "医生选择"}
MANUAL_NOT_LEAF = "所选编码下还有亚目，请选择到末级编码"

# How a candidate was found, in the words a doctor reads (the lookup's own names stay in the tooltip and the log).
MATCH_LABELS = {
    "exact_name": "名称精确匹配", "lexicon_synonym": "同义词", "learned_synonym": "同义词（病例学习）",
    "fuzzy_name": "名称相近", "fuzzy_lexicon": "同义词相近", "fuzzy_synonym": "同义词相近", "learned_cue": "词语提示",
    "similar_example": "相似病例", "similar_meaning": "语义相近", "refined": "合并编码规则", "code": "按编码检索",
    COMBINATION: "编码表标题所述的合并情况", DETAIL: "所述分期/分型", SENSE: "编码规则（词义）",
}


def match_label(match: str) -> str:
    """Why a candidate was proposed, in words: 名称精确匹配; a coder's rule with what it read (伴有肾)."""
    kind, _, detail = match.partition(" ")
    label = MATCH_LABELS.get(kind, "其他")
    return f"{label}：{detail.strip('()')}" if kind.startswith("coder_rule") and detail else label



@dataclass
class IcdAssignment:
    diagnosis: str
    code: str | None
    name: str | None
    score: float
    provenance: str
    candidates: list[Candidate]
    table: dict[str, Any]
    note: str = ""
    # The code the lookup or the model chose, when the combination rules or the table took it further
    # (I11 → I11.0), and why: 「同时诊断心力衰竭 → I11.0」.
    refined_from: str | None = None
    precision: str = ""
    confirmed: bool = False  # the doctor confirmed this code (kept with the version, restored on reopen)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "score": round(self.score, 3),
            "provenance": self.provenance,
            "candidates": [c.as_dict() for c in self.candidates],
            "table": self.table,
            "note": self.note,
            "refined_from": self.refined_from,
            "precision": self.precision,
            "confirmed": self.confirmed,
        }

    def to_record(self) -> dict[str, Any]:
        """As stored in the history: ``as_dict`` plus the diagnosis it codes."""
        return self.as_dict() | {"diagnosis": self.diagnosis}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> IcdAssignment:
        return cls(
            diagnosis=record.get("diagnosis", ""), code=record.get("code"), name=record.get("name"),
            score=float(record.get("score", 0.0)), provenance=record.get("provenance", ""),
            candidates=[Candidate(**c) for c in record.get("candidates", [])], table=record.get("table", {}),
            note=record.get("note", ""), refined_from=record.get("refined_from"), precision=record.get("precision", ""),
            confirmed=bool(record.get("confirmed", False)),
        )


def for_patient(candidates: list[Candidate], patient: Patient | None) -> list[Candidate]:
    """The candidates the record's patient can have (sex- and age-specific categories left out)."""
    return [c for c in candidates if patient_conflict(c.code, patient) is None]


def direct_assignment(diagnosis: str, table: IcdTable, note: str = "",
                      candidates: list[Candidate] | None = None, patient: Patient | None = None) -> IcdAssignment:
    """The top lookup candidate the patient can have, marked as a direct lookup (no model involved)."""
    candidates = for_patient(candidates if candidates is not None else matcher_for(table).lookup(diagnosis, TOP_K),
                             patient)
    top = candidates[0] if candidates else None
    return IcdAssignment(diagnosis, top.code if top else None, top.name if top else None, top.score if top else 0.0,
                         DIRECT_LOOKUP, candidates, lookup_provenance(table), _with_split(diagnosis, table, note))


def _with_split(diagnosis: str, table: IcdTable, note: str) -> str:
    """A string that names several conditions gets one code; the note says so, for the doctor to list them."""
    conditions = matcher_for(table).conditions(diagnosis)
    if len(conditions) < 2:
        return note
    split = f"该诊断含 {len(conditions)} 个病情（{'、'.join(conditions)}），只编了一个码：请分行列出后各自编码"
    return f"{note}；{split}" if note else split


@dataclass
class CodingTrace:
    """What happened, for the progress view and the audit record."""

    rounds: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    rejected_codes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    generations: list[GenerationResult] = field(default_factory=list)  # one per round, for the timings


def icd_tool(table: IcdTable, patient: Patient | None = None) -> Tool:
    """``get_icd_code``: the candidates the record's patient can have, each with its table name and, in words,
    why it was proposed — what a coder needs to pick the combination code the lookup ranked second."""
    matcher = matcher_for(table)

    def get_icd_code(disease_name: str) -> list[dict[str, Any]]:
        return [c.as_dict() | {"reason": match_label(c.match)}
                for c in for_patient(matcher.lookup(disease_name, TOP_K), patient)]

    return Tool(
        name=FUNCTION_NAME,
        description="根据疾病名称查询对应的ICD-10编码",
        parameters={"disease_name": {"type": "string", "description": "疾病中文名称"}},
        function=get_icd_code,
        required=["disease_name"],
    )


_TOOL_CALL_RULES = r'''
toolcall ::= "<tool_call>\n{\"name\": \"FUNCTION_NAME\", \"arguments\": {\"disease_name\": " tcstring "}}\n</tool_call>"
tcstring ::= "\"" tcchar{1,40} "\""
tcchar ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
'''.replace("FUNCTION_NAME", FUNCTION_NAME)


def _final_schema(options: dict[str, list[str]]) -> dict[str, Any]:
    """One property per diagnosis; its value can only be a code the lookup returned for it."""
    return {
        "type": "object",
        "properties": {diagnosis: {"enum": codes} for diagnosis, codes in options.items()},
        "required": list(options),
    }


def _grammar_text(options: dict[str, list[str]], max_calls: int, allow_final: bool) -> str:
    """Calls only while diagnoses remain unlooked-up (at most one call each); then the answer."""
    calls = f"toolcalls ::= toolcall (\"\\n\" toolcall){{0,{max(0, max_calls - 1)}}}\n" + _TOOL_CALL_RULES
    if not allow_final or not options:
        return "root ::= toolcalls\n" + calls
    final = gbnf_from_json_schema(_final_schema(options))
    final = re.sub(r"^root ::=", "final ::=", final, flags=re.MULTILINE).rstrip("\n") + "\n"  # rules end lines
    return ("root ::= final\n" + final) if max_calls == 0 else ("root ::= toolcalls | final\n" + final + calls)


def code_diagnoses(
    engine: ChatEngine,
    diagnoses: list[str],
    table: IcdTable,
    context: RunContext | None = None,
    patient: Patient | None = None,
) -> tuple[list[IcdAssignment], CodingTrace]:
    """Code the diagnoses through the model's ``get_icd_code`` calls; rounds are reported to the context's
    tracker as the ICD phase (``第 i 轮``). ``patient``: the record's sex and age; a code they rule out is never
    offered."""
    context = context or RunContext()
    trace = CodingTrace()
    if not diagnoses:
        return [], trace
    tool = icd_tool(table, patient)
    tools = {tool.name: tool}
    listing = "\n".join(f"{i}. {d}" for i, d in enumerate(diagnoses, 1))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"请为以下诊断查询ICD-10编码：\n{listing}"},
    ]
    looked_up: dict[str, list[dict[str, Any]]] = {}
    chosen: dict[str, str] = {}
    for round_index in range(1, MAX_ROUNDS + 1):
        trace.rounds = round_index
        options = _answer_options(diagnoses, looked_up)
        missing = [d for d in diagnoses if d not in options]
        last_round = round_index == MAX_ROUNDS
        if last_round and not options:
            break
        max_calls = 0 if last_round else len(missing)
        grammar = engine.compile_grammar(_grammar_text(options, max_calls, allow_final=not missing or last_round))
        context.tracker.phase(CODING, detail=f"第 {round_index} 轮")
        result = engine.chat(messages, tools=[tool.schema()], grammar=grammar, max_tokens=768, fixed_messages=1,
                             on_token=context.stream, cancel=context.cancel)
        trace.generations.append(result)
        calls = parse_tool_calls(result.text) if "<tool_call>" in result.text else []
        if calls:
            messages.append({"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": c.name or "?", "arguments": c.arguments}} for c in calls]})
            for call in calls:
                messages.append({"role": "tool", "content": _execute(call, tools, looked_up, trace)})
            missing = [d for d in diagnoses if _results_for(d, looked_up) is None]
            if missing:
                messages.append({"role": "user", "content": "请继续调用 get_icd_code 查询：" + "、".join(missing)})
            else:
                messages.append({"role": "user", "content": FINAL_INSTRUCTION})
            continue
        chosen = _parse_final(result.text, diagnoses, trace)
        break
    return _assign(diagnoses, chosen, looked_up, table, trace, patient), trace


def _execute(call: ToolCall, tools: dict[str, Tool], looked_up: dict[str, list[dict[str, Any]]],
             trace: CodingTrace) -> str:
    result, error = run_tool_call(call, tools)
    trace.calls.append({"name": call.name, "arguments": call.arguments, "error": error,
                        "results": len(result) if isinstance(result, list) else 0})
    if error:
        trace.errors.append(error)
        return json.dumps({"error": error}, ensure_ascii=False)
    looked_up[call.arguments["disease_name"].strip()] = result
    return json.dumps(result, ensure_ascii=False)


def _answer_options(diagnoses: list[str], looked_up: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    options = {}
    for diagnosis in diagnoses:
        results = _results_for(diagnosis, looked_up)
        if results:
            best = max(r["score"] for r in results)
            close = [r["code"] for r in results if r["score"] >= best - CHOICE_MARGIN]
            options[diagnosis] = close[:CHOICE_LIMIT]
    return options


def _parse_final(text: str, diagnoses: list[str], trace: CodingTrace) -> dict[str, str]:
    try:
        data = json.loads(text)
    except ValueError:
        trace.errors.append("final answer is not valid JSON")
        return {}
    if not isinstance(data, dict):
        trace.errors.append("final answer is not a JSON object")
        return {}
    return {d: code for d, code in data.items() if d in diagnoses and isinstance(code, str)}


def _results_for(diagnosis: str, looked_up: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    """The lookup the model made for this diagnosis: same wording, else the closest wording it used."""
    if diagnosis in looked_up:
        return looked_up[diagnosis]
    best = max(looked_up, key=lambda name: fuzz.ratio(name, diagnosis), default=None)
    if best is not None and fuzz.ratio(best, diagnosis) >= 80:
        return looked_up[best]
    return None


def _assign(diagnoses: list[str], chosen: dict[str, str], looked_up: dict[str, list[dict[str, Any]]],
            table: IcdTable, trace: CodingTrace, patient: Patient | None = None) -> list[IcdAssignment]:
    matcher = matcher_for(table)
    assignments = []
    for diagnosis in diagnoses:
        candidates = for_patient(matcher.lookup(diagnosis, TOP_K), patient)
        model_results = _results_for(diagnosis, looked_up)
        if model_results:
            known = {c.code for c in candidates}
            candidates += [Candidate(r["code"], r["name"], r["score"], r["match"]) for r in model_results
                           if r["code"] not in known]
        code = chosen.get(diagnosis)
        note = ""
        if code is not None and code not in table:
            trace.rejected_codes.append(code)
            note = f"模型给出的编码 {code} 不在编码表中，已拒绝 / code not in the active table, rejected"
            code = None
        elif code is not None and model_results is not None and code not in {r["code"] for r in model_results}:
            trace.rejected_codes.append(code)
            note = f"模型给出的编码 {code} 不在该诊断的查询结果中，已拒绝 / code not among this diagnosis' lookup results"
            code = None
        if code is not None and model_results is not None:
            entry = table.get(code)
            score = next((c.score for c in candidates if c.code == code), 0.0)
            assignments.append(IcdAssignment(diagnosis, entry.code, entry.name, score, MODEL_TOOL_CALL,
                                             candidates, lookup_provenance(table), _with_split(diagnosis, table, note)))
            continue
        if code is not None and not note:
            note = "模型未调用查询函数即给出编码，改为直接查询 / model answered without calling the function"
        elif code is None and not note:
            note = "模型未给出编码，改为直接查询 / the model did not settle on a code"
        assignments.append(direct_assignment(diagnosis, table, note, candidates, patient))
    return to_final_codes(assignments, table)


def to_final_codes(assignments: list[IcdAssignment], table: IcdTable) -> list[IcdAssignment]:
    """Each code taken to the leaf a coder signs, by the combination rules over the record's diagnoses and
    down the table (``precision``); the code chosen before and the reasons are kept. A code the doctor chose
    or confirmed is never changed, only marked when it is not a leaf."""
    refined = refine_record([(a.diagnosis, a.code) for a in assignments], table)
    for assignment, final in zip(assignments, refined):
        if final is None or not final.reasons:
            continue
        if assignment.provenance == MANUAL or assignment.confirmed:
            if not is_leaf(assignment.code or "", table):
                assignment.precision = MANUAL_NOT_LEAF
            continue
        if final.code != assignment.code:
            assignment.refined_from, assignment.code, assignment.name = assignment.code, final.code, final.name
            if final.code not in {c.code for c in assignment.candidates}:
                assignment.candidates.insert(0, Candidate(final.code, final.name, assignment.score,
                                                          f"refined (from {assignment.refined_from})"))
        assignment.precision = final.note
    return assignments


def check_no_foreign_codes(assignments: list[IcdAssignment], table: IcdTable) -> None:
    """Defence in depth before anything is shown: every code must exist in the active table."""
    for assignment in assignments:
        codes = [assignment.code] if assignment.code else []
        for code in codes + [c.code for c in assignment.candidates]:
            if code not in table:
                raise GenerationError(f"编码 {code} 不在当前编码表中 / code not in the active table")
