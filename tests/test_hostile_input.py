"""A ward PC shared by many doctors, tried as a hostile tester would: every bad input is one line and its
documented exit code, a failed save never costs the draft, two writers never lose a run, a damaged history
gives back what it still holds, and nothing MedBrief keeps is readable by another OS account."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.documents import load_document
from inference.errors import InputError, ModelError
from inference.history.store import HistoryStore
from inference.llm.engine import Engine
from inference.llm.settings import EngineSettings
from inference.record.summary import StructuredSummary
from tests.conftest import REPO_ROOT, SAMPLE_RECORD
from tests.gguf_factory import write_gguf
from tests.history_helpers import SAMPLE_SUMMARY, sample_report

OTHER_UID = 65534  # nobody


def medbrief(*args: str, env: dict[str, str] | None = None, timeout: int = 120,
             user: int | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess; ``user`` runs it as another OS account (needs root to switch)."""
    prefix: list[str] = []
    if user is not None:
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    return subprocess.run([*prefix, sys.executable, "-m", "inference", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=timeout, env={**os.environ, **(env or {})})


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder another account can reach (pytest's own tmp folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="medbrief-ward-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="switching to another OS account needs root and setpriv")


# -- records and summaries ------------------------------------------------------------------------------


def _docx_bytes(text: str) -> bytes:
    from docx import Document

    buffer = io.BytesIO()
    document = Document()
    document.add_paragraph(text)
    document.save(buffer)
    return buffer.getvalue()


def test_a_docx_with_a_truncated_document_xml_is_an_input_error(tmp_path: Path, sample_text: str) -> None:
    whole = zipfile.ZipFile(io.BytesIO(_docx_bytes(sample_text)))
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(broken, "w") as out:
        for item in whole.infolist():
            data = whole.read(item)
            out.writestr(item, data[: len(data) // 2] if item.filename == "word/document.xml" else data)
    with pytest.raises(InputError, match="corrupt or not a .docx"):
        load_document(broken)
    proc = medbrief("summarize", str(broken), "--quiet")
    assert proc.returncode == 3 and "docx" in one_line(proc)


@needs_root
def test_a_record_the_user_may_not_read_is_an_input_error(shared_tmp: Path, sample_text: str) -> None:
    record = shared_tmp / "private.txt"
    record.write_text(sample_text, encoding="utf-8")
    record.chmod(0o600)  # root's record; the doctor's account may not read it
    proc = medbrief("summarize", str(record), "--quiet", env={"MEDBRIEF_DATA_DIR": str(shared_tmp / "data"),
                                                              "MEDBRIEF_CONFIG_DIR": str(shared_tmp / "config")},
                    user=OTHER_UID)
    assert proc.returncode == 3 and "permission denied" in one_line(proc)


def test_validate_refuses_a_deeply_nested_or_huge_summary_json(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    proc = medbrief("validate", str(deep), "--source", str(SAMPLE_RECORD))
    assert proc.returncode == 3 and "nested too deeply" in one_line(proc)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"chief_complaint": "胸闷" * 3_000_000}), encoding="utf-8")
    proc = medbrief("validate", str(huge), "--source", str(SAMPLE_RECORD), timeout=30)
    assert proc.returncode == 3 and "too large" in one_line(proc)


@pytest.mark.parametrize("evidence", [[1, 2], {"scopes": [{"section": 1}]}, {"removals": "x"},
                                      {"scopes": [{"section": "a", "text": "b", "ranges": [[1]]}]}])
def test_validate_refuses_malformed_evidence_in_one_line(tmp_path: Path, evidence: object) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({**SAMPLE_SUMMARY.model_dump(), "evidence": evidence}, ensure_ascii=False),
                       encoding="utf-8")
    proc = medbrief("validate", str(summary), "--source", str(SAMPLE_RECORD))
    assert proc.returncode == 3 and "malformed evidence" in one_line(proc)


def test_a_summary_of_punctuation_alone_is_rejected(sample_text: str) -> None:
    """What a model with a broken header (rope_freq_base NaN) wrote: "," in every section."""
    from inference.checks.validation import validate

    broken = StructuredSummary(chief_complaint=",", present_illness=",", auxiliary_exams=[], diagnoses=[])
    report = validate(broken, sample_text, None)
    assert report.verdict == "rejected" and any(f.rule_id == "R2" for f in report.findings)
    assert validate(SAMPLE_SUMMARY, sample_text, None).verdict != "rejected"


# -- models -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"general.architecture": "qwen2", "tokenizer.chat_template": "{% if messages %}{{ unclosed"},
         "chat template does not parse"),
        ({"general.architecture": "bert", "bert.pooling_type": 1}, "cannot write text"),
        ({"general.architecture": "nomic-bert"}, "encoder-only"),
        ({"general.architecture": "qwen2", "qwen2.rope.freq_base": float("nan")}, "non-finite"),
    ],
    ids=["template", "bert", "encoder-only", "nan"],
)
def test_models_that_cannot_write_a_summary_are_refused_before_loading(tmp_path: Path, metadata: dict,
                                                                      message: str) -> None:
    path = write_gguf(tmp_path / "bad.gguf", metadata)
    with pytest.raises(ModelError, match=message):
        Engine(EngineSettings(model_path=path, n_ctx=2048))
    proc = medbrief("summarize", str(SAMPLE_RECORD), "--quiet", "--model", str(path), "--n-ctx", "2048")
    assert proc.returncode == 4 and message in one_line(proc)


def test_a_copy_of_the_demo_model_is_still_the_demo(demo_model_path: Path, tmp_path: Path) -> None:
    from inference.llm.demo_model import DEMO_SIZE, is_demo_model

    link = tmp_path / "renamed.gguf"
    try:
        os.link(demo_model_path, link)
    except OSError:  # another file system: a real copy
        shutil.copyfile(demo_model_path, link)
    assert is_demo_model(link)
    same_size = tmp_path / "other.gguf"
    with same_size.open("wb") as handle:
        handle.truncate(DEMO_SIZE)
    assert not is_demo_model(same_size)


def test_config_file_errors_name_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"engine": {"n_ctx": -5}}), encoding="utf-8")
    proc = medbrief("summarize", str(SAMPLE_RECORD), "--quiet", env={"MEDBRIEF_CONFIG_DIR": str(config)})
    assert proc.returncode == 4 and "engine.n_ctx" in one_line(proc)


def test_usage_errors_exit_2() -> None:
    for args in (["icd", "import", "x.csv"], ["history", "show"], ["icd", "a", "--top", "0"]):
        proc = medbrief(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        one_line(proc)


# -- ICD tables and lookups ---------------------------------------------------------------------------------


def test_icd_import_refuses_broken_or_junk_tables_and_protects_names(tmp_path: Path) -> None:
    good = tmp_path / "his.csv"
    good.write_text("编码,名称\nI50.908,慢性心力衰竭\nI10.x00,高血压\nN18.9,慢性肾脏病\n", encoding="utf-8")
    quote = tmp_path / "quote.csv"
    quote.write_text('编码,名称\nI50.908,"慢性心力衰竭\n' + "I10,高血压\n" * 20_000, encoding="utf-8")
    junk = tmp_path / "junk.csv"
    junk.write_text("".join(f"A{i % 100:02d}.{i:06d},病{i}\n" for i in range(200_000)), encoding="utf-8")
    latin = tmp_path / "latin.csv"
    latin.write_text("".join(f"A{i:02d},disease {i}\n" for i in range(50)), encoding="utf-8")

    def imported(path: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return medbrief("icd", "import", str(path), "--name", name, *extra)

    for path, message in ((quote, "malformed CSV"), (junk, "too many rows"), (latin, "not Chinese")):
        proc = imported(path, "hospital", "--code-column", "1", "--name-column", "2")
        assert proc.returncode == 6 and message in one_line(proc)
    for name in ("who-zh", "..", ".hidden", "a\nb", "a/b"):
        proc = imported(good, name)
        assert proc.returncode == 6, name
        one_line(proc)
    assert imported(good, "hospital").returncode == 0
    again = imported(good, "hospital")
    assert again.returncode == 6 and "--replace" in one_line(again)
    assert imported(good, "hospital", "--replace").returncode == 0


def test_nonsense_and_overlong_queries_get_no_codes(icd_data: Path) -> None:
    from inference.icd.lookup import MAX_QUERY_CHARS, matcher_for
    from inference.icd.table import open_table

    matcher = matcher_for(open_table())
    for nonsense in ("'; DROP TABLE codes; --", "codes", "SELECT * FROM x", "病" * (MAX_QUERY_CHARS + 1)):
        assert matcher.lookup(nonsense) == [] and matcher.codes(nonsense) == [], nonsense
    assert matcher.lookup("COPD")[0].code.startswith("J44")  # an abbreviation is a diagnosis
    if matcher.ranker is not None:  # AECOPD is known from CHIP-CDN wording, learned where ../shared was present
        assert matcher.lookup("AECOPD")[0].code.startswith("J44")
    proc = medbrief("icd", "心" * 10_000, env={"MEDBRIEF_DATA_DIR": str(icd_data)}, timeout=60)
    assert proc.returncode == 3 and "query too long" in one_line(proc)


# -- the history ------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_history_is_private_to_its_account_and_old_installs_are_repaired(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    store = HistoryStore.open(folder / "history.sqlite")
    store.record_run(sample_report().run_record(), {})
    assert _mode(folder) == 0o700
    for name in ("history.sqlite", "history.sqlite-wal", "history.sqlite-shm", "history.open.lock"):
        assert _mode(folder / name) == 0o600, name
    store.close()
    folder.chmod(0o755)  # an install from before this release
    (folder / "history.sqlite").chmod(0o644)
    (folder / "icd_tables").mkdir(mode=0o775)
    (folder / "icd_tables" / "his.sqlite").write_bytes(b"")
    (folder / "icd_tables" / "his.sqlite").chmod(0o664)
    HistoryStore.open(folder / "history.sqlite").close()
    assert _mode(folder) == 0o700 and _mode(folder / "history.sqlite") == 0o600
    assert _mode(folder / "icd_tables") == 0o700 and _mode(folder / "icd_tables" / "his.sqlite") == 0o600


@needs_root
def test_another_account_cannot_read_the_history(shared_tmp: Path) -> None:
    folder = shared_tmp / "data"
    HistoryStore.open(folder / "history.sqlite").close()
    probe = subprocess.run(["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups",
                            "cat", str(folder / "history.sqlite")], capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0 and "Permission denied" in probe.stderr


@needs_root
def test_a_read_only_data_folder_is_reported_and_a_healthy_history_never_moved(shared_tmp: Path) -> None:
    folder = shared_tmp / "data"
    store = HistoryStore.open(folder / "history.sqlite")
    store.record_run(sample_report().run_record(), {})
    store.close()
    folder.chmod(0o755)  # another account's folder: readable, not writable for the doctor
    for path in folder.iterdir():
        path.chmod(0o644)
    before = sorted(p.name for p in folder.iterdir())
    proc = medbrief("history", "list", env={"MEDBRIEF_DATA_DIR": str(folder)}, user=OTHER_UID)
    assert proc.returncode == 7 and "data folder" in one_line(proc)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing moved aside


def test_a_file_sqlite_cannot_open_is_an_error_not_corruption(tmp_path: Path) -> None:
    from inference.errors import StorageError

    path = tmp_path / "history.sqlite"
    path.mkdir()  # opens as nothing SQLite can read, without being a damaged database
    with pytest.raises(StorageError, match="cannot open"):
        HistoryStore.open(path)
    assert path.is_dir() and not list(tmp_path.glob("*.corrupt-*"))


def test_writers_in_parallel_on_a_fresh_folder_lose_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from inference.history.store import HistoryStore\n"
        "from tests.history_helpers import sample_report\n"
        "store = HistoryStore.open()\n"
        "store.record_run(sample_report().run_record(), {})\n"
        "store.close()\n"
    )
    env = {**os.environ, "MEDBRIEF_DATA_DIR": str(folder)}
    writers = [subprocess.Popen([sys.executable, "-c", script, str(REPO_ROOT)], env=env, cwd=REPO_ROOT,
                                stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0, 0], errors
    store = HistoryStore.open(folder / "history.sqlite")
    try:
        assert len(store.list_records()) == 1  # one record (the same text), four runs
        assert len(store.runs(store.list_records()[0].document_id)) == 4
    finally:
        store.close()


def _history_with_records(path: Path, count: int) -> None:
    store = HistoryStore.open(path)
    try:
        for i in range(count):
            report = sample_report()
            text = report.document.text + f"\n第 {i} 份记录。" + "补充病程记录。" * 200  # a few pages each
            report.document = report.document.__class__(text=text, file_name=f"r{i}.txt", encoding="utf-8",
                                                         sha256=f"{i:064d}")
            recorded = store.record_run(report.run_record(), {})
            summary = SAMPLE_SUMMARY.model_copy(update={"chief_complaint": f"MARKER-{i:02d} 反复胸闷气促3年"})
            store.save_edit(recorded.document_id, summary, [])
            store.set_status(recorded.document_id, "reviewed")
    finally:
        store.close()


def test_a_damaged_page_gives_back_every_record_still_readable(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    _history_with_records(path, 12)
    data = bytearray(path.read_bytes())
    page = len(data) // 4096 // 2 * 4096
    data[page:page + 4096] = b"\xa5" * 4096  # one page in the middle overwritten
    path.write_bytes(bytes(data))

    proc = medbrief("history", "list", env={"MEDBRIEF_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 7, proc.stderr  # the command that finds it says so with its exit code
    assert "recovered" in proc.stderr and "Traceback" not in proc.stderr
    listed = [line for line in proc.stdout.splitlines() if ".txt" in line]
    assert 1 <= len(listed) <= 12  # before: a new, empty history
    aside = [p for p in tmp_path.glob("history.sqlite.corrupt-*") if p.name[-1].isdigit()]
    assert len(aside) == 1 and _mode(aside[0]) == 0o600
    again = medbrief("history", "list", env={"MEDBRIEF_DATA_DIR": str(tmp_path)})
    assert again.returncode == 0 and again.stdout == proc.stdout
    store = HistoryStore.open(path)
    try:
        recovered = [e for e in store.audit_log() if e.action == "recover"]
        assert len(recovered) == 1 and recovered[0].detail["documents"] == len(listed)
        assert store.integrity_ok()
    finally:
        store.close()


def test_bytes_damaged_inside_one_record_leave_the_others_exportable(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    _history_with_records(path, 3)
    data = path.read_bytes()
    marker = b'"chief_complaint": "MARKER-01'
    assert data.count(marker) >= 1
    damaged = data.replace(marker, b"}}}}{{{{{{{{]]]]" + marker[16:])  # 16 bytes inside the row's JSON
    path.write_bytes(damaged)
    out = tmp_path / "cohort.jsonl"
    env = {"MEDBRIEF_DATA_DIR": str(tmp_path)}
    proc = medbrief("history", "export", "--reviewed", "--out", str(out), env=env)
    assert proc.returncode == 7 and "damaged" in one_line(proc)
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(record["final"]["chief_complaint"][:9] for record in exported) == ["MARKER-00", "MARKER-02"]
    listing = medbrief("history", "list", env=env)
    assert listing.returncode == 0 and listing.stdout.count(".txt") == 3


def test_summarize_prints_the_draft_even_when_the_history_cannot_be_written(tmp_path: Path,
                                                                            demo_model_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the data folder should be", encoding="utf-8")
    out = tmp_path / "summary.txt"
    proc = medbrief("summarize", str(SAMPLE_RECORD), "--save", "--no-icd", "--quiet", "--out", str(out),
                    env={"MEDBRIEF_DATA_DIR": str(blocked / "data")}, timeout=600)
    assert proc.returncode == 7, proc.stderr
    assert "not saved to the history" in one_line(proc) and "窗口" not in proc.stderr
    assert "【主诉】" in out.read_text(encoding="utf-8")


def test_ctrl_c_while_the_model_loads_stops_the_run_and_saves_nothing(tmp_path: Path, demo_model_path: Path) -> None:
    env = {**os.environ, "MEDBRIEF_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "inference", "summarize", str(SAMPLE_RECORD), "--save",
                             "--no-icd"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "loading model" in line:
            proc.send_signal(signal.SIGINT)
            break
    _out, rest = proc.communicate(timeout=300)
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest and "cancelled" in rest
    assert not (tmp_path / "data" / "history.sqlite").exists() or not sqlite3.connect(
        tmp_path / "data" / "history.sqlite").execute("SELECT count(*) FROM runs").fetchone()[0]


def test_ctrl_c_that_lands_inside_llama_cpps_log_callback_still_stops_the_run(monkeypatch, capsys) -> None:
    """ctypes swallows an exception raised in a callback: where llama.cpp's load log runs Python code, a
    KeyboardInterrupt is printed and lost. Ctrl+C must not depend on being raised."""
    import inference.llm.backends
    from inference.cli import main

    closed: list[bool] = []

    class EngineWhoseLoadSwallowsCtrlC:
        def __init__(self, _settings: EngineSettings) -> None:
            try:  # what ctypes does around llama.cpp's log callback
                os.kill(os.getpid(), signal.SIGINT)
            except BaseException:  # noqa: BLE001
                pass

        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(inference.llm.backends, "Engine", EngineWhoseLoadSwallowsCtrlC)
    assert main(["summarize", str(SAMPLE_RECORD), "--quiet", "--no-icd", "--save"]) == 130
    assert "cancelled" in capsys.readouterr().err and closed == [True]
