"""Templates in the window: the picker lists the ward's templates (a broken one greyed with its reason), the summary
pane builds its editors from the chosen template, the draft streams into them, an edit is reviewed by kind, the
history reopens a record with the template it was written with, and the longest built-in fits 1366×768."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel

from desktop.history_controller import HistoryController
from inference.checks.template_review import review_templated
from inference.documents import Document
from inference.errors import GenerationCancelled
from inference.icd.coding import direct_assignment, to_final_codes
from inference.pipeline import TemplatedReport
from inference.progress import SUMMARIZING, Progress, RunContext
from inference.record.evidence import RunEvidence
from inference.record.summary import Diagnosis, ExamItem
from inference.summary.summarizer import Timings
from inference.summary.templated import TemplatedResult
from inference.templates.catalog import TemplateCatalog
from inference.templates.content import DatedEvent, Medication, TemplatedSummary
from inference.templates.spec import SummaryTemplate
from tests.conftest import SAMPLE_RECORD
from tests.test_desktop import _generate, _ready, make_window  # noqa: F401  (fixture)
from tests.test_desktop_history import Signer, written
from tests.test_desktop_layout import _leaves, _on_screen


def discharge_of(template: SummaryTemplate) -> TemplatedSummary:
    """What a model might write for the sample record with 出院记录 (the sample gives no dates or orders)."""
    sections: dict[str, Any] = {spec.id: [] if spec.kind != "text" else "原文未记载" for spec in template.sections}
    sections.update(admission_condition="反复胸闷气促3年,加重伴双下肢水肿1周。查体:BP 150/90mmHg,颈静脉怒张。",
                    admission_diagnoses=[Diagnosis(name="慢性心力衰竭急性加重"), Diagnosis(name="高血压心脏病")],
                    hospital_course="NT-proBNP 4500 pg/mL,LVEF 38%。",
                    discharge_diagnoses=[Diagnosis(name="慢性心力衰竭急性加重")])
    return TemplatedSummary(template, sections)


class FakeTemplateJob:
    """Streams the draft's JSON in pieces, honouring cancel, then returns a real templated report; the four
    sections' runs get the plain fake's report."""

    def __init__(self, delay: float = 0.0, pieces: int = 12) -> None:
        self.delay, self.pieces, self.templates = delay, pieces, []

    def __call__(self, document: Document, engine: Any, context: RunContext, *, table, part_budget=None,
                 resume=None, template: SummaryTemplate | None = None) -> TemplatedReport:
        self.templates.append(template)
        assert template is not None, "the default template goes through the four sections' job"
        summary = discharge_of(template)
        streamed = json.dumps(summary.output_json(), ensure_ascii=False)
        step = max(1, len(streamed) // self.pieces)
        context.on_progress(Progress(SUMMARIZING, 1, 1, 0, self.pieces))
        for start in range(0, len(streamed), step):
            if context.cancel.is_set():
                raise GenerationCancelled("已停止")
            context.stream(streamed[start:start + step])
            time.sleep(self.delay)
        icd = to_final_codes([direct_assignment(name, table) for name in summary.diagnoses()], table)
        result = TemplatedResult(summary=summary, draft=summary, prompt_version="templated-test",
                                 model={"demo": False}, timings=Timings(0.0, 0.1, 0.5, 800, 200), raw_output=streamed)
        return TemplatedReport(document=document, result=result, icd=icd,
                               validation=review_templated(summary, document.text, evidence=RunEvidence()))


def _choose(window, template_id: str) -> SummaryTemplate:
    picker = window.templates
    index = next(i for i in range(picker.count())
                 if isinstance(picker.itemData(i), SummaryTemplate) and picker.itemData(i).id == template_id)
    picker.setCurrentIndex(index)
    return picker.template


def test_the_picker_lists_the_wards_templates_and_greys_a_broken_one(qtbot, make_window, department) -> None:  # noqa: F811
    (department / "broken.toml").write_text('id = "broken"\nname = "坏模板"\nversion = "1"\n', encoding="utf-8")
    window = make_window(FakeTemplateJob())
    picker = window.templates
    labels = [picker.itemText(i) for i in range(picker.count())]
    assert labels[:4] == ["病历摘要", "出院记录", "首次病程记录", "交班摘要"] and labels[4] == "broken.toml（不可用）"
    broken = picker.model().item(4)
    assert not broken.isEnabled() and "broken.toml:1: sections: 缺少必填字段" in broken.toolTip()
    assert picker.template.id == "summary" and list(window.summary_pane.editors) == [
        "chief_complaint", "present_illness", "auxiliary_exams", "diagnoses"]


def test_a_draft_written_with_a_template_streams_into_its_sections_and_is_reviewed(qtbot, make_window,  # noqa: F811
                                                                                   department) -> None:
    job = FakeTemplateJob(delay=0.03, pieces=60)
    window = make_window(job)
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    template = _choose(window, "discharge")
    seen: list[str] = []
    window.host.worker.tokens.connect(lambda _chunk: seen.append(window.summary_pane.editors["admission_condition"]
                                                                 .toPlainText()))
    report = _generate(qtbot, window)
    assert job.templates == [template] and isinstance(report, TemplatedReport)
    pane = window.summary_pane
    assert list(pane.editors) == [s.id for s in template.sections]
    assert any(text.startswith("反复胸闷") and len(text) < 40 for text in seen), seen  # filled in while streaming
    assert pane.editors["admission_diagnoses"].toPlainText() == "慢性心力衰竭急性加重\n高血压心脏病"
    assert pane.editors["discharge_orders"].toPlainText() == "原文未记载"
    assert [a.diagnosis for a in window.icd_panel.assignments] == ["慢性心力衰竭急性加重", "高血压心脏病"]
    assert window.record.template == template
    with qtbot.waitSignal(window.reviewed, timeout=10_000) as review:  # the doctor adds a dose the record lacks
        pane.editors["discharge_orders"].setPlainText("呋塞米 40mg 口服 每日1次")
    findings = review.args[0].findings
    assert any(f.rule_id == "M1" and f.section == "discharge_orders" and f.index == 0 for f in findings)
    assert pane.editor_span(next(f for f in findings if f.rule_id == "M1")) == (0, len("呋塞米 40mg 口服 每日1次"))
    copied = window.exports.copy()
    assert copied.startswith("【入院日期】原文未记载\n") and "【出院医嘱】\n呋塞米 40mg 口服 每日1次" in copied


def test_stopping_a_templated_run_puts_back_the_summary_that_was_on_screen(qtbot, make_window, department) -> None:  # noqa: F811
    job = FakeTemplateJob(delay=0.2, pieces=40)
    window = make_window(job)
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    window.summary_pane.editors["chief_complaint"].setPlainText("医生写的主诉")
    _choose(window, "handover")
    with qtbot.waitSignal(window.host.worker.cancelled, timeout=10_000):
        window.generate_action.trigger()
        qtbot.waitUntil(lambda: "current_status" in window.summary_pane.editors, timeout=5_000)
        window.stop_action.trigger()
    qtbot.waitUntil(lambda: not window.generating, timeout=5_000)  # the GUI thread has taken the worker's signal
    assert list(window.summary_pane.editors)[0] == "chief_complaint"
    assert window.summary_pane.editors["chief_complaint"].toPlainText() == "医生写的主诉"


@pytest.mark.parametrize("template_id", ["discharge", "first_course"])
def test_the_longest_built_in_fits_1366x768_without_overlap(qtbot, make_window, department, template_id) -> None:  # noqa: F811
    window = make_window(FakeTemplateJob())
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    template = _choose(window, template_id)
    _generate(qtbot, window)
    qtbot.wait(50)
    leaves = _leaves(window)
    overlapping = [(a.objectName(), b.objectName()) for i, a in enumerate(leaves) for b in leaves[i + 1:]
                   if _on_screen(a, window).intersected(_on_screen(b, window)).isValid()]
    assert overlapping == []
    pane = window.summary_pane
    for spec in template.sections:
        label, editor = pane.findChild(QLabel, f"heading_{spec.id}"), pane.editors[spec.id]
        assert label.geometry().bottom() < editor.geometry().top(), spec.id
        assert editor.height() >= 40, spec.id  # scrolled to, never squeezed to nothing
    last = pane.editors[template.sections[-1].id]
    scroller = pane.parentWidget().parentWidget()  # the summary column scrolls
    scroller.ensureWidgetVisible(last)
    qtbot.wait(20)
    assert _on_screen(last, window).height() > 0


def test_a_record_reopens_with_the_template_it_was_written_with(qtbot, make_window, department, tmp_path) -> None:  # noqa: F811
    from inference.history.store import HistoryStore

    ward = department / "ward.toml"
    ward.write_text('id = "ward"\nname = "病区出院记录"\nversion = "1"\nextends = "discharge"\n'
                    '[rename]\nhospital_course = "住院经过"\n', encoding="utf-8")
    store = HistoryStore.open(tmp_path / "history.sqlite")
    try:
        window = make_window(FakeTemplateJob())
        controller = HistoryController(window, store, sign=Signer())
        _ready(qtbot, window)
        window.open_file(str(SAMPLE_RECORD))
        written_with = _choose(window, "ward")
        _generate(qtbot, window)
        written(qtbot, controller)
        document_id = controller.document_id
        assert document_id is not None
        ward.write_text(ward.read_text(encoding="utf-8").replace("住院经过", "诊疗经过（本院）"), encoding="utf-8")
        window.open_file(str(SAMPLE_RECORD.with_name("sample_scan.png")))  # another record comes and goes
        qtbot.waitUntil(lambda: window.record is not None and window.record.document.file_name.endswith(".png"),
                        timeout=60_000)
        controller.reopen(document_id)
        pane = window.summary_pane
        assert pane.template == written_with
        assert pane.findChild(QLabel, "heading_hospital_course").text() == "【住院经过】"
        assert window.record.template == written_with
        assert pane.editors["admission_diagnoses"].toPlainText() == "慢性心力衰竭急性加重\n高血压心脏病"
    finally:
        window.host.stop()
        store.close()


def test_list_lines_become_items_of_their_kind(qtbot, make_window, department) -> None:  # noqa: F811
    window = make_window(FakeTemplateJob())
    pane = window.summary_pane
    pane.set_template(TemplateCatalog().get("discharge"))
    pane.editors["admission_date"].setPlainText("2024-05-06 入院")
    pane.editors["discharge_orders"].setPlainText("呋塞米片 20mg 口服 每日1次\n螺内酯")
    pane.editors["admission_diagnoses"].setPlainText("原文未记载")
    summary = pane.summary()
    assert summary.items("admission_date") == [DatedEvent(date="2024-05-06", event="入院")]
    assert summary.items("discharge_orders") == [Medication(drug="呋塞米片", dose="20mg", route="口服", frequency="每日1次"),
                                                 Medication(drug="螺内酯")]
    assert summary.items("admission_diagnoses") == [] and summary.text("hospital_course") == "原文未记载"
    pane.set_template(TemplateCatalog().get("first_course"))
    pane.editors["key_results"].setPlainText("NT-proBNP 4500 pg/mL")
    assert pane.summary().items("key_results") == [ExamItem(name="NT-proBNP", value="4500", unit="pg/mL")]
