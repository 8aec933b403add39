"""vLLM constrains output with xgrammar: every grammar MedBrief sends must compile there, and xgrammar must accept
what llama.cpp produced under the same grammar and refuse what the grammar forbids. The grammars and outputs are
those of a real run of the sample record (summary and ICD rounds) through llama.cpp's llama-server; xgrammar
compiles them over the demo model's own vocabulary, as vLLM does over the served model's, and matches the
outputs token by token."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from inference.llm.server import PROBE_TEXT
from tests.conftest import SAMPLE_RECORD
from tests.llama_server import server_settings
from tests.xgrammar_loader import load_xgrammar


class Vocabulary:
    """The demo GGUF's tokenizer, read by llama.cpp, as xgrammar's TokenizerInfo."""

    def __init__(self, model_path: object) -> None:
        import llama_cpp

        self.llama = llama_cpp.Llama(str(model_path), vocab_only=True, verbose=False)
        xgr = load_xgrammar()
        pieces = [self.llama.detokenize([i], special=True) for i in range(self.llama.n_vocab())]
        self.eos = self.llama.token_eos()
        self.compiler = xgr.GrammarCompiler(xgr.TokenizerInfo(pieces, vocab_type=xgr.VocabType.RAW,
                                                              stop_token_ids=[self.eos]), max_threads=2)

    def accepts(self, compiled: Any, text: str) -> bool:
        """Every token of ``text`` accepted, then the end of the output."""
        matcher = load_xgrammar().GrammarMatcher(compiled)
        tokens = self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return all(matcher.accept_token(t) for t in tokens) and matcher.accept_token(self.eos) and \
            matcher.is_terminated()


@pytest.fixture(scope="module")
def vocabulary(demo_model_path) -> Vocabulary:
    return Vocabulary(demo_model_path)


@pytest.fixture(scope="module")
def sent(llama_cpp_server_url) -> list[tuple[str, str]]:
    """(grammar, output) of every constrained call of the sample record's run through llama-server."""
    from inference.documents import load_document
    from inference.icd.table import open_table
    from inference.llm.server import ServerEngine
    from inference.pipeline import run_pipeline

    engine = ServerEngine(server_settings(llama_cpp_server_url))
    calls: list[tuple[str, str]] = []
    generate = engine.generate

    def recording(prompt: str, *, grammar: Any = None, **options: Any) -> Any:
        result = generate(prompt, grammar=grammar, **options)
        if grammar is not None:
            calls.append((grammar.gbnf, result.text))
        return result

    engine.generate = recording  # type: ignore[method-assign]
    report = run_pipeline(load_document(SAMPLE_RECORD), engine, table=open_table(None))
    assert [a.code for a in report.icd if a.code], "the run coded nothing: no ICD answer to check"
    return calls


def test_every_grammar_medbrief_sends_compiles_in_xgrammar_as_vllm_reads_it(sent, vocabulary) -> None:
    xgr = load_xgrammar()
    kinds = {_kind(output) for _grammar, output in sent}
    assert {"summary", "tool calls", "icd answer"} <= kinds  # the whole run: the draft and both ICD steps
    for grammar, _output in [*sent, (f'root ::= "{PROBE_TEXT}"', PROBE_TEXT)]:
        assert not _vllm_reads_as_lark(grammar)  # vLLM hands it to xgrammar's EBNF parser, not its Lark converter
        xgr.Grammar.from_ebnf(grammar)  # vLLM's request validation
        vocabulary.compiler.compile_grammar(grammar)  # vLLM's backend


def test_xgrammar_accepts_what_llama_cpp_produced_under_the_same_grammar(sent, vocabulary) -> None:
    for grammar, output in [*sent, (f'root ::= "{PROBE_TEXT}"', PROBE_TEXT)]:
        assert vocabulary.accepts(vocabulary.compiler.compile_grammar(grammar), output), output[:200]


def test_xgrammar_refuses_what_the_grammars_forbid(sent, vocabulary) -> None:
    by_kind = {_kind(output): (grammar, output) for grammar, output in sent}
    grammar, summary = by_kind["summary"]
    data = json.loads(summary)
    compiled = vocabulary.compiler.compile_grammar(grammar)
    assert not vocabulary.accepts(compiled, summary[:-1])  # cut short
    assert not vocabulary.accepts(compiled, json.dumps({k: v for k, v in data.items() if k != "diagnoses"},
                                                       ensure_ascii=False))  # a section left out
    invented = dict(data, auxiliary_exams=[{"name": "血红蛋白", "value": "78", "unit": "mg/furlong"}])
    assert not vocabulary.accepts(compiled, json.dumps(invented, ensure_ascii=False))  # a unit the record lacks
    grammar, calls = by_kind["tool calls"]
    compiled = vocabulary.compiler.compile_grammar(grammar)
    assert not vocabulary.accepts(compiled, calls.replace("get_icd_code", "delete_records"))
    assert not vocabulary.accepts(compiled, calls.replace("</tool_call>", ""))
    grammar, answer = by_kind["icd answer"]
    compiled = vocabulary.compiler.compile_grammar(grammar)
    assert not vocabulary.accepts(compiled, re.sub(r'": "[^"]+"', '": "Z99.9"', answer, count=1))  # not offered
    assert not vocabulary.accepts(vocabulary.compiler.compile_grammar(f'root ::= "{PROBE_TEXT}"'), "Hello!")


def _kind(output: str) -> str:
    if output.startswith("<tool_call>"):
        return "tool calls"
    return "summary" if output.startswith('{"chief_complaint"') else "icd answer"


def _vllm_reads_as_lark(grammar: str) -> bool:
    """vLLM's own test (``grammar_is_likely_lark``): no line with ``::=`` once comments are removed."""
    lines = (re.sub(r"(#|//).*$", "", line).strip() for line in grammar.split("\n"))
    return not any("::=" in line for line in lines if line)
