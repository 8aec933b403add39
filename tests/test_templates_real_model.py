"""Every built-in template on the real demo model: the draft parses, nothing invented reaches the doctor, a long
record is written in parts and fused, and the command line writes, keeps and exports a template's summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.cli.main import main
from inference.documents import load_document
from inference.pipeline import TemplatedReport, run_pipeline
from inference.templates.catalog import TemplateCatalog
from tests.conftest import SAMPLE_RECORD

INVENTION_RULES = ("V1", "V3", "V5", "V6", "V7", "M1", "M2", "N1", "N2", "T2")


@pytest.mark.parametrize("template_id", ["discharge", "first_course", "handover"])
def test_each_built_in_template_writes_a_reviewed_draft_of_the_sample(demo_engine, template_id: str) -> None:
    template = TemplateCatalog().get(template_id)
    document = load_document(SAMPLE_RECORD)
    report = run_pipeline(document, demo_engine, template=template)
    assert isinstance(report, TemplatedReport) and report.validation is not None
    errors = [f for f in report.validation.findings if f.severity == "error" and f.rule_id in INVENTION_RULES]
    assert errors == [], [f.message for f in errors]  # what the record does not say was removed, not shown
    text = report.emr_text()
    headings = [f"【{s.heading}】" for s in template.sections]
    assert [text.index(h) for h in headings] == sorted(text.index(h) for h in headings)
    data = report.as_json()
    assert data["template"]["id"] == template_id and [s["id"] for s in data["sections"]] == [
        s.id for s in template.sections]
    assert report.result.prompt_version.endswith(f"+{template_id}@1#{template.content_hash[:8]}")
    for name in report.result.summary.diagnoses():
        assert name in document.text  # every diagnosis as the record words it


def test_a_long_record_is_written_in_parts_and_fused(demo_engine) -> None:
    template = TemplateCatalog().get("handover")
    record = SAMPLE_RECORD.read_text(encoding="utf-8")
    document = load_document(SAMPLE_RECORD)
    long = type(document)(file_name="long.txt", text="入院记录\n" + record + "\n\n入院记录\n" + record,
                          encoding="utf-8", sha256="b" * 64)
    report = run_pipeline(long, demo_engine, template=template, part_budget=250)
    assert len(report.result.parts) >= 2
    assert report.validation is not None and not any(
        f.severity == "error" and f.rule_id in INVENTION_RULES for f in report.validation.findings)
    watch = [item.as_text() for item in report.result.summary.items("watch")]
    assert len(watch) == len(set(watch))  # an item two parts both wrote is there once


def test_the_command_line_writes_keeps_and_exports_a_templates_summary(demo_model_path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "discharge.json"
    assert main(["summarize", str(SAMPLE_RECORD), "--template", "discharge", "--no-icd", "--quiet", "--json",
                 "--out", str(out), "--save"]) in (0, 1)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["template"]["name"] == "出院记录" and data["verdict"] != "rejected"
    assert main(["validate", str(out), "--source", str(SAMPLE_RECORD), "--table", "who-zh"]) in (0, 1)
    capsys.readouterr()
    assert main(["history", "export", "1", "--format", "fhir"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    composition = bundle["entry"][0]["resource"]
    assert composition["title"].endswith("出院记录") and composition["type"]["coding"][0]["code"] == "18842-5"
    assert [s["title"] for s in composition["section"]][:8] == [s.heading for s in TemplateCatalog().get(
        "discharge").sections]


def test_a_templates_fixed_prompt_is_evaluated_once_per_model(demo_engine) -> None:
    """The template's instructions and example exchange are a prefix the decoder keeps: a second record with the
    same template evaluates only its own part of the prompt."""
    template = TemplateCatalog().get("handover")
    document = load_document(SAMPLE_RECORD)
    run_pipeline(document, demo_engine, template=template)
    other = type(document)(file_name="other.txt", text=document.text.replace("68岁", "70岁"), encoding="utf-8",
                           sha256="c" * 64)
    call = run_pipeline(other, demo_engine, template=template).result.timings.calls[0]
    assert call["prompt_tokens_evaluated"] < call["prompt_tokens"] / 2
