"""Export one summary: EMR text (【主诉】…), Markdown, JSON, and a FHIR R4 Bundle for HIS integration."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from inference.icd.coding import IcdAssignment
from inference.record.summary import ABSENT, SECTION_HEADINGS, StructuredSummary, render_emr_text

EXPORT_FORMATS = ("txt", "md", "json", "fhir")
# Carried by every copy and export of a draft the demo model wrote: it must not pass for a clinical summary.
DEMO_MARK = "【演示模型生成，不可用于临床】"


def to_text(summary: StructuredSummary, demo: bool = False) -> str:
    return (DEMO_MARK + "\n" if demo else "") + render_emr_text(summary)


def to_markdown(summary: StructuredSummary, icd: list[IcdAssignment] | None = None, title: str = "病历摘要",
                demo: bool = False) -> str:
    codes = {a.diagnosis: a for a in icd or []}
    lines = [f"# {title}", "", *([f"> **{DEMO_MARK}**", ""] if demo else []), f"## {SECTION_HEADINGS['chief_complaint']}", "", summary.chief_complaint or ABSENT, "",
             f"## {SECTION_HEADINGS['present_illness']}", "", summary.present_illness or ABSENT, "",
             f"## {SECTION_HEADINGS['auxiliary_exams']}", ""]
    lines += [f"- {item.as_text()}" for item in summary.auxiliary_exams] or [ABSENT]
    lines += ["", f"## {SECTION_HEADINGS['diagnoses']}", ""]
    for index, diagnosis in enumerate(summary.diagnoses, 1):
        assignment = codes.get(diagnosis.name)
        code = f"（ICD-10 {assignment.code} {assignment.name}）" if assignment and assignment.code else ""
        lines.append(f"{index}. {diagnosis.name}{code}")
    if not summary.diagnoses:
        lines.append(ABSENT)
    return "\n".join(lines) + "\n"


def to_json(summary: StructuredSummary, icd: list[IcdAssignment] | None = None, **extra: object) -> str:
    codes = {a.diagnosis: a.as_dict() for a in icd or []}
    data = {
        "chief_complaint": summary.chief_complaint,
        "present_illness": summary.present_illness,
        "auxiliary_exams": [item.model_dump() for item in summary.auxiliary_exams],
        "diagnoses": [{**d.model_dump(), "icd": codes.get(d.name)} for d in summary.diagnoses],
        **extra,
    }
    return json.dumps(data, ensure_ascii=False, indent=2)


def to_fhir_bundle(
    summary: StructuredSummary,
    icd: list[IcdAssignment] | None = None,
    *,
    title: str = "病历摘要",
    status: str = "preliminary",
    date: str | None = None,
    code_system: str = "http://hl7.org/fhir/sid/icd-10",
) -> dict[str, Any]:
    """A FHIR R4 ``Bundle`` (type document): a ``Composition`` with one section per summary part and
    ``Condition`` resources carrying the ICD-10 codes, referenced from the 初步诊断 section."""
    date = date or datetime.now(timezone.utc).isoformat(timespec="seconds")
    codes = {a.diagnosis: a for a in icd or []}
    conditions = []
    for diagnosis in summary.diagnoses:
        assignment = codes.get(diagnosis.name)
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "id": str(uuid.uuid4()),
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed" if status == "final" else "provisional"}]},
            "code": {"text": diagnosis.name},
            "subject": {"display": "匿名患者"},
        }
        if assignment and assignment.code:
            condition["code"]["coding"] = [{"system": code_system, "code": assignment.code,
                                            "display": assignment.name}]
        conditions.append(condition)

    def section(key: str, text: str, entries: list[dict[str, str]] | None = None) -> dict[str, Any]:
        body = {"title": SECTION_HEADINGS[key],
                "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{_escape(text)}</div>'}}
        if entries:
            body["entry"] = entries
        return body

    composition = {
        "resourceType": "Composition",
        "id": str(uuid.uuid4()),
        "status": status,
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5", "display": "Discharge summary"}],
                 "text": title},
        "date": date,
        "title": title,
        "author": [{"display": "MedBrief（AI 草稿，经医生审核）"}],
        "section": [
            section("chief_complaint", summary.chief_complaint or ABSENT),
            section("present_illness", summary.present_illness or ABSENT),
            section("auxiliary_exams", "；".join(i.as_text() for i in summary.auxiliary_exams) or ABSENT),
            section("diagnoses", "；".join(d.name for d in summary.diagnoses) or ABSENT,
                    [{"reference": f"urn:uuid:{c['id']}"} for c in conditions]),
        ],
    }
    entries = [{"fullUrl": f"urn:uuid:{composition['id']}", "resource": composition}]
    entries += [{"fullUrl": f"urn:uuid:{c['id']}", "resource": c} for c in conditions]
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "document", "timestamp": date,
            "entry": entries}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def export(summary: StructuredSummary, fmt: str, icd: list[IcdAssignment] | None = None, *, demo: bool = False,
           **extra: object) -> str:
    """``demo``: the draft came from the demo model; every format says so."""
    if fmt == "txt":
        return to_text(summary, demo)
    if fmt == "md":
        return to_markdown(summary, icd, demo=demo)
    if fmt == "json":
        return to_json(summary, icd, **({"demo": True, "notice": DEMO_MARK} if demo else {}), **extra)
    if fmt == "fhir":
        title = f"{DEMO_MARK}病历摘要" if demo else "病历摘要"
        return json.dumps(to_fhir_bundle(summary, icd, title=title), ensure_ascii=False, indent=2)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
