"""Token choice under a grammar at the speed of unconstrained decoding.

llama-cpp-python runs llama.cpp's grammar sampler over the whole vocabulary (152k entries for Qwen) at
every step, which costs more than the 14B model's own step on a GPU. ``TokenPicker`` gives the token
that masking first would give, but checks the raw pick first (llama.cpp's ``common_sampler`` rule):

* greedy: the highest raw logit, if the grammar allows it, is also the highest after masking. Else the
  next candidates in logit order are checked one by one; only when none of them is allowed and ranks
  strictly above the rest is the whole vocabulary masked.
* temperature > 0: llama-cpp-python's chain is grammar → top-k → top-p → min-p → temperature → draw,
  and top-p and min-p only look at the top-k survivors. So the k best allowed tokens decide the
  distribution: they are found by checking candidates in logit order, the chain is applied to them in
  numpy, and the result is the same distribution as masking first (``chain_probabilities`` is tested
  against llama.cpp's own samplers).
"""

from __future__ import annotations

import ctypes
import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from inference.errors import GenerationError
from inference.llm.native import llama_cpp

# Candidates checked one by one before the whole vocabulary is masked.
WALK_GREEDY = 16
WALK_SAMPLED = 256

_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    seed: int = 42

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class PickStats:
    """Where the time of choosing tokens went: the figures the benchmark reports per token."""

    picks: int = 0
    checks: int = 0  # single-token grammar checks
    rejected_first: int = 0  # picks whose raw first choice the grammar refused
    full_masks: int = 0  # picks that fell back to masking the whole vocabulary
    check_s: float = 0.0
    mask_s: float = 0.0
    accept_s: float = 0.0  # advancing the grammar past each chosen token (the full-mask path pays it too)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "picks": self.picks,
            "rejected_first": self.rejected_first,
            "full_masks": self.full_masks,
            "rejection_rate": round(self.rejected_first / self.picks, 4) if self.picks else 0.0,
            "check_us_per_pick": round(1e6 * self.check_s / self.picks, 1) if self.picks else 0.0,
            "mask_ms_per_mask": round(1e3 * self.mask_s / self.full_masks, 2) if self.full_masks else 0.0,
            "accept_us_per_pick": round(1e6 * self.accept_s / self.picks, 1) if self.picks else 0.0,
        }


class CompiledGrammar:
    """A GBNF grammar parsed once by llama.cpp; each generation gets a fresh matcher cloned from it."""

    def __init__(self, vocab: ctypes.c_void_p, gbnf: str) -> None:
        lib = llama_cpp()
        self.gbnf = gbnf
        sampler = lib.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not sampler:
            raise GenerationError("约束语法无效 / the output grammar failed to compile in llama.cpp")
        self._sampler = sampler
        self._finalizer = weakref.finalize(self, lib.llama_sampler_free, sampler)

    def matcher(self, n_vocab: int) -> "GrammarMatcher":
        return GrammarMatcher(llama_cpp().llama_sampler_clone(self._sampler), n_vocab)


class GrammarMatcher:
    """llama.cpp's grammar sampler used three ways: check one token, mask all tokens, accept a token."""

    def __init__(self, sampler: ctypes.c_void_p, n_vocab: int) -> None:
        lib = self._llama_cpp = llama_cpp()
        self._sampler = sampler
        self._finalizer = weakref.finalize(self, lib.llama_sampler_free, sampler)
        self._one = (lib.llama_token_data * 1)()
        self._one_array = lib.llama_token_data_array(
            data=ctypes.cast(self._one, lib.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        self._one_ref = ctypes.byref(self._one_array)
        self._n_vocab = n_vocab
        self._all: np.ndarray | None = None  # the whole-vocabulary array, made on the first (rare) mask

    def allows(self, token: int) -> bool:
        entry = self._one[0]
        entry.id = token
        entry.logit = 0.0
        self._one_array.size = 1
        self._llama_cpp.llama_sampler_apply(self._sampler, self._one_ref)
        return entry.logit != -math.inf

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """The logits with every token the grammar refuses set to -inf (a new array)."""
        lib = self._llama_cpp
        if self._all is None:
            self._all = np.zeros(self._n_vocab, dtype=_TOKEN_DATA)
            self._all["id"] = np.arange(self._n_vocab, dtype=np.intc)
        self._all["logit"] = logits
        array = lib.llama_token_data_array(data=self._all.ctypes.data_as(lib.llama_token_data_p),
                                           size=self._n_vocab, selected=-1, sorted=False)
        lib.llama_sampler_apply(self._sampler, ctypes.byref(array))
        return self._all["logit"].copy()

    def accept(self, token: int) -> None:
        self._llama_cpp.llama_sampler_accept(self._sampler, token)

    def close(self) -> None:
        self._finalizer()


class TokenPicker:
    def __init__(self, params: SamplingParams, grammar: GrammarMatcher | None) -> None:
        self.params = params
        self.grammar = grammar
        self.stats = PickStats()
        self._rng = np.random.default_rng(params.seed)

    def pick(self, logits: np.ndarray) -> int:
        """The next token from one row of logits; the grammar (if any) is not advanced: call ``accept``."""
        self.stats.picks += 1
        if self.params.greedy:
            return self._pick_greedy(logits)
        return self._pick_sampled(logits)

    def accept(self, token: int) -> None:
        if self.grammar is not None:
            started = time.perf_counter()
            self.grammar.accept(token)
            self.stats.accept_s += time.perf_counter() - started

    def verify(self, logits: np.ndarray, drafted: int) -> int:
        """The next token where ``drafted`` was proposed for it; same distribution as ``pick``.

        Greedy: the pick itself. Sampled (a draft is one fixed token): keep the draft with its
        probability, else draw from the distribution without it — speculative sampling's rule.
        """
        if self.params.greedy:
            return self.pick(logits)
        self.stats.picks += 1
        ids, probs = self._distribution(logits)
        chance = float(probs[ids == drafted].sum())
        if self._rng.random() < chance:
            return drafted
        rest = np.where(ids == drafted, 0.0, probs)
        return int(self._rng.choice(ids, p=rest / rest.sum())) if rest.sum() > 0 else int(ids[0])

    def _allows(self, token: int) -> bool:
        started = time.perf_counter()
        allowed = self.grammar.allows(token)  # type: ignore[union-attr]
        self.stats.checks += 1
        self.stats.check_s += time.perf_counter() - started
        return allowed

    def _masked(self, logits: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        masked = self.grammar.mask(logits)  # type: ignore[union-attr]
        self.stats.full_masks += 1
        self.stats.mask_s += time.perf_counter() - started
        if not (masked > -np.inf).any():
            raise GenerationError("约束语法不允许任何后续 token / the grammar allows no next token")
        return masked

    def _pick_greedy(self, logits: np.ndarray) -> int:
        first = int(np.argmax(logits))
        if self.grammar is None or self._allows(first):
            return first
        self.stats.rejected_first += 1
        order, boundary = _best(logits, WALK_GREEDY)
        for token in order[1:]:
            if logits[token] <= boundary:
                break  # an equal logit outside the walked set could rank first: let the mask decide
            if self._allows(int(token)):
                return int(token)
        return int(np.argmax(self._masked(logits)))

    def _pick_sampled(self, logits: np.ndarray) -> int:
        ids, probs = self._distribution(logits)
        return int(self._rng.choice(ids, p=probs))

    def _distribution(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = self._allowed_top_k(logits)
        return chain_probabilities(logits[ids], ids, self.params)

    def _allowed_top_k(self, logits: np.ndarray) -> np.ndarray:
        """The ids of the top-k allowed tokens in descending logit order."""
        k = self.params.top_k if self.params.top_k > 0 else len(logits)
        if self.grammar is None:
            order, _ = _best(logits, k)
            return order
        if k <= WALK_SAMPLED:
            order, boundary = _best(logits, WALK_SAMPLED)
            kept: list[int] = []
            for token in order:
                if self._allows(int(token)):
                    kept.append(int(token))
                    if len(kept) == k:
                        break
            if len(kept) == k and logits[kept[-1]] > boundary:
                if kept[0] != int(order[0]):
                    self.stats.rejected_first += 1
                return np.asarray(kept, dtype=np.int64)
        self.stats.rejected_first += 1
        masked = self._masked(logits)
        allowed = np.nonzero(masked > -np.inf)[0]
        top = allowed[np.lexsort((allowed, -logits[allowed]))]
        return top[:k]


def _best(logits: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """The n highest-logit ids in descending order (ties: lower id first) and the n-th value."""
    n = min(n, len(logits))
    part = np.argpartition(logits, -n)[-n:] if n < len(logits) else np.arange(len(logits))
    order = part[np.lexsort((part, -logits[part]))]
    boundary = float(logits[order[-1]]) if n < len(logits) else -math.inf
    return order, boundary


def chain_probabilities(
    logits: np.ndarray, ids: np.ndarray, params: SamplingParams
) -> tuple[np.ndarray, np.ndarray]:
    """llama.cpp's top-k → top-p → min-p → temperature → softmax over candidates sorted by logit.

    ``logits`` are the candidates' raw logits in descending order (already the top-k). Returns the
    surviving ids and their probabilities, in float32 arithmetic as llama.cpp computes them.
    """
    logits = np.asarray(logits, dtype=np.float32)
    keep = len(logits)
    if params.top_p < 1.0 and keep > 1:
        probs = _softmax(logits)
        cumulative = np.cumsum(probs, dtype=np.float32)
        reached = np.nonzero(cumulative >= np.float32(params.top_p))[0]
        keep = int(reached[0]) + 1 if len(reached) else keep
    if params.min_p > 0.0 and keep > 1:
        floor = logits[0] + np.float32(math.log(params.min_p))
        keep = max(1, int(np.count_nonzero(logits[:keep] >= floor)))
    scaled = logits[:keep] / np.float32(params.temperature)
    return ids[:keep], _softmax(scaled).astype(np.float64)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits[0], dtype=np.float32)
    return shifted / shifted.sum(dtype=np.float32)


@dataclass
class DraftStats:
    proposed: int = 0
    accepted: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "proposed": self.proposed,
            "accepted": self.accepted,
            "acceptance": round(self.accepted / self.proposed, 3) if self.proposed else 0.0,
        }


@dataclass
class PromptLookup:
    """Draft tokens by finding the latest earlier occurrence of the last n tokens (prompt or output).

    A summary copies values, terms and whole phrases from the record, so the tokens after an earlier
    occurrence are often the next ones. The model checks every draft: output never changes.
    """

    tokens: list[int]
    max_draft: int = 8
    ngram_sizes: tuple[int, ...] = (3, 2)
    _index: dict[int, dict[tuple[int, ...], int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = list(self.tokens)
        for n in self.ngram_sizes:
            table: dict[tuple[int, ...], int] = {}
            tokens = self.tokens
            for end in range(n, len(tokens)):
                table[tuple(tokens[end - n:end])] = end
            self._index[n] = table

    def add(self, token: int) -> None:
        self.tokens.append(token)
        end = len(self.tokens) - 1
        for n in self.ngram_sizes:
            if end >= n:
                self._index[n][tuple(self.tokens[end - n:end])] = end

    def draft(self, limit: int) -> list[int]:
        limit = min(limit, self.max_draft)
        if limit <= 0:
            return []
        for n in self.ngram_sizes:
            if len(self.tokens) < n:
                continue
            start = self._index[n].get(tuple(self.tokens[-n:]))
            if start is not None:
                return self.tokens[start:start + limit]
        return []
