"""停止 on a long record keeps the parts already finished as a stopped draft — in the history, never reviewed or
signed — and 继续生成 summarizes only the parts left. On the real model; the window's side with a fake job."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.documents import document_from_text
from inference.errors import StorageError
from inference.history.store import HistoryStore
from inference.progress import SUMMARIZING, Progress, RunContext
from inference.record.status import DraftStatus
from inference.summary.summarizer import StoppedRun
from tests.conftest import SAMPLE_RECORD
from tests.test_record_parts import LONG_RECORD


def _stop_at_part(n: int, context_cancel) -> callable:  # type: ignore[valid-type]
    def on_progress(progress: Progress) -> None:
        if progress.phase == SUMMARIZING and progress.part >= n:
            context_cancel.set()
    return on_progress


@pytest.mark.slow
def test_stop_keeps_the_finished_parts_and_continue_does_only_the_rest(demo_engine, tmp_path: Path) -> None:
    import threading

    from inference.pipeline import run_pipeline

    document = document_from_text(LONG_RECORD)
    cancel = threading.Event()
    stopped = run_pipeline(document, demo_engine, RunContext(on_progress=_stop_at_part(2, cancel), cancel=cancel),
                           part_budget=400)
    assert stopped.stopped and stopped.result.stopped is not None
    kept = stopped.result.stopped
    assert len(kept.finished) == 1 and len(kept.remaining) >= 1
    first_part = kept.finished[0][0]
    assert all(s.scope is None or all(first_part.start <= a and b <= first_part.end for a, b in s.scope)
               for s in stopped.validation.statements)  # only what the finished part says
    assert "NT-proBNP" in stopped.emr_text() or "4500" in stopped.emr_text()
    assert stopped.as_json()["stopped"] == {"parts_done": 1, "parts_left": len(kept.remaining)}

    store = HistoryStore.open(tmp_path / "history.sqlite")
    document_id = store.record_run(stopped.run_record(), {}).document_id
    assert store.versions(document_id)[-1].status == DraftStatus.STOPPED
    with pytest.raises(StorageError, match="停止"):
        store.set_status(document_id, "signed", signer="张医生")
    store.close()

    summarized: list[int] = []
    resumed = run_pipeline(document, demo_engine, RunContext(on_progress=lambda p: p.phase == SUMMARIZING
                                                             and summarized.append(p.part)), resume=kept)
    assert not resumed.stopped
    assert max(summarized) == len(kept.remaining)  # the parts left, not the whole record again
    assert len(resumed.result.parts) == 1 + len(kept.remaining)
    assert resumed.result.parts[0].start == 0 and resumed.result.parts[-1].end == len(document.text)


# -- the window ----------------------------------------------------------------------------------------------


class StoppingJob:
    """Two parts: the first finishes, the second is stopped by the doctor; ``resume`` finishes the second."""

    def __init__(self) -> None:
        self.resumed_with: list[StoppedRun | None] = []

    def __call__(self, document, engine, context, *, table, part_budget=None, resume=None):  # type: ignore[no-untyped-def]
        import time

        from inference.checks.validation import validate
        from inference.pipeline import BriefReport
        from inference.summary.record_parts import RecordPart
        from inference.summary.summarizer import SummaryResult, Timings
        from tests.history_helpers import SAMPLE_SUMMARY

        self.resumed_with.append(resume)
        half = len(document.text) // 2
        first, second = RecordPart(1, 0, half, document.text[:half], ()), RecordPart(2, half, len(document.text),
                                                                                     document.text[half:], ())
        timings = Timings(0.0, 0.1, 0.5, 800, 200)
        if resume is None:
            context.on_progress(Progress(SUMMARIZING, 2, 2, 10, 20))
            while not context.cancel.is_set():
                time.sleep(0.01)
            partial = SAMPLE_SUMMARY.model_copy(update={"diagnoses": SAMPLE_SUMMARY.diagnoses[:1]})
            stopped = StoppedRun([(first, partial)], [], [second], 400, 0, "test")
            result = SummaryResult(summary=partial, prompt_version="test", model={}, timings=timings, raw_output="{}",
                                   parts=[first], stopped=stopped)
            return BriefReport(document=document, result=result, validation=validate(partial, document.text))
        result = SummaryResult(summary=SAMPLE_SUMMARY, prompt_version="test", model={}, timings=timings,
                               raw_output="{}", parts=[first, second])
        return BriefReport(document=document, result=result, validation=validate(SAMPLE_SUMMARY, document.text))


def test_the_window_keeps_a_stopped_draft_unsignable_and_continues_it(qtbot, make_window, history) -> None:  # noqa: F811
    from desktop.history_controller import HistoryController
    from tests.test_desktop import _ready
    from tests.test_desktop_history import Signer, written

    job = StoppingJob()
    window = make_window(job)
    controller = HistoryController(window, history, sign=Signer())
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    window.generate()
    qtbot.waitUntil(lambda: window.generating, timeout=5_000)
    window.stop()
    qtbot.waitUntil(lambda: not window.generating, timeout=10_000)
    assert window.record.stopped and not window.record.can_sign
    assert window.banners.stopped.isVisibleTo(window) and window.resume_action.isEnabled()
    assert not controller.sign_action.isEnabled()
    assert [d.name for d in window.current_summary().diagnoses] == ["慢性心力衰竭急性加重"]
    written(qtbot, controller)
    assert history.versions(controller.document_id)[-1].status == "stopped"  # in the history, as stopped

    window.resume_action.trigger()
    qtbot.waitUntil(lambda: not window.generating and not window.record.stopped, timeout=10_000)
    assert job.resumed_with[-1] is not None and len(job.resumed_with[-1].remaining) == 1
    assert len(window.current_summary().diagnoses) == 3 and window.record.can_sign
    assert not window.banners.stopped.isVisibleTo(window) and not window.resume_action.isEnabled()


from tests.test_desktop import make_window  # noqa: E402, F401  (fixture)
from tests.test_desktop_history import history  # noqa: E402, F401  (fixture)
