"""The decode loop: prompt evaluation with reuse, grammar-constrained picking, prompt-lookup drafts.

This replaces llama-cpp-python's ``create_completion`` on the app's path. It drives llama.cpp's
context directly (one sequence, batches built in numpy) so that:

* the KV cache is reused: the longest prefix shared with what the cache holds is kept, and a fixed
  prefix (instructions, example, tool descriptions) is snapshotted once per loaded model and
  restored when another prompt has been in between;
* tokens are chosen by ``TokenPicker`` (the grammar checks the pick, it does not mask the vocabulary);
* drafted tokens (``PromptLookup``) are verified in one batch; the output is the same as without them.
"""

from __future__ import annotations

import codecs
import ctypes
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from inference.errors import GenerationCancelled, GenerationError
from inference.llm.sampling import DraftStats, PickStats, PromptLookup, TokenPicker

TokenCallback = Callable[[str], None]
PromptCallback = Callable[[int, int], None]  # (prompt tokens evaluated so far, tokens to evaluate in all)
SEQ = 0
# A call stops drafting once this many drafted tokens were under this acceptance: verifying 9 tokens costs
# about 2.5 steps on an H200 with the 14B shape, so at 12% acceptance drafts ran at 101 tok/s against 131
# without them (bench/results/h200_synthetic_qwen3_14b.json); at 35-65% they ran 1.4-3x faster.
DRAFT_PROBE = 24
DRAFT_MIN_ACCEPTANCE = 0.25
# Prefix snapshots kept in host memory (Qwen3-14B f16: 160 KiB a token, so ~130 MB for the summary prompt's).
MAX_SNAPSHOTS = 4


@dataclass
class DecodeResult:
    text: str
    prompt_tokens: int
    prompt_tokens_evaluated: int
    completion_tokens: int
    ttft_s: float
    total_s: float
    finish_reason: str
    picks: PickStats = field(default_factory=PickStats)
    drafts: DraftStats = field(default_factory=DraftStats)


class Decoder:
    """Owns the batch and the bookkeeping of what llama.cpp's KV cache holds for one context."""

    def __init__(self, llama_cpp_module, ctx, vocab, n_vocab: int, n_batch: int, max_draft: int) -> None:  # noqa: ANN001
        self._lib = llama_cpp_module
        self._ctx = ctx
        self._vocab = vocab
        self.n_vocab = n_vocab
        self.n_batch = n_batch
        self.max_draft = max_draft
        capacity = max(n_batch, max_draft + 1)
        self._batch = self._lib.llama_batch_init(capacity, 0, 1)
        self._tokens_view = np.ctypeslib.as_array(self._batch.token, shape=(capacity,))
        self._pos_view = np.ctypeslib.as_array(self._batch.pos, shape=(capacity,))
        self._logits_view = np.ctypeslib.as_array(self._batch.logits, shape=(capacity,))
        n_seq_id = np.ctypeslib.as_array(self._batch.n_seq_id, shape=(capacity,))
        n_seq_id[:] = 1
        for i in range(capacity):
            self._batch.seq_id[i][0] = SEQ
        self._memory = self._lib.llama_get_memory(ctx)
        self.cached: list[int] = []  # the tokens whose keys and values the cache holds, in order
        self._snapshots: OrderedDict[tuple[int, ...], ctypes.Array] = OrderedDict()

    def close(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        self._snapshots.clear()

    def forget(self, snapshots: bool = False) -> None:
        """Something else used the context (the reference path): assume nothing about the cache."""
        self._lib.llama_memory_clear(self._memory, True)
        self.cached = []
        if snapshots:
            self._snapshots.clear()

    # -- prompt ---------------------------------------------------------------------------------

    def prepare(self, tokens: Sequence[int], keep_prefix: int = 0, on_prompt: PromptCallback | None = None,
                cancel: threading.Event | None = None) -> int:
        """Make the cache hold ``tokens`` with logits for the last one; returns how many were evaluated.

        ``keep_prefix`` tokens at the start are a fixed prefix worth a snapshot: evaluated once, restored
        from host memory whenever the cache holds something else. A long prompt reports each batch to
        ``on_prompt`` and stops between batches when ``cancel`` is set.
        """
        tokens = list(tokens)
        common = common_prefix(self.cached, tokens)
        snapshot = self._best_snapshot(tokens)
        if snapshot is not None and len(snapshot) > common and self._restore(snapshot):
            common = len(snapshot)
        if common >= len(tokens):
            common = len(tokens) - 1  # the last token is evaluated again for its logits
        self._truncate(common)
        progress = _PromptProgress(len(tokens) - common, on_prompt, cancel)
        if keep_prefix > common and keep_prefix < len(tokens) and tuple(tokens[:keep_prefix]) not in self._snapshots:
            self._evaluate(tokens[common:keep_prefix], progress)
            self._save(tokens[:keep_prefix])
            common = keep_prefix
        self._evaluate(tokens[common:], progress)
        return progress.done

    def _best_snapshot(self, tokens: list[int]) -> tuple[int, ...] | None:
        best = None
        for prefix in self._snapshots:
            if len(prefix) <= len(tokens) and (best is None or len(prefix) > len(best)) \
                    and tuple(tokens[:len(prefix)]) == prefix:
                best = prefix
        if best is not None:
            self._snapshots.move_to_end(best)
        return best

    def _save(self, prefix: list[int]) -> None:
        size = self._lib.llama_state_seq_get_size(self._ctx, SEQ)
        buffer = (ctypes.c_uint8 * size)()
        if self._lib.llama_state_seq_get_data(self._ctx, buffer, size, SEQ) == 0:
            return  # a backend that cannot copy state just re-evaluates next time
        self._snapshots[tuple(prefix)] = buffer
        while len(self._snapshots) > MAX_SNAPSHOTS:
            self._snapshots.popitem(last=False)

    def _restore(self, prefix: tuple[int, ...]) -> bool:
        buffer = self._snapshots[prefix]
        self._lib.llama_memory_seq_rm(self._memory, SEQ, -1, -1)
        self.cached = []
        if self._lib.llama_state_seq_set_data(self._ctx, buffer, len(buffer), SEQ) == 0:
            self._snapshots.pop(prefix)
            self._lib.llama_memory_seq_rm(self._memory, SEQ, -1, -1)
            return False
        self.cached = list(prefix)
        return True

    def _truncate(self, keep: int) -> None:
        if keep < len(self.cached):
            if not self._lib.llama_memory_seq_rm(self._memory, SEQ, keep, -1):
                self._lib.llama_memory_seq_rm(self._memory, SEQ, -1, -1)
                keep = 0
            del self.cached[keep:]

    def _evaluate(self, tokens: list[int], progress: _PromptProgress) -> None:
        for start in range(0, len(tokens), self.n_batch):
            progress.check()
            # Every batch asks for its last row of logits: llama.cpp traps on a batch that asks for none.
            batch = tokens[start:start + self.n_batch]
            self._decode(batch, outputs="last")
            progress.advance(len(batch))

    def _decode(self, tokens: Sequence[int], outputs: str) -> None:
        n = len(tokens)
        batch = self._batch
        batch.n_tokens = n
        self._tokens_view[:n] = tokens
        self._pos_view[:n] = np.arange(len(self.cached), len(self.cached) + n)
        self._logits_view[:n] = 1 if outputs == "all" else 0
        self._logits_view[n - 1] = 1
        code = self._lib.llama_decode(self._ctx, batch)
        if code != 0:
            # llama.cpp leaves the cache as it was for a failed batch (code 1: no room in the cache).
            raise GenerationError(f"llama.cpp 解码失败（返回码 {code}）/ llama_decode failed with code {code}")
        self.cached.extend(int(t) for t in tokens)

    def _is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def logits(self, index: int) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    # -- generation -----------------------------------------------------------------------------

    def generate(
        self,
        tokens: Sequence[int],
        picker: TokenPicker,
        *,
        limit: int,
        keep_prefix: int = 0,
        draft: bool = False,
        on_token: TokenCallback | None = None,
        on_prompt: PromptCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> DecodeResult:
        started = time.perf_counter()
        evaluated = self.prepare(tokens, keep_prefix, on_prompt, cancel)
        lookup = PromptLookup(tokens, max_draft=self.max_draft) if draft and self.max_draft > 0 else None
        drafts = DraftStats()
        text = _TextStream(self._lib, self._vocab, on_token)
        produced = 0
        finish_reason = "length"
        rows = [-1]  # output rows of the last batch, in order: the logits to pick from
        proposed: list[int] = []  # the drafted tokens fed after the pending one in the last batch
        first_token_at: float | None = None
        while produced < limit:
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled("已停止 / generation stopped")
            accepted: list[int] = []
            next_token = -1
            for i, row in enumerate(rows):
                logits = self.logits(row)
                drafted = proposed[i] if i < len(proposed) else None
                token = picker.pick(logits) if drafted is None else picker.verify(logits, drafted)
                if token == drafted and not self._is_end(token):
                    picker.accept(token)
                    accepted.append(token)
                    continue
                next_token = token
                break
            drafts.accepted += len(accepted)
            if len(accepted) < len(proposed):
                self._truncate(len(self.cached) - (len(proposed) - len(accepted)))
            ended = self._is_end(next_token)
            if not ended:
                picker.accept(next_token)
            for token in accepted if ended else accepted + [next_token]:
                text.push(token)
                if lookup is not None:
                    lookup.add(token)
            produced += len(accepted) + (0 if ended else 1)
            if produced and first_token_at is None:
                first_token_at = time.perf_counter()
            if ended:
                finish_reason = "stop"
                break
            if produced >= limit:
                break
            if lookup is not None and drafts.proposed >= DRAFT_PROBE \
                    and drafts.accepted < DRAFT_MIN_ACCEPTANCE * drafts.proposed:
                lookup = None  # this output does not copy from its prompt: plain steps are faster
            proposed = lookup.draft(limit - produced - 1) if lookup is not None else []
            drafts.proposed += len(proposed)
            feed = [next_token] + proposed
            self._decode(feed, outputs="all" if proposed else "last")
            rows = list(range(len(feed))) if proposed else [-1]
        total_s = time.perf_counter() - started
        return DecodeResult(
            text=text.finish(),
            prompt_tokens=len(tokens),
            prompt_tokens_evaluated=evaluated,
            completion_tokens=produced,
            ttft_s=(first_token_at or time.perf_counter()) - started,
            total_s=total_s,
            finish_reason=finish_reason,
            picks=picker.stats,
            drafts=drafts,
        )


class _PromptProgress:
    """Counts evaluated prompt tokens for a progress display; raises between batches once cancelled."""

    def __init__(self, total: int, on_prompt: PromptCallback | None, cancel: threading.Event | None) -> None:
        self.total = total
        self.done = 0
        self._on_prompt = on_prompt
        self._cancel = cancel

    def check(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise GenerationCancelled("已停止 / generation stopped")

    def advance(self, n: int) -> None:
        self.done += n
        if self._on_prompt is not None:
            self._on_prompt(self.done, self.total)


class _TextStream:
    """Token pieces to text, holding back an incomplete UTF-8 character (Chinese is 3 bytes, often split)."""

    def __init__(self, llama_cpp_module, vocab, on_token: TokenCallback | None) -> None:  # noqa: ANN001
        self._lib = llama_cpp_module
        self._vocab = vocab
        self._on_token = on_token
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self._pieces: list[str] = []
        self._buffer = ctypes.create_string_buffer(256)

    def push(self, token: int) -> None:
        n = self._lib.llama_token_to_piece(self._vocab, token, self._buffer, len(self._buffer), 0, False)
        if n < 0:  # a piece longer than the buffer: llama.cpp says how long
            self._buffer = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, token, self._buffer, len(self._buffer), 0, False)
        piece = self._decoder.decode(self._buffer.raw[:n])
        if piece:
            self._pieces.append(piece)
            if self._on_token is not None:
                self._on_token(piece)

    def finish(self) -> str:
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._pieces.append(tail)
        return "".join(self._pieces)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    left = np.asarray(a[:n])
    right = np.asarray(b[:n])
    diff = np.nonzero(left != right)[0]
    return int(diff[0]) if len(diff) else n
