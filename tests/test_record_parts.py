"""Long records in parts: split at the record's section headings under a token budget, summarized part by
part on the real model with progress, fused so every part's values survive, cancellable in every phase."""

from __future__ import annotations

import threading

import pytest

from inference.errors import GenerationCancelled
from inference.progress import CHECKING, CODING, SUMMARIZING, Progress, ProgressTracker, RunContext
from inference.record.summary import Diagnosis, ExamItem, StructuredSummary, render_emr_text
from inference.summary.record_parts import fuse, section_headings, sections, split_into_parts
from tests.conftest import SAMPLE_RECORD

COURSE = "".join(f"住院第{day}天:患者胸闷较前减轻,双下肢水肿减轻,继续利尿治疗,监测出入量。\n" for day in range(2, 12))
LONG_RECORD = (
    "入院记录\n" + SAMPLE_RECORD.read_text(encoding="utf-8")
    + "病程记录\n" + COURSE
    + "出院记录\n复查:NT-proBNP 2100 pg/mL,肌酐 120 μmol/L。\n出院诊断:慢性心力衰竭。\n"
)


def chars(text: str) -> int:
    return len(text)


def test_the_section_headings_are_one_list_in_resources() -> None:
    assert {"入院记录", "主诉", "现病史", "既往史", "体格检查", "辅助检查", "病程记录", "出院诊断", "出院医嘱"} <= set(
        section_headings())


def test_sections_begin_at_headings_with_or_without_numbering() -> None:
    text = "入院记录\n一、主诉:发热3天\n（2）现病史：3天前发热\n体格检查 T 38℃\n辅助检查\n血常规正常\n"
    assert [h for _, h in sections(text)] == ["入院记录", "主诉", "现病史", "体格检查", "辅助检查"]
    assert [h for _, h in sections("患者因发热入院,诊断为主诉不详")] == [""]  # only at a line start


def test_parts_cover_the_record_exactly_and_keep_to_the_budget() -> None:
    parts = split_into_parts(LONG_RECORD, chars, 300)
    assert len(parts) >= 3
    assert "".join(p.text for p in parts) == LONG_RECORD  # nothing dropped or repeated at the seams
    assert all(len(p.text) <= 300 for p in parts)
    assert [p.index for p in parts] == list(range(1, len(parts) + 1))
    assert parts[0].headings[0] == "入院记录" and any("出院记录" in p.headings for p in parts)
    assert all(LONG_RECORD[p.start:p.end] == p.text for p in parts)


def test_a_section_longer_than_the_budget_is_cut_at_line_ends() -> None:
    parts = split_into_parts(COURSE, chars, 100)
    assert all(p.text.endswith("\n") for p in parts) and "".join(p.text for p in parts) == COURSE


def test_fusion_keeps_every_parts_values_and_diagnoses_and_says_where_each_came_from() -> None:
    parts = split_into_parts(LONG_RECORD, chars, 300)
    first = StructuredSummary(chief_complaint="反复胸闷气促3年", present_illness="既往高血压病史15年",
                              auxiliary_exams=[ExamItem(name="NT-proBNP", value="4500", unit="pg/mL")],
                              diagnoses=[Diagnosis(name="慢性心力衰竭急性加重")])
    last = StructuredSummary(chief_complaint="原文未记载", present_illness="原文未记载",
                             auxiliary_exams=[ExamItem(name="NT-proBNP", value="2100", unit="pg/mL")],
                             diagnoses=[Diagnosis(name="慢性心力衰竭")])
    fused, scopes = fuse([(parts[0], first), (parts[-1], last)])
    assert [i.value for i in fused.auxiliary_exams] == ["4500", "2100"]
    assert [d.name for d in fused.diagnoses] == ["慢性心力衰竭急性加重", "慢性心力衰竭"]
    assert fused.chief_complaint == "反复胸闷气促3年" and fused.present_illness == "既往高血压病史15年。"
    assert scopes[("auxiliary_exams", "NT-proBNP 2100 pg/mL")] == [(parts[-1].start, parts[-1].end)]
    assert scopes[("present_illness", "既往高血压病史15年。")] == [(parts[0].start, parts[0].end)]


def test_progress_lines_say_phase_part_tokens_and_time() -> None:
    seen: list[Progress] = []
    tracker = ProgressTracker(seen.append)
    tracker.plan([1000, 1000])
    tracker.phase(SUMMARIZING, 1)
    tracker.prompt(1000, 1000)
    for _ in range(20):
        tracker.token()
    tracker.part_done(20)
    tracker.phase(SUMMARIZING, 2)
    line = seen[-1].line()
    assert "第 2/2 段" in line and "完成 50%" in line and "已用" in line and "token" not in line
    assert seen[-1].remaining_s is not None and 0 < seen[-1].fraction < 1
    tracker.phase(CODING, detail="第 1 轮")
    tracker.phase(CHECKING)
    assert [p.phase for p in seen[-2:]] == [CODING, CHECKING]


@pytest.mark.slow
def test_a_long_record_is_summarized_in_parts_with_progress_and_keeps_every_parts_values(demo_engine) -> None:
    from inference.checks.validation import validate
    from inference.summary.summarizer import summarize

    seen: list[Progress] = []
    result = summarize(demo_engine, LONG_RECORD, RunContext(on_progress=seen.append), part_budget=400)
    assert len(result.parts) >= 2 and result.part_tokens == 400
    parts_seen = {p.part for p in seen if p.phase == SUMMARIZING}
    assert parts_seen == set(range(1, len(result.parts) + 1))
    assert all(p.parts == len(result.parts) for p in seen if p.phase == SUMMARIZING)
    assert any(p.tokens_done > 0 and p.tokens_total >= p.tokens_done for p in seen)
    report = validate(result.summary, LONG_RECORD, evidence=result.evidence)
    assert not [f for f in report.findings if f.rule_id == "V1"]  # no invented value in the draft
    kept = render_emr_text(result.summary)
    omitted = " ".join(f.message + " ".join(f.details) for f in report.findings if f.rule_id == "V2")
    for value in ("4500", "2100", "138", "120"):  # the first part's and the last part's values
        assert value in kept or value in omitted  # kept, or flagged as omitted


@pytest.mark.slow
def test_cancel_works_while_a_long_prompt_is_read(demo_model_path) -> None:
    """Cancel set after the first prompt batch stops before the next one: no token is generated."""
    from inference.llm.engine import Engine
    from inference.llm.settings import EngineSettings
    from inference.summary.summarizer import summarize

    cancel = threading.Event()
    seen: list[Progress] = []
    tokens: list[str] = []

    def stop_on_prompt(progress: Progress) -> None:
        seen.append(progress)
        if progress.phase == SUMMARIZING and progress.tokens_done > 0:
            cancel.set()

    engine = Engine(EngineSettings(n_batch=64, n_ctx=4096))
    try:
        with pytest.raises(GenerationCancelled):
            summarize(engine, LONG_RECORD, RunContext(on_progress=stop_on_prompt, on_token=tokens.append,
                                                      cancel=cancel), part_budget=2000)
    finally:
        engine.close()
    assert tokens == [] and 0 < seen[-1].tokens_done < seen[-1].tokens_total


@pytest.mark.slow
def test_the_part_size_follows_the_model_and_the_setting_and_never_exceeds_the_context(demo_engine) -> None:
    from inference.summary.summarizer import SMALL_MODEL_PART_TOKENS, part_tokens, reliable_part_tokens

    assert 0 < demo_engine.info.n_params < 3_000_000_000  # Qwen2.5-0.5B, as llama.cpp counts it
    assert part_tokens(demo_engine) == SMALL_MODEL_PART_TOKENS
    assert part_tokens(demo_engine, 700) == 700
    assert part_tokens(demo_engine, 10**6) < demo_engine.info.n_ctx  # the context still bounds it
    assert reliable_part_tokens(14_800_000_000) > SMALL_MODEL_PART_TOKENS


@pytest.mark.slow
def test_a_part_whose_draft_is_the_prompts_example_is_summarized_again_in_halves(demo_engine) -> None:
    """Seen on a 10k-character record: one 1,500-token part came back as the prompt's example patient. That
    part is retried once in halves (offsets in the record kept) instead of refusing the whole record."""
    from inference.record.prompts import load_prompt
    from inference.summary.record_parts import RecordPart
    from inference.summary.summarizer import _halves_if_refused, parse_summary

    example = parse_summary(load_prompt("summary").section("example_summary"))
    offset = 1000
    part = RecordPart(3, offset, offset + len(LONG_RECORD), LONG_RECORD, ())
    halves = _halves_if_refused(demo_engine, part, example)
    assert len(halves) >= 2  # cut at section headings under half the part's tokens: two or three pieces
    assert all(demo_engine.count_tokens(h.text) <= demo_engine.count_tokens(LONG_RECORD) // 2 + 1 for h in halves)
    assert "".join(h.text for h in halves) == LONG_RECORD
    assert halves[0].start == offset and halves[-1].end == offset + len(LONG_RECORD)
    assert all(LONG_RECORD[h.start - offset:h.end - offset] == h.text for h in halves)
    good = StructuredSummary(chief_complaint="反复胸闷气促3年,加重伴双下肢水肿1周", present_illness="既往高血压病史15年。",
                             auxiliary_exams=[ExamItem(name="NT-proBNP", value="2100", unit="pg/mL")], diagnoses=[])
    assert _halves_if_refused(demo_engine, part, good) == []


def test_a_fused_summary_may_hold_more_items_than_one_call_may_write() -> None:
    """A 30k-character record's parts wrote 33 diagnoses in all: the fusion must keep them, not crash."""
    parts = split_into_parts(LONG_RECORD, chars, 300)
    many = [StructuredSummary(chief_complaint="原文未记载", present_illness="原文未记载", auxiliary_exams=[],
                              diagnoses=[Diagnosis(name=f"诊断{i}-{j}") for j in range(12)]) for i in range(3)]
    fused, _ = fuse([(parts[i], many[i]) for i in range(3)])
    assert len(fused.diagnoses) == 36
    from inference.summary.output_grammar import generation_schema

    assert generation_schema()["properties"]["diagnoses"]["maxItems"] == 30  # one call is still bounded
