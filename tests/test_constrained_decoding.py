"""The app's decoder gives what llama-cpp-python's full-mask path gives, only faster.

Greedy output is compared byte for byte with ``create_completion`` under the same grammar (the path the
app used before), on the summary grammar and on both ICD grammars; the sampled rule is compared with
llama.cpp's own samplers applied after masking the whole vocabulary.
"""

from __future__ import annotations

import ctypes
import json

import numpy as np
import pytest

from bench.reference_engine import forget_cache, reference_completion, set_draft_tokens
from inference.icd.coding import FUNCTION_NAME, SYSTEM_PROMPT, _grammar_text
from inference.llm.engine import Engine
from inference.llm.sampling import PromptLookup, SamplingParams, TokenPicker, chain_probabilities
from inference.llm.settings import EngineSettings
from inference.summary.output_grammar import summary_gbnf
from inference.summary.summarizer import build_messages

pytestmark = pytest.mark.slow

OTHER_RECORD = (
    "患儿女，5岁，因“发热伴咳嗽3天”就诊。3天前无明显诱因出现发热，体温最高39.1℃，伴阵发性咳嗽，有痰不易咳出，"
    "无气促，无呕吐腹泻。查体：T 38.6℃，咽部充血，双肺呼吸音粗，可闻及少许湿啰音。血常规：WBC 12.5×10^9/L，"
    "N 78%，CRP 24 mg/L。胸片：右下肺斑片影。"
)


def _summary_prompt(engine: Engine, record: str) -> tuple[str, str]:
    messages = build_messages(record)
    return engine.template.render(messages), engine.template.render(messages[:-1])


def test_summary_is_byte_identical_to_the_full_mask_path(demo_engine: Engine, sample_text: str) -> None:
    grammar = demo_engine.compile_grammar(summary_gbnf())
    prompt, fixed = _summary_prompt(demo_engine, sample_text)
    reference = reference_completion(demo_engine, prompt, grammar=grammar)
    streamed: list[str] = []
    result = demo_engine.generate(prompt, grammar=grammar, fixed_prefix=fixed, on_token=streamed.append)
    assert result.text == reference.text
    assert "".join(streamed) == result.text
    json.loads(result.text)
    stats = result.picks
    assert stats.picks == result.completion_tokens + 1  # every output token and the closing end-of-turn
    # The check-first rule: nearly every pick is the raw top token, and the vocabulary is rarely masked.
    assert stats.full_masks <= stats.rejected_first < stats.picks / 10


def test_icd_tool_call_and_answer_grammars_give_identical_output(demo_engine: Engine) -> None:
    diagnoses = ["慢性心力衰竭急性加重", "高血压心脏病"]
    tool = {"type": "function", "function": {
        "name": FUNCTION_NAME, "description": "根据疾病名称查询对应的ICD-10编码",
        "parameters": {"type": "object", "properties": {"disease_name": {"type": "string"}},
                       "required": ["disease_name"]}}}
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": "请为以下诊断查询ICD-10编码：\n1. 慢性心力衰竭急性加重\n2. 高血压心脏病"}]
    prompt = demo_engine.template.render(messages, tools=[tool])
    calls = demo_engine.compile_grammar(_grammar_text({}, max_calls=2, allow_final=False))
    answer = demo_engine.compile_grammar(
        _grammar_text({diagnoses[0]: ["I50.9", "I50.0"], diagnoses[1]: ["I11.9", "I11.0", "I10"]}, 0, True))
    for grammar in (calls, answer):
        reference = reference_completion(demo_engine, prompt, grammar=grammar, max_tokens=300)
        result = demo_engine.generate(prompt, grammar=grammar, max_tokens=300)
        assert result.text == reference.text
    assert "<tool_call>" in demo_engine.generate(prompt, grammar=calls, max_tokens=300).text
    assert set(json.loads(result.text)) == set(diagnoses)


def test_fixed_prefix_is_evaluated_once_and_changes_nothing(demo_engine: Engine, sample_text: str) -> None:
    grammar = demo_engine.compile_grammar(summary_gbnf())
    forget_cache(demo_engine)
    prompt, fixed = _summary_prompt(demo_engine, OTHER_RECORD)
    cold = demo_engine.generate(prompt, grammar=grammar, fixed_prefix=fixed, max_tokens=60)
    assert cold.prompt_tokens_evaluated == cold.prompt_tokens
    demo_engine.generate("<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n", max_tokens=4)  # something else
    sample_prompt, _ = _summary_prompt(demo_engine, sample_text)
    warm = demo_engine.generate(sample_prompt, grammar=grammar, fixed_prefix=fixed, max_tokens=60)
    fixed_tokens = len(demo_engine.tokenize(fixed))
    assert warm.prompt_tokens_evaluated < warm.prompt_tokens - fixed_tokens + 20  # the record part only
    forget_cache(demo_engine)
    again = demo_engine.generate(sample_prompt, grammar=grammar, max_tokens=60)
    assert again.prompt_tokens_evaluated == again.prompt_tokens
    assert warm.text == again.text


def test_prompt_lookup_drafts_change_nothing_and_are_accepted(demo_model_path, sample_text: str) -> None:  # noqa: ANN001
    engine = Engine(EngineSettings(model_path=None, n_ctx=4096, draft_tokens=8))
    try:
        grammar = engine.compile_grammar(summary_gbnf())
        prompt, fixed = _summary_prompt(engine, sample_text)
        drafted = engine.generate(prompt, grammar=grammar, fixed_prefix=fixed)
        set_draft_tokens(engine, 0)
        plain = engine.generate(prompt, grammar=grammar, fixed_prefix=fixed)
    finally:
        engine.close()
    assert drafted.text == plain.text
    assert drafted.drafts.proposed > 0 and drafted.drafts.accepted > drafted.drafts.proposed / 4
    assert plain.drafts.proposed == 0


def test_sampled_rule_matches_llama_cpp_samplers_after_a_full_mask(demo_engine: Engine, sample_text: str) -> None:
    """At each step of a real constrained generation: the lazily found top-k allowed tokens, run through
    the numpy chain, give llama.cpp's own top-k → top-p → min-p → temperature result on masked logits."""
    import llama_cpp

    params = SamplingParams(temperature=0.7, top_k=40, top_p=0.9, min_p=0.05, seed=1)
    grammar = demo_engine.compile_grammar(summary_gbnf())
    prompt, _ = _summary_prompt(demo_engine, sample_text)
    lazy = TokenPicker(params, grammar.matcher(demo_engine._n_vocab))
    full = grammar.matcher(demo_engine._n_vocab)
    decoder = demo_engine._decoder
    forget_cache(demo_engine)
    decoder.prepare(demo_engine.tokenize(prompt))
    compared = 0
    for _ in range(40):
        logits = decoder.logits(-1).copy()
        ids, probs = lazy._distribution(logits)
        expected_ids, expected = _llama_chain(llama_cpp, full.mask(logits), params)
        assert list(ids) == list(expected_ids)
        np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)
        compared += 1
        token = int(ids[0])
        lazy.accept(token)
        full.accept(token)
        decoder._decode([token], outputs="last")
    assert compared == 40


def _llama_chain(llama_cpp, masked: np.ndarray, params: SamplingParams):  # noqa: ANN001, ANN202
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    for sampler in (llama_cpp.llama_sampler_init_top_k(params.top_k),
                    llama_cpp.llama_sampler_init_top_p(params.top_p, 1),
                    llama_cpp.llama_sampler_init_min_p(params.min_p, 1),
                    llama_cpp.llama_sampler_init_temp(params.temperature)):
        llama_cpp.llama_sampler_chain_add(chain, sampler)
    data = (llama_cpp.llama_token_data * len(masked))()
    for i, value in enumerate(masked):
        data[i].id, data[i].logit, data[i].p = i, float(value), 0.0
    array = llama_cpp.llama_token_data_array(data=ctypes.cast(data, llama_cpp.llama_token_data_p),
                                             size=len(masked), selected=-1, sorted=False)
    llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
    llama_cpp.llama_sampler_free(chain)
    kept = [(data[i].id, data[i].logit) for i in range(array.size) if data[i].logit > -np.inf]
    kept.sort(key=lambda item: (-item[1], item[0]))
    logits = np.array([logit for _, logit in kept], dtype=np.float32)
    probs = np.exp(logits - logits[0])
    return np.array([token for token, _ in kept]), probs / probs.sum()


def test_chain_cuts_follow_llama_cpp_rules() -> None:
    logits = np.array([5.0, 4.0, 3.0, 0.0, -2.0], dtype=np.float32)
    ids = np.arange(5)
    kept, probs = chain_probabilities(logits, ids, SamplingParams(temperature=1.0, top_k=5, top_p=1.0, min_p=0.1))
    assert list(kept) == [0, 1, 2]  # e^-3 < 0.1 × e^0 relative to the best: cut by min-p
    kept, probs = chain_probabilities(logits, ids, SamplingParams(temperature=1.0, top_k=5, top_p=0.7, min_p=0.0))
    assert list(kept) == [0, 1]  # 0.665 < 0.7 ≤ 0.909: the nucleus takes two
    assert probs.sum() == pytest.approx(1.0)


def test_prompt_lookup_drafts_what_followed_the_last_occurrence() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5, 9, 2, 3], max_draft=3)
    assert lookup.draft(10) == [4, 5, 9]  # after "2 3" came "4 5 9"
    lookup.add(7)  # "3 7" never occurred, nor "7"… but "3" alone is not an n-gram size here
    assert lookup.draft(10) == []
    assert PromptLookup([1, 2, 1, 2], max_draft=4).draft(1) == [1]  # bounded by what is left to generate
