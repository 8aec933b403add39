"""Export one version of a summary: EMR text, Markdown, JSON, and a FHIR R4 Bundle for HIS integration.

What leaves the PC says what it is: a demo-model draft carries its mark in every form; a signed version carries
its status, the signing doctor, the time, every finding or blocker that stood when it was signed and the reason
given for signing over them, and its ICD codes; a FHIR Composition of it is ``final`` with the doctor as attester.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from inference.record.status import STATUS_LABELS, Attestation, DraftStatus
from inference.record.summary import ABSENT, SECTION_HEADINGS, render_emr_text, section_text
from inference.templates.catalog import default_template
from inference.templates.content import AnySummary, TemplatedSummary, diagnosis_names

if TYPE_CHECKING:  # the CLI reads EXPORT_FORMATS at start-up: the ICD lookup stays unloaded
    from inference.icd.coding import IcdAssignment

EXPORT_FORMATS = ("txt", "md", "json", "fhir")
# Carried by every copy and export of a draft the demo model wrote: it must not pass for a clinical summary.
DEMO_MARK = "【演示模型生成，不可用于临床】"
DRAFT_AUTHOR = "MedBrief（AI 草稿，待医生审核）"
LOINC = "http://loinc.org"
DOCUMENT_TYPES = {"18842-5": "Discharge summary", "11506-3": "Progress note", "34109-9": "Note"}


@dataclass(frozen=True)
class ExportedVersion:
    """One version as it leaves the PC: its summary and codes, and what it is."""

    summary: AnySummary  # the four sections, or a summary written with a template
    icd: list[IcdAssignment] = field(default_factory=list)
    demo: bool = False
    status: DraftStatus = DraftStatus.DRAFT
    version: int | None = None
    attestation: Attestation | None = None  # the review or signature that made it ``status``
    findings: list[dict[str, Any]] = field(default_factory=list)  # the review of this version (Finding.as_dict)

    @property
    def signed(self) -> bool:
        return self.status == DraftStatus.SIGNED

    @property
    def title(self) -> str:
        """The document's name: the template's (病历摘要 for the four sections)."""
        return self.summary.template.name if isinstance(self.summary, TemplatedSummary) else "病历摘要"


def to_text(summary: AnySummary, demo: bool = False) -> str:
    """The EMR text a doctor pastes (the copy button): the summary alone, and the demo mark."""
    emr = summary.emr_text() if isinstance(summary, TemplatedSummary) else render_emr_text(summary)
    return (DEMO_MARK + "\n" if demo else "") + emr



def _code(assignment: IcdAssignment | None) -> str:
    return f"{assignment.code} {assignment.name}" if assignment and assignment.code else "未编码"


def _attestation_lines(record: ExportedVersion) -> list[str]:
    lines = [f"状态：{STATUS_LABELS[record.status]}" + (f"（第 {record.version} 版）" if record.version else "")]
    attestation = record.attestation
    if attestation is not None:
        verb = "签署" if attestation.signed else "审核"
        lines.append(f"{verb}医生：{attestation.signer}（系统用户 {attestation.os_user}），{attestation.local_time()}")
        if attestation.overridden:
            lines.append(f"{verb}时未处理的问题（医生确认后{verb}，理由：{attestation.override}）：")
            lines += [f"- {item}" for item in attestation.overridden]
    return lines


def to_full_text(record: ExportedVersion) -> str:
    """The text export: the summary, its ICD codes, and what the version is."""
    codes = {a.diagnosis: a for a in record.icd}
    lines = [to_text(record.summary, record.demo).rstrip("\n")]
    if record.icd:
        lines += ["【ICD-10】"] + [f"{name}：{_code(codes.get(name))}" for name in diagnosis_names(record.summary)]
    lines += ["【审核与签署】", *_attestation_lines(record)]
    return "\n".join(lines) + "\n"


def _coded(name: str, codes: dict[str, IcdAssignment]) -> str:
    assignment = codes.get(name)
    return f"{name}（ICD-10 {assignment.code} {assignment.name}）" if assignment and assignment.code else name


def _templated_markdown(summary: TemplatedSummary, codes: dict[str, IcdAssignment]) -> list[str]:
    lines: list[str] = []
    for spec in summary.template.sections:
        lines += [f"## {spec.heading}", ""]
        content = summary.content(spec.id)
        if isinstance(content, str):
            lines.append(content or ABSENT)
        elif spec.kind == "diagnoses":
            lines += [f"{i}. {_coded(name, codes)}" for i, name in enumerate(summary.text(spec.id).splitlines(), 1)]
        else:
            lines += [f"- {line}" for line in summary.text(spec.id).replace("；", "\n").splitlines()]
        if not content:
            lines.append(ABSENT)
        lines.append("")
    return lines


def to_markdown(record: ExportedVersion, title: str | None = None) -> str:
    summary, codes = record.summary, {a.diagnosis: a for a in record.icd}
    lines = [f"# {title or record.title}", "", *([f"> **{DEMO_MARK}**", ""] if record.demo else [])]
    if isinstance(summary, TemplatedSummary):
        lines += _templated_markdown(summary, codes) + ["## 审核与签署", "", *[
            line if line.startswith("- ") else f"{line}  " for line in _attestation_lines(record)]]
        return "\n".join(lines) + "\n"
    lines += [
             f"## {SECTION_HEADINGS['chief_complaint']}", "", summary.chief_complaint or ABSENT, "",
             f"## {SECTION_HEADINGS['present_illness']}", "", summary.present_illness or ABSENT, "",
             f"## {SECTION_HEADINGS['auxiliary_exams']}", ""]
    lines += [f"- {item.as_text()}" for item in summary.auxiliary_exams] or [ABSENT]
    lines += ["", f"## {SECTION_HEADINGS['diagnoses']}", ""]
    lines += [f"{index}. {_coded(d.name, codes)}" for index, d in enumerate(summary.diagnoses, 1)]
    if not summary.diagnoses:
        lines.append(ABSENT)
    lines += ["", "## 审核与签署", "", *[line if line.startswith("- ") else f"{line}  " for line in
                                        _attestation_lines(record)]]
    return "\n".join(lines) + "\n"


def _summary_json(summary: AnySummary, codes: dict[str, Any]) -> dict[str, Any]:
    if isinstance(summary, TemplatedSummary):
        data = summary.as_dict()
        for section in data["sections"]:
            if section["kind"] == "diagnoses":
                section["content"] = [{**d, "icd": codes.get(d["name"])} for d in section["content"]]
        return data
    return {
        "chief_complaint": summary.chief_complaint,
        "present_illness": summary.present_illness,
        "auxiliary_exams": [item.model_dump() for item in summary.auxiliary_exams],
        "diagnoses": [{**d.model_dump(), "icd": codes.get(d.name)} for d in summary.diagnoses],
    }


def to_json(record: ExportedVersion, **extra: object) -> str:
    codes = {a.diagnosis: a.as_dict() for a in record.icd}
    data = {
        **_summary_json(record.summary, codes),
        "status": str(record.status),
        "version": record.version,
        "attestation": record.attestation.as_dict() if record.attestation else None,
        "findings": record.findings,
        **({"demo": True, "notice": DEMO_MARK} if record.demo else {}),
        **extra,
    }
    return json.dumps(data, ensure_ascii=False, indent=2)


def to_fhir_bundle(record: ExportedVersion, *, title: str | None = None, date: str | None = None,
                   code_system: str = "http://hl7.org/fhir/sid/icd-10") -> dict[str, Any]:
    """A FHIR R4 ``Bundle`` (type document): a ``Composition`` with one section per summary part (its LOINC section
    code where the template gives one) and ``Condition`` resources carrying the ICD-10 codes, referenced from
    the diagnoses sections. A signed version is ``final``, its
    doctor the author and the legal attester; what stood when it was signed is a section of its own."""
    summary, attestation = record.summary, record.attestation
    title = title or record.title
    date = date or datetime.now(timezone.utc).isoformat(timespec="seconds")
    codes = {a.diagnosis: a for a in record.icd}
    status = "final" if record.signed else "preliminary"
    conditions = []
    for name in diagnosis_names(summary):
        assignment = codes.get(name)
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "id": str(uuid.uuid4()),
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed" if record.signed else "provisional"}]},
            "code": {"text": name},
            "subject": {"display": "匿名患者"},
        }
        if assignment and assignment.code:
            condition["code"]["coding"] = [{"system": code_system, "code": assignment.code,
                                            "display": assignment.name}]
        conditions.append(condition)
    condition_ids = {c["code"]["text"]: c["id"] for c in conditions}

    def section(heading: str, text: str, entries: list[dict[str, str]] | None = None,
                loinc: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"title": heading, **({"code": {"coding": [{"system": LOINC, "code": loinc}]}}
                                                      if loinc else {}), "text": {
            "status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{_escape(text)}</div>'}}
        if entries:
            body["entry"] = entries
        return body

    sections = []
    template = summary.template if isinstance(summary, TemplatedSummary) else default_template()
    for spec in template.sections:
        if isinstance(summary, TemplatedSummary):
            names = [item.name for item in summary.items(spec.id)] if spec.kind == "diagnoses" else []
            text = "；".join(names) if spec.kind == "diagnoses" else summary.text(spec.id)
        else:
            names = [d.name for d in summary.diagnoses] if spec.id == "diagnoses" else []
            text = "；".join(names) if spec.id == "diagnoses" else (
                section_text(summary, spec.id) if spec.id == "auxiliary_exams" else getattr(summary, spec.id))
        sections.append(section(spec.heading, text or ABSENT,
                                [{"reference": f"urn:uuid:{condition_ids[n]}"} for n in names], spec.loinc))
    composition: dict[str, Any] = {
        "resourceType": "Composition",
        "id": str(uuid.uuid4()),
        "status": status,
        "type": {"coding": [{"system": LOINC, "code": template.loinc,
                             **({"display": DOCUMENT_TYPES[template.loinc]} if template.loinc in DOCUMENT_TYPES else {})}],
                 "text": title},
        "date": date,
        "title": title,
        "author": [{"display": attestation.signer if attestation is not None and attestation.signer else DRAFT_AUTHOR}],
        "section": sections,
    }
    if attestation is not None and attestation.signed:
        composition["attester"] = [{"mode": "legal", "time": attestation.as_dict()["at"],
                                    "party": {"display": attestation.signer}}]
    if attestation is not None and attestation.overridden:
        sections.append(section("签署时未处理的问题", "；".join(attestation.overridden)
                                + f"。理由：{attestation.override}"))
    entries = [{"fullUrl": f"urn:uuid:{composition['id']}", "resource": composition}]
    entries += [{"fullUrl": f"urn:uuid:{c['id']}", "resource": c} for c in conditions]
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "document", "timestamp": date,
            "entry": entries}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def export(record: ExportedVersion, fmt: str) -> str:
    """The version in one of ``EXPORT_FORMATS``."""
    if fmt == "txt":
        return to_full_text(record)
    if fmt == "md":
        return to_markdown(record)
    if fmt == "json":
        return to_json(record)
    if fmt == "fhir":
        title = f"{DEMO_MARK}{record.title}" if record.demo else record.title
        return json.dumps(to_fhir_bundle(record, title=title), ensure_ascii=False, indent=2)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
