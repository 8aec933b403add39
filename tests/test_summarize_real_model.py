"""The sample record through the real demo GGUF: values as written, three diagnoses, cancel, reuse."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from inference.errors import GenerationCancelled
from inference.llm.engine import Engine
from inference.progress import RunContext
from inference.record.summary import StructuredSummary, render_emr_text
from inference.summary.summarizer import summarize
from tests.conftest import REPO_ROOT, SAMPLE_RECORD

EXPECTED_LABS = {("NT-proBNP", "4500", "pg/mL"), ("LVEF", "38", "%"), ("肌酐", "138", "μmol/L")}
EXPECTED_DIAGNOSES = {"慢性心力衰竭急性加重", "高血压心脏病", "肾功能不全"}


def _assert_sample_summary(summary: StructuredSummary) -> None:
    labs = {(item.name, item.value, item.unit) for item in summary.auxiliary_exams}
    assert EXPECTED_LABS <= labs
    assert {d.name for d in summary.diagnoses} == EXPECTED_DIAGNOSES
    assert summary.chief_complaint


def test_sample_record_keeps_every_lab_value_as_written(any_engine: Engine, sample_text: str) -> None:
    tokens: list[str] = []
    result = summarize(any_engine, sample_text, RunContext(on_token=tokens.append))
    _assert_sample_summary(result.summary)
    assert len(tokens) > 20  # streamed, not delivered at the end
    assert result.prompt_version.startswith("summary-")
    assert result.timings.prompt_tokens > 0 and result.timings.completion_tokens > 0
    text = render_emr_text(result.summary)
    assert text.startswith("【主诉】")
    assert "【初步诊断】\n慢性心力衰竭急性加重\n高血压心脏病\n肾功能不全" in text


def test_cancel_stops_within_two_seconds_and_engine_summarizes_again(any_engine: Engine, sample_text: str) -> None:
    cancel = threading.Event()
    first_token = threading.Event()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            summarize(any_engine, sample_text, RunContext(on_token=lambda _t: first_token.set(), cancel=cancel))
            outcome["result"] = "finished"
        except GenerationCancelled as exc:
            outcome["result"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert first_token.wait(60), "no token streamed"
    cancelled_at = time.perf_counter()
    cancel.set()
    worker.join(10)
    stop_s = time.perf_counter() - cancelled_at
    assert isinstance(outcome.get("result"), GenerationCancelled)
    assert stop_s < 2.0
    again = summarize(any_engine, sample_text)
    _assert_sample_summary(again.summary)


@pytest.mark.slow  # the real demo model, in a subprocess
def test_cli_json_output_has_the_stable_keys(tmp_path, icd_data) -> None:
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "inference", "summarize", str(SAMPLE_RECORD), "--json", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr  # without --fail-on-findings, findings do not fail the run
    assert "Traceback" not in proc.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    for key in ("chief_complaint", "present_illness", "auxiliary_exams", "diagnoses", "model", "prompt_version", "timings"):
        assert key in data
    for key in ("load_s", "ttft_s", "total_s", "prompt_tokens", "completion_tokens"):
        assert data["timings"][key] >= 0
    assert data["model"]["demo"] is True and data["model"]["quantization"] == "Q4_K_M"
    lvef = next(item for item in data["auxiliary_exams"] if item["name"] == "LVEF")
    assert (lvef["value"], lvef["unit"]) == ("38", "%")
    assert lvef["sources"][0]["text"] == "LVEF 38%"  # grounded in the record
    assert isinstance(data["findings"], list) and data["statements"]
    assert not [f for f in data["findings"] if f["severity"] == "error"], data["findings"]
    assert "加载模型" in proc.stderr  # progress goes to stderr, not into the JSON
    from inference.icd.table import open_table

    table = open_table("who-zh")
    for diagnosis in data["diagnoses"]:
        icd = diagnosis["icd"]
        assert icd["code"] in table
        assert icd["provenance"] in {"model_tool_call", "direct_lookup"}
        assert {"code", "name", "score", "provenance", "candidates", "table"} <= set(icd)
        assert all(c["code"] in table for c in icd["candidates"])


@pytest.mark.parametrize("thinking", ["<think>让我想想</think>\n{\"a\": 1}", "<think>\n\n</think>\n\n{\"a\": 1}"])
def test_thinking_blocks_are_removed_from_output(thinking: str) -> None:
    from inference.llm.chat_template import strip_thinking

    assert strip_thinking(thinking) == '{"a": 1}'


def test_qwen3_style_template_gets_empty_think_block_when_thinking_is_off() -> None:
    from inference.llm.chat_template import ChatTemplate

    qwen3_tail = (  # the generation-prompt tail of Qwen3's own chat template
        "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}\n"
        "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n"
        "    {%- if enable_thinking is defined and enable_thinking is false %}\n"
        "        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}\n{%- endif %}\n"
    )
    prompt = ChatTemplate(qwen3_tail).render([{"role": "user", "content": "你好"}])
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [("4500 pg/mL", "", ("4500", "pg/mL")), ("38%", "38%", ("38", "%")), ("4500 pg/mL", "L", ("4500", "pg/mL")),
     ("5.0×10^9/L", "", ("5.0", "×10^9/L")), ("胸部CT示右下肺斑片影", "", ("胸部CT示右下肺斑片影", "")),
     ("3 次食管pH监测：未达到标准；症状相关性：阳性", "", ("3 次食管pH监测：未达到标准；症状相关性：阳性", ""))],
)
def test_a_unit_written_into_the_value_is_split_off_but_a_sentence_is_not(value: str, unit: str, expected) -> None:
    from inference.summary.summarizer import parse_summary

    raw = json.dumps({"chief_complaint": "x", "present_illness": "y", "diagnoses": [],
                      "auxiliary_exams": [{"name": "项目", "value": value, "unit": unit}]}, ensure_ascii=False)
    item = parse_summary(raw).auxiliary_exams[0]
    assert (item.value, item.unit) == expected


def test_model_output_that_cannot_be_a_summary_is_a_generation_error() -> None:
    from inference.errors import GenerationError
    from inference.summary.summarizer import parse_summary

    with pytest.raises(GenerationError):
        parse_summary('{"chief_complaint": 1}')
    with pytest.raises(GenerationError):
        parse_summary("not json")


@pytest.mark.slow  # the real demo model, in a subprocess
def test_cli_text_output_is_emr_format_then_codes_then_findings(icd_data) -> None:
    proc = subprocess.run([sys.executable, "-m", "inference", "summarize", str(SAMPLE_RECORD), "--quiet"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("【主诉】")
    assert out.index("【初步诊断】") < out.index("【ICD-10】") < out.index("【核对】")
    assert "高血压心脏病：I11" in out
