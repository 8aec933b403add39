"""The review of the summary on screen: after every (debounced) edit and on reopening, off the GUI thread,
against the record with the run's evidence; only the latest edit's findings are shown. Clicking a finding or
a statement shows where the record says it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from inference.checks.findings import Finding, ValidationReport
from inference.checks.template_review import review_of
from inference.icd.lookup import vocabulary_of
from inference.open_record import OpenRecord
from inference.templates.content import AnySummary, diagnosis_names

if TYPE_CHECKING:
    from desktop.main_window import MainWindow


class SummaryReview:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        pane = window.summary_pane
        pane.edited.connect(self._edited)
        pane.statement_activated.connect(lambda statement: window.document_pane.show_sources(statement.sources))
        pane.finding_activated.connect(self._finding_activated)

    def current_summary(self) -> AnySummary | None:
        try:
            return self.window.summary_pane.summary()
        except ValidationError as exc:
            self.window.statusBar().showMessage(f"摘要格式有误：{exc.errors()[0]['msg']}", 8000)
            return None

    def _edited(self) -> None:
        window = self.window
        summary = self.current_summary()
        if summary is None or window.record is None:
            return
        window.record.edited()
        self.review(summary, window.record)
        window.icd_panel.sync_diagnoses(diagnosis_names(summary))
        window.summary_edited.emit(summary)

    def review(self, summary: AnySummary, record: OpenRecord) -> None:
        """The one review (table and run evidence), off the GUI thread; only the latest edit's is shown."""
        window = self.window
        vocabulary, evidence, document = vocabulary_of(window.table), record.evidence, record.document

        def shown(report: ValidationReport) -> None:
            if record is not window.record:
                return  # another record was opened meanwhile
            record.validation = report
            window.summary_pane.show_findings(report.findings, report.statements, report.unchecked)
            window.render()
            window.reviewed.emit(report)

        window.background.run("review", lambda: review_of(summary, document.text, vocabulary, evidence,
                                                               document.provenance), shown,
                              lambda exc: window.show_error("核对失败", f"{type(exc).__name__}: {exc}"))

    def _finding_activated(self, finding: Finding) -> None:
        document_pane = self.window.document_pane
        if finding.source_spans:
            document_pane.show_sources(finding.source_spans)
            return
        record = self.window.record
        validation = record.validation if record is not None else None
        for statement in validation.statements if validation is not None else []:
            if statement.section == finding.section and statement.index == finding.index:
                document_pane.show_sources(statement.sources)
                return
