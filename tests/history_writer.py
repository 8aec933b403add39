"""Child process for the crash test: autosaves versions as fast as it can, printing each committed id."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.history.store import HistoryStore  # noqa: E402
from inference.record.summary import Diagnosis, StructuredSummary  # noqa: E402

store = HistoryStore.open(Path(sys.argv[1]))
document_id = int(sys.argv[2])
for i in range(1_000_000):
    summary = StructuredSummary(chief_complaint=f"第{i}次编辑", present_illness="现病史" * 200,
                                auxiliary_exams=[], diagnoses=[Diagnosis(name="心力衰竭")])
    version_id = store.save_edit(document_id, summary, [])
    print(version_id, flush=True)
