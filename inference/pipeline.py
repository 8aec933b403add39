"""One record through the whole core: summary → (ICD coding, validation). Used by the CLI and the desktop."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from inference.documents import Document
from inference.engine import Engine, TokenCallback
from inference.summarizer import ProgressCallback, SummaryResult, summarize
from inference.summary_schema import render_emr_text


@dataclass
class BriefReport:
    document: Document
    result: SummaryResult

    def emr_text(self) -> str:
        return render_emr_text(self.result.summary)

    def as_json(self) -> dict[str, Any]:
        summary = self.result.summary
        return {
            "chief_complaint": summary.chief_complaint,
            "present_illness": summary.present_illness,
            "auxiliary_exams": [item.model_dump() for item in summary.auxiliary_exams],
            "diagnoses": [diagnosis.model_dump() for diagnosis in summary.diagnoses],
            "model": self.result.model,
            "prompt_version": self.result.prompt_version,
            "timings": self.result.timings.as_dict(),
            "source": {"file": self.document.file_name, "encoding": self.document.encoding,
                       "sha256": self.document.sha256},
        }

    def exit_code(self) -> int:
        return 0


def run_pipeline(
    document: Document,
    engine: Engine,
    *,
    on_progress: ProgressCallback | None = None,
    on_token: TokenCallback | None = None,
    cancel: threading.Event | None = None,
) -> BriefReport:
    result = summarize(engine, document.text, on_token=on_token, on_progress=on_progress, cancel=cancel)
    return BriefReport(document=document, result=result)
