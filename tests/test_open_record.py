"""The open record's rules, without Qt: what the doctor may do with a draft and what stands in the way of a
signature. The window only renders these answers."""

from __future__ import annotations

from dataclasses import replace

from inference.documents import load_document
from inference.open_record import DEMO_BLOCKER, OpenRecord
from inference.record.evidence import RunEvidence
from inference.record.status import DraftStatus
from inference.record.summary import Diagnosis, ExamItem
from inference.summary.summarizer import SMALL_MODEL_PART_TOKENS
from tests.conftest import SAMPLE_RECORD
from tests.history_helpers import SAMPLE_SUMMARY, sample_report
from tests.test_draft_trust import OTHER_PATIENT


def test_a_fresh_record_can_be_copied_and_signed_and_a_refused_draft_cannot() -> None:
    record = OpenRecord(load_document(SAMPLE_RECORD))
    assert record.can_copy and record.can_sign and record.editable and not record.can_rerun_in_parts
    refused = sample_report(summary=OTHER_PATIENT)
    assert refused.rejected
    record.adopt_run(refused)
    assert record.rejected and not record.can_copy and not record.can_sign and record.can_rerun_in_parts
    assert record.rejection_reasons() and all("不" in reason for reason in record.rejection_reasons())


def test_a_rerun_in_parts_halves_the_refused_runs_parts() -> None:
    record = OpenRecord(load_document(SAMPLE_RECORD))
    assert record.rerun_part_tokens() == SMALL_MODEL_PART_TOKENS // 2  # no run yet: half a small model's part
    report = sample_report()
    report.result.part_tokens = 1200
    record.adopt_run(report)
    assert record.rerun_part_tokens() == 600
    report.result.part_tokens = 300
    assert record.rerun_part_tokens() == 200  # never below the smallest part


def test_blockers_name_errors_unconfirmed_codes_and_a_demo_draft() -> None:
    report = sample_report()
    record = OpenRecord(report.document)
    codes = record.adopt_run(report)
    assert record.blockers(codes) == ("3 个 ICD 编码仍待确认",)  # the sample's draft has no error
    confirmed = [replace(a, confirmed=True) for a in codes]
    assert record.blockers(confirmed) == ()
    record.demo_draft = True
    assert record.blockers(confirmed) == (DEMO_BLOCKER,)
    altered = SAMPLE_SUMMARY.model_copy(update={"auxiliary_exams": [
        ExamItem(name="LVEF", value="48", unit="%"), *SAMPLE_SUMMARY.auxiliary_exams[:1]]})
    record.adopt_run(sample_report(summary=altered))
    assert record.blockers(confirmed)[0] == "核对发现 1 处错误尚未处理：数值在原文中找不到（编造或改动）：LVEF 48%"


def test_codes_the_doctor_confirmed_survive_a_regeneration() -> None:
    report = sample_report()
    record = OpenRecord(report.document)
    first = record.adopt_run(report)
    chosen = replace(first[1], code="I11.9", confirmed=True)
    record.regenerating([first[0], chosen, first[2]])
    again = record.adopt_run(sample_report())
    assert again[1] is chosen and not again[0].confirmed and record.kept_codes == {}


def test_a_signed_version_reopens_read_only_and_a_rejected_one_refused() -> None:
    document = load_document(SAMPLE_RECORD)
    signed = OpenRecord.reopened(document, RunEvidence(), DraftStatus.SIGNED, demo=False)
    assert signed.signed and not signed.editable and signed.can_copy
    rejected = OpenRecord.reopened(document, RunEvidence(), DraftStatus.REJECTED, demo=True)
    assert rejected.rejected and rejected.demo_draft and not rejected.can_sign


def test_what_a_coder_would_send_back_blocks_the_signature(icd_data) -> None:
    """A diagnosis the record does not state, a category with subcategories (I50 picked from a search), a code
    the patient cannot have (an O-chapter code for a man): each a blocker with its reason."""
    from inference.icd.coding import MANUAL, to_final_codes
    from inference.icd.table import open_table

    table = open_table("who-zh")
    added = SAMPLE_SUMMARY.model_copy(update={"diagnoses": [*SAMPLE_SUMMARY.diagnoses, Diagnosis(name="急性胰腺炎")]})
    report = sample_report(summary=added)
    record = OpenRecord(report.document)
    codes = [replace(a, confirmed=True) for a in record.adopt_run(report)]
    codes[0] = replace(codes[0], code="I50", name="心力衰竭", provenance=MANUAL)
    codes.append(replace(codes[1], diagnosis="皮肤黄染", code="O26.6", name="妊娠期肝病"))
    blockers = record.blockers(codes, table)
    assert any(b.startswith("诊断原文没有依据") and "急性胰腺炎" in b for b in blockers)
    assert "编码 I50（慢性心力衰竭急性加重）下还有亚目，须选到末级编码" in blockers
    assert any(b.startswith("O26.6 属“妊娠、分娩和产褥期”，仅适用于女性，病历为男，68 岁") for b in blockers)
    right = OpenRecord(report.document)
    final = to_final_codes(right.adopt_run(sample_report()), table)  # I11 → I11.0, as the pipeline codes
    assert right.blockers([replace(a, confirmed=True) for a in final], table) == ()  # the right draft, confirmed
