"""The draft as it is written: sections read from any prefix of the model's JSON (never an error), filled into
the window while the model writes, replaced by the checked draft, put back on 停止; the progress line moves in
place and the estimate never jumps by half."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from inference.progress import ESTIMATE_STEP, SUMMARIZING, ProgressTracker
from inference.summary.partial_output import SECTION_FIELDS, StreamedDraft, partial_sections
from tests.conftest import SAMPLE_RECORD
from tests.history_helpers import SAMPLE_SUMMARY
from tests.test_desktop import FakeJob, _generate, _ready, make_window  # noqa: F401  (fixture)

FINAL = partial_sections(SAMPLE_SUMMARY.model_dump_json())


def test_the_whole_output_reads_as_the_summary() -> None:
    assert FINAL["chief_complaint"] == SAMPLE_SUMMARY.chief_complaint
    assert FINAL["auxiliary_exams"].splitlines() == [item.as_text() for item in SAMPLE_SUMMARY.auxiliary_exams]
    assert FINAL["diagnoses"].splitlines() == [d.name for d in SAMPLE_SUMMARY.diagnoses]


def test_every_prefix_shows_a_prefix_of_each_section_and_sections_only_grow() -> None:
    text = json.dumps(SAMPLE_SUMMARY.model_dump(), ensure_ascii=False, indent=1)
    previous = dict.fromkeys(SECTION_FIELDS, "")
    for end in range(len(text) + 1):
        sections = partial_sections(text[:end])
        for name in ("chief_complaint", "present_illness"):
            assert FINAL[name].startswith(sections[name]), (end, name)
            assert sections[name].startswith(previous[name]), (end, name)
        for name in ("auxiliary_exams", "diagnoses"):  # whole items, the last one growing
            lines, final = sections[name].splitlines(), FINAL[name].splitlines()
            assert len(lines) <= len(final) and all(final[i].startswith(line) for i, line in enumerate(lines))
        previous = sections
    assert previous == FINAL


@given(st.text(max_size=400))
def test_any_text_reads_without_an_error(text: str) -> None:
    sections = partial_sections(text)
    assert set(sections) == set(SECTION_FIELDS) and all(isinstance(v, str) for v in sections.values())


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["chief_complaint", "diagnoses", "auxiliary_exams", "name", "x"]), inner,
                        max_size=4), max_leaves=20), st.integers(min_value=0, max_value=400))
def test_wrong_types_in_any_field_read_without_an_error(value, cut: int) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert set(partial_sections(text[:cut])) == set(SECTION_FIELDS)


def test_parts_of_a_long_record_stream_one_after_the_other() -> None:
    draft = StreamedDraft()
    draft.new_part()
    draft.feed(SAMPLE_SUMMARY.model_dump_json())
    draft.new_part()
    draft.feed('{"chief_complaint": "另一段", "present_illness": "第二次入院')
    sections = draft.sections()
    assert sections["chief_complaint"] == SAMPLE_SUMMARY.chief_complaint  # the first part's complaint
    assert sections["present_illness"] == SAMPLE_SUMMARY.present_illness + "\n第二次入院"


def test_the_estimate_never_jumps_by_half(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr("inference.progress.time.perf_counter", lambda: now[0])
    tracker = ProgressTracker(None)
    tracker.phase_name = SUMMARIZING
    shown = []
    for raw in (2005.0, 1048.0, 1290.0, 633.0, 1094.0):  # 33:25 → 17:28 → 21:30 → 10:33 → 18:14, as reported
        now[0] += 1.0
        shown.append(tracker._smoothed(raw, now[0]))
    for before, after in zip(shown, shown[1:]):
        counted_down = before - 1.0
        assert abs(after - counted_down) <= ESTIMATE_STEP * counted_down + 1e-9
    assert shown[-1] < shown[0]  # it still follows a run that is faster than first thought


def test_the_sections_fill_in_as_the_model_writes_and_the_checked_draft_replaces_them(qtbot, make_window) -> None:  # noqa: F811
    text = SAMPLE_SUMMARY.model_dump_json()
    window = make_window(FakeJob(pieces=[text[i:i + 4] for i in range(0, len(text), 4)], delay=0.02))
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    window.generate()
    complaint = window.summary_pane.editors["chief_complaint"]
    qtbot.waitUntil(lambda: complaint.toPlainText() != "", timeout=10_000)
    assert window.generating and complaint.isReadOnly()  # the model is still writing: shown, not editable
    assert SAMPLE_SUMMARY.chief_complaint.startswith(complaint.toPlainText())
    assert "正在生成" in window.panes.summary_title.text()
    qtbot.waitUntil(lambda: not window.generating, timeout=20_000)
    assert window.current_summary() == SAMPLE_SUMMARY and not complaint.isReadOnly()
    lines = window.progress_view.log.toPlainText().splitlines()
    assert lines[-1].startswith("■ 完成，总用时")


def test_stop_puts_back_the_summary_that_was_on_screen(qtbot, make_window) -> None:  # noqa: F811
    text = SAMPLE_SUMMARY.model_copy(update={"chief_complaint": "另一个主诉"}).model_dump_json()
    job = FakeJob(pieces=[text[i:i + 2] for i in range(0, len(text), 2)], delay=0.05)
    window = make_window(job)
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    job.pieces, job.delay = [SAMPLE_SUMMARY.model_dump_json()], 0.0
    _generate(qtbot, window)
    job.pieces, job.delay = [text[i:i + 2] for i in range(0, len(text), 2)], 0.05
    window.generate()
    complaint = window.summary_pane.editors["chief_complaint"]
    qtbot.waitUntil(lambda: complaint.toPlainText().startswith("另一"), timeout=10_000)
    window.stop()
    qtbot.waitUntil(lambda: not window.generating, timeout=10_000)
    assert window.current_summary() == SAMPLE_SUMMARY


def test_the_progress_line_moves_in_place(qtbot, make_window) -> None:  # noqa: F811
    from inference.progress import Progress

    window = make_window()
    view = window.progress_view
    view.step(Progress(SUMMARIZING, 1, 1, 0, 100, 0.0))
    view.step(Progress(SUMMARIZING, 1, 1, 50, 100, 61.0, 60.0))
    assert view.log.blockCount() == 1 and "完成 50%" in view.last_line() and "已用 1:01" in view.last_line()


def test_what_the_worker_reports_reaches_the_widgets_on_the_gui_thread_only(qtbot, make_window) -> None:  # noqa: F811
    """A plain object's method connected to the worker's signals runs on the worker's thread and touches
    widgets from there (it crashed the window): every update of the panes happens on the GUI thread."""
    import threading

    text = SAMPLE_SUMMARY.model_dump_json()
    window = make_window(FakeJob(pieces=[text[i:i + 3] for i in range(0, len(text), 3)], delay=0.005))
    threads: list[bool] = []
    shown, stepped = window.summary_pane.show_texts, window.progress_view.step

    def record_texts(texts):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread() is threading.main_thread())
        shown(texts)

    def record_step(progress):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread() is threading.main_thread())
        stepped(progress)

    window.summary_pane.show_texts = record_texts
    window.progress_view.step = record_step
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    _generate(qtbot, window)
    assert threads and all(threads)


def test_a_finished_step_keeps_its_line_without_a_time_left(qtbot, make_window) -> None:  # noqa: F811
    from inference.progress import CODING, Progress

    window = make_window()
    view = window.progress_view
    view.step(Progress(SUMMARIZING, 1, 1, 80, 100, 9.0, 3.0))
    view.step(Progress(CODING, 1, 1, 95, 100, 17.0))
    first = view.log.toPlainText().splitlines()[0]
    assert "完成 80%" in first and "预计还需" not in first
    view.note("■ 完成，总用时 19.7 秒")
    view.step(Progress(CODING, 1, 1, 100, 100, 20.0))
    assert view.log.toPlainText().splitlines()[-2] == "■ 完成，总用时 19.7 秒"  # a note is never overwritten
