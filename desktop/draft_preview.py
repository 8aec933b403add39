"""The draft as the model writes it: the template's sections fill in while a part streams (read-only, not yet
checked), so a doctor on a slow CPU reads along instead of watching empty boxes. The finished draft — guarded
and checked — replaces the preview; a stopped or failed run puts back what was on screen before."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inference.progress import READING, SUMMARIZING, Progress
from inference.summary.partial_output import StreamedDraft
from inference.templates.catalog import DEFAULT_TEMPLATE
from inference.templates.spec import SummaryTemplate

if TYPE_CHECKING:
    from desktop.main_window import MainWindow


class DraftPreview:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.draft: StreamedDraft | None = None  # None: no run streaming
        self._before: dict[str, str] = {}
        self._before_template: SummaryTemplate | None = None
        self._part: int | None = None
        self._summarizing = False

    def start(self, template: SummaryTemplate) -> None:
        """A run with ``template`` begins: its sections' editors show the draft as it comes."""
        pane = self.window.summary_pane
        self._before, self._before_template = pane.texts(), pane.template
        pane.set_template(template)
        streamed = None if template.id == DEFAULT_TEMPLATE else template
        self.draft, self._part, self._summarizing = StreamedDraft(template=streamed), None, True

    def step(self, progress: Progress) -> None:
        """A new part starts a new JSON. The first text may come before the first step: it is part 1's."""
        self._summarizing = progress.phase == SUMMARIZING or progress.phase == READING
        if self.draft is not None and progress.phase == SUMMARIZING and progress.part != self._part:
            if self._part is not None:
                self.draft.new_part()
            self._part = progress.part

    def tokens(self, chunk: str) -> None:
        """Only the summary's JSON fills the sections (the ICD round's tool calls stream too)."""
        if self.draft is None or not self._summarizing:
            return
        self.draft.feed(chunk)
        self.window.summary_pane.show_texts(self.draft.sections())

    def finished(self) -> None:
        self.draft = None

    def abandoned(self) -> None:
        """A stopped or failed run: the summary on screen before it comes back."""
        if self.draft is not None:
            if self._before_template is not None:
                self.window.summary_pane.set_template(self._before_template)
            self.window.summary_pane.show_texts(self._before)
        self.draft = None
