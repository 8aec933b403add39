"""``medbrief --self-test``: does this installation work, end to end, on this machine?

For IT after installing or updating a ward PC (and for the packaged folder): the bundled ICD table, the learned
lookup and the combination rules load; the summary templates read and their grammars build; a bundled scan of the sample record is read by OCR in the bounded reader
process, every value of the record found in it; the configured model (else the demo model) loads; the sample record
is summarized, checked and coded; a history record is written and read back in a temporary data folder, so a
user's own history is never touched. One line per check; exit 0 only when every check passes, else 9.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.errors import MedBriefError
from inference.paths import sample_record_path

if TYPE_CHECKING:
    from inference.history.store import HistoryStore
    from inference.llm.engine import EngineInfo
    from inference.llm.settings import EngineSettings
    from inference.pipeline import BriefReport

SELF_TEST_FAILED = 9
TABLE, MODEL, SUMMARY, HISTORY = "内置 ICD 编码表", "模型加载", "样例病历摘要", "历史记录读写"
HISTORY_DETAIL = "临时数据目录中写入并读回一份记录（用户的历史记录未动）"


class SelfTestChecks:
    def __init__(self) -> None:
        self.failed = 0
        self.skipped = 0  # not run because a check they need failed: one cause, counted once
        self.results: dict[str, Any] = {}

    def run(self, name: str, check: Callable[[], tuple[Any, str]], needs: tuple[str, ...] = ()) -> None:
        missing = [n for n in needs if n not in self.results]
        if missing:
            self.skipped += 1
            print(f"未运行  {name}：{'、'.join(missing)}未通过 / skipped", flush=True)
            return
        started = time.perf_counter()
        try:
            value, detail = check()
        except MedBriefError as exc:
            self._line(False, name, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - a self-test reports what broke, it does not crash
            self._line(False, name, f"{type(exc).__name__}: {exc}")
            return
        self.results[name] = value
        self._line(True, name, f"{detail}（{time.perf_counter() - started:.1f} s）")

    def _line(self, ok: bool, name: str, detail: str) -> None:
        self.failed += not ok
        print(f"{'通过' if ok else '失败'}  {name}：{detail}", flush=True)


def run_self_test(engine_settings: EngineSettings | None) -> int:
    """Every check; the model's only with settings (None: ``--no-model``)."""
    checks = SelfTestChecks()
    core_checks(checks)
    if engine_settings is not None:
        _model_checks(checks, engine_settings)
    _history_check(checks)
    return finish(checks)


def core_checks(checks: SelfTestChecks) -> None:
    """What every installation needs before a model is involved: the bundled table, the learned lookup, the
    combination rules."""
    from inference.icd.learned import load_shipped
    from inference.icd.precision import load_rules
    from inference.icd.table import BUNDLED_TABLE, open_table

    def table() -> tuple[Any, str]:
        loaded = open_table(BUNDLED_TABLE)
        return loaded, f"{loaded.info.version}，{loaded.info.rows} 条"

    def learned() -> tuple[Any, str]:
        shipped = load_shipped()
        return shipped, f"清单核对通过，代码 {shipped.manifest['code'][:12]}"

    def rules() -> tuple[Any, str]:
        loaded = load_rules()
        return loaded, f"{len(loaded)} 条"

    checks.run(TABLE, table)
    checks.run("ICD 学习数据", learned)
    checks.run("合并编码规则", rules)
    checks.run("摘要模板", templates_check)
    checks.run("扫描件文字识别", scan_check)


def templates_check() -> tuple[Any, str]:
    """Every built-in template reads and its grammar builds; the department's are counted, an unusable one named
    (it does not fail the check: the others work, and ``medbrief template list`` says why)."""
    from inference.summary.templated import template_gbnf
    from inference.templates.catalog import TemplateCatalog

    catalog = TemplateCatalog()
    broken = [e.id for e in catalog.entries if e.builtin and e.template is None]
    if broken:
        raise MedBriefError(f"内置摘要模板损坏：{'、'.join(broken)}，请重新安装 / built-in templates damaged")
    for template in catalog.usable():
        template_gbnf(template)
    department = [e for e in catalog.entries if not e.builtin]
    unusable = [e.file.name for e in department if not e.usable]
    return catalog, (f"内置 {sum(e.builtin for e in catalog.entries)} 个，科室 {len(department)} 个"
                     + (f"（不可用：{'、'.join(unusable)}，见 medbrief template list）" if unusable else ""))


def scan_check() -> tuple[Any, str]:
    """The bundled scan read as a ward PC reads a photo of a record: in the reader process, offline."""
    import re

    from inference.documents import load_document
    from inference.paths import sample_scan_path

    document = load_document(sample_scan_path())
    numbers = re.findall(r"\d+(?:\.\d+)?", sample_record_path().read_text(encoding="utf-8"))
    read = re.findall(r"\d+(?:\.\d+)?", document.text)
    missing = [n for n in numbers if n not in read]
    if missing:
        raise MedBriefError(f"扫描件识别结果缺少数值 {missing} / values not read from the bundled scan")
    lines = document.provenance.lines
    return document, f"{len(numbers)} 个数值全部识别，最低置信度 {min(line.confidence or 0 for line in lines):.2f}"


def finish(checks: SelfTestChecks) -> int:
    skipped = f"，{checks.skipped} 项因此未运行" if checks.skipped else ""
    print(f"自检{'通过' if not checks.failed else f'未通过：{checks.failed} 项失败{skipped}'} / self-test "
          f"{'passed' if not checks.failed else 'failed'}", flush=True)
    return 0 if not checks.failed else SELF_TEST_FAILED


def report_checks(checks: SelfTestChecks) -> None:
    """The sample's run (``checks.results[SUMMARY]``) was checked against the record and coded to leaf codes."""
    from inference.icd.precision import is_leaf

    def review() -> tuple[Any, str]:
        report = checks.results[SUMMARY]
        if report.rejected:
            raise MedBriefError("样例病历的摘要未通过核对 / the sample's summary was rejected")
        return report.validation, f"结论 {report.validation.verdict}，{len(report.validation.findings)} 条提示"

    def coding() -> tuple[Any, str]:
        report, table = checks.results[SUMMARY], checks.results[TABLE]
        codes = [a.code for a in report.icd if a.code]
        if not codes or any(code not in table or not is_leaf(code, table) for code in codes):
            raise MedBriefError(f"ICD 编码不完整或不是末级编码：{codes} / codes missing or not leaf codes")
        return codes, "、".join(codes)

    checks.run("原文核对", review, needs=(SUMMARY,))
    checks.run("ICD 编码", coding, needs=(SUMMARY, TABLE))


def check_summary(report: BriefReport) -> str:
    result = report.result.summary
    if not (result.chief_complaint and result.present_illness and result.diagnoses):
        raise MedBriefError("样例病历的摘要缺少主诉、现病史或诊断 / the sample's summary is incomplete")
    return f"{len(result.diagnoses)} 个诊断，用时 {report.elapsed_s:.1f} s"


def _model_checks(checks: SelfTestChecks, settings: EngineSettings) -> None:
    from inference.documents import load_document
    from inference.llm.backends import open_engine
    from inference.pipeline import run_pipeline
    from inference.progress import RunContext

    def model() -> tuple[Any, str]:
        engine = open_engine(settings)
        return engine, describe_engine(engine.info)

    def summary() -> tuple[Any, str]:
        report = run_pipeline(load_document(sample_record_path()), checks.results[MODEL], RunContext(),
                              table=checks.results[TABLE])
        return report, check_summary(report)

    checks.run(MODEL, model)
    try:
        checks.run(SUMMARY, summary, needs=(MODEL, TABLE))
        report_checks(checks)
    finally:
        engine = checks.results.get(MODEL)
        if engine is not None:
            engine.close()


def describe_engine(info: EngineInfo) -> str:
    return (f"{Path(info.model_path).name}（{info.quantization}），运行于 {info.placement}"
            + (f"，LoRA {info.adapter}" if info.lora else "") + ("，演示模型" if info.is_demo else ""))


def check_read_back(store: HistoryStore, document_id: int, report: BriefReport) -> None:
    """The draft the history gives back is the one the run wrote."""
    if store.document(document_id) is None or \
            store.versions(document_id)[-1].summary["chief_complaint"] != report.result.summary.chief_complaint:
        raise MedBriefError("历史记录读回的内容与写入的不同 / the history read back differs")


def _history_check(checks: SelfTestChecks) -> None:
    from inference.history.store import HistoryStore

    def history() -> tuple[Any, str]:
        report = checks.results.get(SUMMARY)
        with tempfile.TemporaryDirectory(prefix="medbrief-self-test-") as folder:
            store = HistoryStore.open(Path(folder) / "history.sqlite")
            try:
                if report is not None:
                    document_id = store.record_run(report.run_record(), {}).document_id
                    check_read_back(store, document_id, report)
                else:
                    from inference.documents import load_document

                    document_id = store.add_document(load_document(sample_record_path()))
                if store.document(document_id) is None:
                    raise MedBriefError("历史记录读回失败 / the record could not be read back")
            finally:
                store.close()
        return None, HISTORY_DETAIL

    checks.run(HISTORY, history)  # with the sample's run when there is one, else the record alone

