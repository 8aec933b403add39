"""A real BriefReport for the sample record without running the model (summary as the model wrote it)."""

from __future__ import annotations

from inference.checks.validation import validate
from inference.documents import load_document
from inference.icd.coding import MODEL_TOOL_CALL, IcdAssignment
from inference.icd.lookup import Candidate
from inference.pipeline import BriefReport
from inference.record.summary import Diagnosis, ExamItem, StructuredSummary
from inference.summary.summarizer import SummaryResult, Timings
from tests.conftest import SAMPLE_RECORD

SAMPLE_SUMMARY = StructuredSummary(
    chief_complaint="反复胸闷气促3年,加重伴双下肢水肿1周",
    present_illness="既往高血压病史15年,冠心病行PCI术后5年。查体:BP 150/90mmHg,颈静脉怒张,双肺底湿啰音,"
                    "心界向左扩大,HR 98次/分,律齐,肝肋下3cm,双下肢凹陷性水肿。",
    auxiliary_exams=[ExamItem(name="NT-proBNP", value="4500", unit="pg/mL"), ExamItem(name="LVEF", value="38", unit="%"),
                     ExamItem(name="肌酐", value="138", unit="μmol/L")],
    diagnoses=[Diagnosis(name=n) for n in ("慢性心力衰竭急性加重", "高血压心脏病", "肾功能不全")],
)
SAMPLE_CODES = [("I50.9", "未特指的心力衰竭"), ("I11", "高血压心脏病"), ("N19", "未特指的肾衰竭")]
TABLE_INFO = {"name": "who-zh", "version": "test", "source": "test", "sha256": "0" * 16, "rows": 1}


def sample_report(path=SAMPLE_RECORD, summary: StructuredSummary = SAMPLE_SUMMARY) -> BriefReport:
    document = load_document(path)
    icd = [IcdAssignment(d.name, code, name, 0.9, MODEL_TOOL_CALL, [Candidate(code, name, 0.9, "exact_name")],
                         TABLE_INFO) for d, (code, name) in zip(summary.diagnoses, SAMPLE_CODES)]
    result = SummaryResult(summary=summary, prompt_version="summary-test", timings=Timings(0.5, 1.0, 5.0, 800, 200),
                           model={"file": "demo.gguf", "quantization": "Q4_K_M", "backend": "CPU"}, raw_output="{}")
    return BriefReport(document=document, result=result, icd=icd, validation=validate(summary, document.text))
