"""Fuzzing every parser that reads outside input (Hypothesis, seeded from ``hostile_files``): record decoding,
.docx, GGUF headers and LoRA adapters, the config file, a summary for ``validate``, CSV/TSV/XLSX tables, a model
server's stream, a chat template. Each example must end in the documented outcome — a value, or one of the
documented errors — within the example deadline and the bounds of ``limits``; any other exception fails.

The profile (``tests/conftest.py``) is derandomized: CI runs the same examples every time. More examples for a
deeper run: ``MEDBRIEF_FUZZ_EXAMPLES=2000 bash setup.sh test tests/test_fuzz.py``.
"""

from __future__ import annotations

import codecs
import json
import os
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from inference.documents import decode_text, load_document, make_document
from inference.errors import GenerationCancelled, GenerationError, IcdTableError, InputError, ModelError
from tests import hostile_files
from tests.conftest import SAMPLE_RECORD
from tests.fake_server import scripted_server

EXAMPLES = int(os.environ.get("MEDBRIEF_FUZZ_EXAMPLES", "150"))
fuzz = settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                              HealthCheck.function_scoped_fixture])
_SCRATCH = Path(tempfile.mkdtemp(prefix="medbrief-fuzz-"))
# Made once: a workbook or a .docx saved twice differs in its timestamps, and the draws must not.
DOCX_SEEDS = [hostile_files.docx_bytes(), *hostile_files.hostile_docx().values()]
XLSX_SEEDS = [hostile_files.xlsx_bytes(hostile_files.TABLE_ROWS), *hostile_files.hostile_xlsx().values()]
DOCX = DOCX_SEEDS[0]


def _file(name: str, data: bytes) -> Path:
    path = _SCRATCH / name
    path.write_bytes(data)
    return path


def _mutated(base: bytes, data: st.DataObject, *, protect: int = 0) -> bytes:
    """``base`` with a few bytes flipped, a slice cut out or random bytes spliced in (after ``protect`` bytes)."""
    buffer = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "splice", "truncate"]))
        at = data.draw(st.integers(protect, max(protect, len(buffer) - 1)))
        if kind == "flip" and buffer:
            buffer[at % len(buffer)] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del buffer[at:at + data.draw(st.integers(1, 64))]
        elif kind == "splice":
            buffer[at:at] = data.draw(st.binary(min_size=1, max_size=64))
        else:
            del buffer[at:]
    return bytes(buffer)


# -- records -------------------------------------------------------------------------------------------------

BOMS = st.sampled_from([b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])


@fuzz
@given(bom=BOMS, body=st.binary(max_size=4096))
@example(bom=codecs.BOM_UTF16_LE, body=b"\x00\xd8A")  # a lone surrogate
@example(bom=codecs.BOM_UTF8, body=b"\xff")
def test_record_bytes_decode_to_text_or_an_input_error(bom: bytes, body: bytes) -> None:
    try:
        text, _encoding = decode_text(bom + body, "r.txt")
    except InputError:
        return
    assert isinstance(text, str)
    try:
        make_document(text, "r.txt", "utf-8")
    except InputError:
        pass


@fuzz
@given(text=st.text(max_size=2000), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))
def test_any_text_saved_in_a_supported_encoding_reads_back_or_is_refused(text: str, encoding: str) -> None:
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    try:
        document = load_document(_file("r.txt", data))
    except InputError:
        return
    assert document.text.strip()


@fuzz
@given(data=st.data())
def test_a_mutated_docx_reads_or_is_an_input_error(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(DOCX_SEEDS))
    try:
        load_document(_file("r.docx", _mutated(base, data)))
    except InputError:
        pass


@fuzz
@given(body=st.text(max_size=400))
def test_any_document_xml_reads_or_is_an_input_error(body: str) -> None:
    docx = hostile_files.rezip(DOCX, {"word/document.xml": body.encode("utf-8", "replace")})
    try:
        load_document(_file("x.docx", docx))
    except InputError:
        pass


# -- GGUF headers and adapters ---------------------------------------------------------------------------------

_GGUF_KEYS = ["general.architecture", "general.alignment", "general.file_type", "general.name", "general.type",
              "qwen2.context_length", "qwen2.block_count", "qwen2.embedding_length", "qwen2.attention.head_count",
              "qwen2.attention.head_count_kv", "qwen2.attention.key_length", "tokenizer.chat_template",
              "adapter.type", "adapter.lora.alpha", "qwen2.pooling_type"]
_SCALAR = st.one_of(st.integers(-2**40, 2**40), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    st.text(max_size=40), st.sampled_from(["qwen2", "bert", "adapter", "lora", "{{ x }}"]))
_VALUE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=4), max_leaves=12)
_TYPED = st.builds(hostile_files.Typed, st.integers(0, 15), st.binary(max_size=24))


def _check_model(path: Path) -> None:
    from inference.llm.chat_template import ChatTemplate
    from inference.llm.engine import memory_estimate
    from inference.llm.gguf_header import check_loadable, read_gguf_header
    from inference.llm.model_catalog import scan
    from inference.llm.settings import EngineSettings

    scan(EngineSettings(), [], path.parent)  # the models folder never breaks for a file
    try:
        info = read_gguf_header(path)
        check_loadable(info, 4096)
        memory_estimate(info, EngineSettings(), [])
        ChatTemplate(info.chat_template)
    except ModelError:
        pass


@fuzz
@given(metadata=st.dictionaries(st.sampled_from(_GGUF_KEYS), st.one_of(_VALUE, _TYPED), max_size=8),
       tensors=st.integers(0, 3))
def test_a_gguf_header_of_any_values_is_read_or_refused(metadata: dict[str, object], tensors: int) -> None:
    folder = _SCRATCH / "models"
    folder.mkdir(exist_ok=True)
    path = folder / "m.gguf"
    path.write_bytes(hostile_files.gguf_bytes({**hostile_files.QWEN, **metadata}, tensors=tensors))
    _check_model(path)


@fuzz
@given(data=st.data())
def test_a_mutated_gguf_file_is_read_or_refused(data: st.DataObject) -> None:
    folder = _SCRATCH / "mutated"
    folder.mkdir(exist_ok=True)
    base = data.draw(st.sampled_from([hostile_files.gguf_bytes(hostile_files.QWEN, tensors=2),
                                      *hostile_files.hostile_gguf().values()]))
    path = folder / "m.gguf"
    path.write_bytes(_mutated(base, data, protect=4))
    _check_model(path)


@fuzz
@given(metadata=st.dictionaries(st.sampled_from(_GGUF_KEYS), st.one_of(_VALUE, _TYPED), max_size=6))
def test_a_lora_adapter_of_any_header_fits_or_is_refused(metadata: dict[str, object]) -> None:
    from inference.llm.gguf_header import read_gguf_header
    from inference.llm.lora import check_adapter

    base = read_gguf_header(_file("base.gguf", hostile_files.gguf_bytes(hostile_files.QWEN, tensors=3)))
    adapter = _file("adapter.gguf", hostile_files.gguf_bytes(
        {"general.architecture": "qwen2", "general.type": "adapter", "adapter.type": "lora", **metadata}, tensors=2))
    try:
        check_adapter(adapter, base)
    except ModelError:
        pass


# -- the config file ------------------------------------------------------------------------------------------

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                   max_size=4), max_leaves=20)
_ENGINE_KEYS = st.sampled_from(["n_ctx", "n_gpu_layers", "model_path", "kv_cache_type", "flash_attn", "backend",
                                "server_url", "temperature", "lora_scale", "seed", "n_threads", "part_tokens"])


@fuzz
@given(config=st.one_of(_JSON, st.fixed_dictionaries({"engine": st.dictionaries(_ENGINE_KEYS, _JSON, max_size=4)},
                                                     optional={"icd_table": _JSON})),
       bom=st.booleans(), raw=st.one_of(st.none(), st.binary(max_size=200)))
def test_a_config_file_of_anything_loads_or_is_one_error(config: object, bom: bool, raw: bytes | None) -> None:
    from inference.llm.settings import AppConfig, load_config

    folder = Path(os.environ["MEDBRIEF_CONFIG_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    data = raw if raw is not None else json.dumps(config).encode()
    (folder / "config.json").write_bytes((codecs.BOM_UTF8 if bom else b"") + data)
    try:
        assert isinstance(load_config(), AppConfig)
    except ModelError:
        pass


# -- a summary for `medbrief validate` ------------------------------------------------------------------------

_SUMMARY_TEXT = st.text(alphabet=st.sampled_from(list("胸闷气促3年无否认发热诊断心力衰竭BP150/90mmHg，。；、()（）- ")), max_size=60)
_SUMMARY = st.fixed_dictionaries({
    "chief_complaint": st.one_of(_SUMMARY_TEXT, _JSON), "present_illness": st.one_of(_SUMMARY_TEXT, _JSON),
    "auxiliary_exams": st.one_of(st.lists(st.fixed_dictionaries(
        {"name": _SUMMARY_TEXT, "value": _SUMMARY_TEXT, "unit": st.sampled_from(["", "%", "pg/mL", "mmHg", "x"])}),
        max_size=4), _JSON),
    "diagnoses": st.one_of(st.lists(st.fixed_dictionaries({"name": _SUMMARY_TEXT}), max_size=4), _JSON),
}, optional={"evidence": _JSON})


@fuzz
@given(summary=st.one_of(_SUMMARY, _JSON))
def test_validate_answers_any_summary_json_with_a_documented_code(summary: object, capsys) -> None:
    from inference.cli import main
    from inference.crash_log import log_path

    path = _file("summary.json", json.dumps(summary, ensure_ascii=False).encode())
    assert main(["validate", str(path), "--source", str(SAMPLE_RECORD)]) in (0, 1, 3)
    capsys.readouterr()
    assert not log_path().exists()  # nothing unforeseen happened


# -- code tables ------------------------------------------------------------------------------------------------

_CELL = st.one_of(st.from_regex(r"[A-Z][0-9]{2}(\.[0-9x]{1,4})?", fullmatch=True), st.text(max_size=12),
                  st.sampled_from(["心力衰竭", "高血压", "编码", "名称", '"', '"引号', "\t", ","]))


@fuzz
@given(rows=st.lists(st.lists(_CELL, max_size=5), max_size=30), delimiter=st.sampled_from([",", "\t", ";", "|"]),
       suffix=st.sampled_from([".csv", ".tsv", ".txt"]))
def test_a_csv_table_of_any_cells_imports_or_is_refused(rows: list[list[str]], delimiter: str, suffix: str) -> None:
    from inference.icd.importer import read_entries

    text = "\n".join(delimiter.join(row) for row in rows)
    try:
        entries = read_entries(_file(f"t{suffix}", text.encode("utf-8")))
    except IcdTableError:
        return
    assert entries and all(entry.code and entry.name for entry in entries)


@fuzz
@given(data=st.data())
def test_a_mutated_xlsx_imports_or_is_refused(data: st.DataObject) -> None:
    from inference.icd.importer import read_entries

    base = data.draw(st.sampled_from(XLSX_SEEDS))
    try:
        read_entries(_file("t.xlsx", _mutated(base, data)))
    except IcdTableError:
        pass


# -- a model server's stream ----------------------------------------------------------------------------------

_CHUNK = st.one_of(
    st.fixed_dictionaries({"choices": st.lists(st.fixed_dictionaries(
        {"text": st.one_of(st.text(max_size=8), _JSON), "finish_reason": st.sampled_from([None, "stop", "length", 3])}),
        max_size=2)}),
    _JSON,
    st.binary(max_size=40).map(lambda raw: b"data: " + raw.replace(b"\n", b" ") + b"\n\n"),
    st.sampled_from([b": keep-alive\n\n", b"event: x\n", b"\n", b"data: [DONE]\n\n", b"data: {\n\n"]),
)


def test_a_server_stream_of_any_chunks_is_an_answer_or_a_generation_error() -> None:
    from inference.llm.server import ServerEngine
    from inference.llm.settings import EngineSettings

    with scripted_server() as (url, handler):
        engine = ServerEngine(EngineSettings(backend="server", server_url=url, server_template="qwen2.5",
                                             server_timeout_s=2.0))

        @fuzz
        @given(chunks=st.lists(_CHUNK, max_size=12))
        def stream(chunks: list[object]) -> None:
            body = b"".join(c if isinstance(c, bytes) else hostile_files.sse(c).split(b"data: [DONE]")[0] for c in chunks)
            handler.script = staticmethod(lambda: iter([body]))
            try:
                result = engine.generate("x", max_tokens=16)
            except (GenerationError, GenerationCancelled):
                return
            assert isinstance(result.text, str)

        stream()


# -- chat templates ------------------------------------------------------------------------------------------

_JINJA = st.lists(st.sampled_from(list("{}%#()[]'\"+-*/~| .,0123456789") + [
    "{{ ", " }}", "{% ", " %}", "for ", " in ", "endfor", "if ", "endif", "messages", "m", "range(", ".content",
    "set ", "=", "loop", "raise_exception(", "**", "|tojson", "namespace(", "x"]), max_size=40).map("".join)


@fuzz
@given(template=st.one_of(_JINJA, st.text(max_size=80)))
@example(template="{% for i in range(10**9) %}{% for j in range(10**9) %}{% endfor %}{% endfor %}")
@example(template="{{ 'x' * 10**10 }}")
@example(template="{{ 9**9**9 }}")
def test_a_chat_template_of_any_text_renders_or_is_refused(template: str) -> None:
    from inference.llm.chat_template import ChatTemplate

    try:
        prompt = ChatTemplate(template).render([{"role": "user", "content": "胸闷"}])
    except ModelError:
        return
    assert isinstance(prompt, str)


@pytest.fixture(autouse=True)
def _no_unforeseen_failure_is_logged() -> None:
    """A fuzz example that reached the crash log means a door let an unexpected exception through."""
    from inference.crash_log import log_path

    yield
    assert not log_path().exists(), log_path().read_text(encoding="utf-8")[-2000:]


def test_the_gguf_maker_of_these_tests_writes_what_the_reader_reads() -> None:
    """The fuzzing above means something only if the clean file is read whole."""
    from inference.llm.gguf_header import read_gguf_header

    info = read_gguf_header(_file("clean.gguf", hostile_files.gguf_bytes(hostile_files.QWEN, tensors=2)))
    assert (info.architecture, info.context_length, info.block_count, info.quantization) == ("qwen2", 32768, 2,
                                                                                               "Q4_K_M")
    assert struct.unpack("<I", _file("v.gguf", hostile_files.gguf_bytes({}))
                         .read_bytes()[4:8])[0] == 3


# The coder's reading of a diagnosis string: its words drawn from what the reading looks for.
WARD_WORDS = st.lists(st.sampled_from(["2型", "1型", "糖尿病", "肾病", "伴", "不伴", "急性", "慢性", "肾损伤", "胆囊结石",
                                       "胆囊炎", "5期", "IV期", "三级", "术后", "史", "车祸", "黄染", "，", " ", "(", "）",
                                       "视网膜病变", "心力衰竭", "高血压", "I", "X"]), max_size=24).map("".join)


@fuzz
@given(wording=st.one_of(WARD_WORDS, st.text(max_size=120)))
def test_any_diagnosis_string_is_read_and_coded_or_gets_no_code(wording: str) -> None:
    from inference.icd.coding import direct_assignment, to_final_codes
    from inference.icd.lookup import matcher_for
    from inference.icd.table import open_table

    table = open_table("who-zh")
    conditions = matcher_for(table).conditions(wording)
    assert conditions and all(isinstance(c, str) for c in conditions)
    final = to_final_codes([direct_assignment(wording, table)], table)[0]
    assert final.code is None or final.code in table
