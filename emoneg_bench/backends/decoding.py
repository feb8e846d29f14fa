"""Batched decoding for the local backend: per-episode KV reuse and grammar-constrained sampling.

**KV reuse.** Each conversation may name a *session* (one per live episode and role). After a turn, the session
keeps the token ids that went through the model (prompt + reply) and their key/value tensors. The next turn's
prompt starts with that same text (prompts are prefix-stable, ``emoneg_bench.prompts``), so only the tokens
after the longest common prefix are computed: the other side's answer and the new instruction, instead of the
whole transcript. Rows of a batch reuse prefixes of different lengths; the batch is laid out as

    [pad … cached prefix][pad … new tokens]      (one row per conversation, pads masked out)

with explicit position ids, so every real token sees exactly the keys a fresh prefill would give it. In float32
the reused keys equal a fresh prefill's up to rounding; greedy text is the same (tested).

**Newcomers apart.** A batch that mixes episodes continuing from their cache (a hundred new tokens or so) with
episodes on their first turn (the whole prompt, a few hundred) would pad every row to the longest suffix. The
rows with the longest suffixes are prefilled on their own first, up to their last prompt token, when that costs
fewer padded token-rows than the joint pass would (counting ``SPLIT_OVERHEAD`` token-rows for the extra pass);
the joint pass then treats them like continuing rows.

**Grammars.** A conversation with a JSON schema decodes under an xgrammar matcher: before each token, the
logits of every token the schema forbids are set to −∞, so the reply is always a valid object (unless
``max_new_tokens`` cuts it off). Rows leave the batch as they finish, so a long reply does not make the others
compute padding.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from .base import Generation, SamplingParams

KEEP_UNUSED_CALLS = 4  # a session not used in this many generate calls is dropped (its episode has ended);
# 4 covers one backend serving both roles with refilled batches (two calls per step, a turn every other step)
MIN_REUSE = 8  # shorter common prefixes are recomputed (not worth the bookkeeping)
SPLIT_OVERHEAD = 64  # the fixed cost of an extra forward pass, in token-rows (~ms on a CPU: launches, weight reads)


@dataclass
class Session:
    ids: list[int]  # the tokens whose keys/values are cached
    kv: list[tuple[Any, Any]]  # per layer (keys, values), each [heads, len(ids), head_dim]
    last_call: int


@dataclass
class Row:
    """One conversation during decoding."""

    index: int  # position in the caller's batch
    prompt: list[int]
    reused: int = 0  # prompt tokens whose keys/values came from the session
    matcher: Any = None
    generated: list[int] = field(default_factory=list)
    done: bool = False


@cache
def _buffered_layer_class():
    """Defined on first use: transformers is imported lazily."""
    from transformers.cache_utils import DynamicLayer

    class BufferedLayer(DynamicLayer):
        """A cache layer whose keys/values are views into buffers allocated once for ``capacity`` positions."""

        def __init__(self, capacity: int):
            super().__init__()
            self.capacity, self.length = capacity, 0

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                batch, heads, _, dim = key_states.shape
                self.key_buffer = key_states.new_empty(batch, heads, self.capacity, dim)
                self.value_buffer = value_states.new_empty(batch, heads, self.capacity, dim)
                self.device, self.is_initialized = key_states.device, True
            end = self.length + key_states.shape[-2]
            self.key_buffer[:, :, self.length:end] = key_states
            self.value_buffer[:, :, self.length:end] = value_states
            self.length = end
            self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length

        def batch_select_indices(self, indices) -> None:
            if self.is_initialized:
                self.key_buffer, self.value_buffer = self.key_buffer[indices], self.value_buffer[indices]
                self.keys = self.key_buffer[:, :, : self.length]
                self.values = self.value_buffer[:, :, : self.length]

    return BufferedLayer


ATTENTION = "emoneg-decode"  # the attention implementation the local backend registers and loads models with


@cache
def register_attention() -> str:
    """Register :data:`ATTENTION` with transformers (once) and return its name.

    Prefill (several query tokens) is transformers' SDPA. A decoding step (one query token per row) computes
    attention as two small matrix products over the key/value heads, the query heads of a group stacked
    (grouped-query attention without repeating keys), with the softmax in float32. On a 2-core CPU, for 8 rows
    over 700 cached positions in bfloat16, that took 0.22 ms a layer where SDPA's CPU flash kernel took 0.65 ms
    (about a third of a SmolLM2 decoding step). In float32 every step stays on SDPA: its kernel works row by row,
    so greedy text does not depend on the batch (batched matrix products choose kernels by batch size)."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import sdpa_mask

    def attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        import torch

        batch, heads, q_length, dim = query.shape
        if q_length != 1 or query.dtype == torch.float32 or kwargs.get("output_attentions") or kwargs.get("position_bias") is not None \
                or kwargs.get("softcap") is not None or (module.training and dropout):
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                          scaling=scaling, **kwargs)
        kv_heads, length = key.shape[1], key.shape[2]
        scale = scaling if scaling is not None else dim ** -0.5
        grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)
        scores = torch.matmul(grouped, key.transpose(-1, -2)).float() * scale  # [batch, kv_heads, group, length]
        if attention_mask is not None:
            mask = attention_mask[..., -length:].reshape(batch, 1, 1, length) if attention_mask.shape[0] == batch \
                else attention_mask[..., -length:].reshape(1, 1, 1, length)
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
        probabilities = torch.softmax(scores, dim=-1).to(value.dtype)
        output = torch.matmul(probabilities, value)  # [batch, kv_heads, group, dim]
        return output.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # SDPA's masks (without one, padding would be seen)
    return ATTENTION


def _buffered_layer(capacity: int):
    return _buffered_layer_class()(capacity)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class Decoder:
    """Owns the sessions and compiled grammars of one model; ``generate`` decodes one batch."""

    def __init__(self, model, tokenizer, eos_token_ids: Sequence[int], device):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.eos = set(eos_token_ids)
        self.sessions: dict[Hashable, Session] = {}
        self.calls = 0
        self.prefilled_apart = 0  # rows prefilled on their own so far (see "Newcomers apart")
        self._grammar_compiler = None
        self._grammars: dict[str, Any] = {}

    # ---- grammars -------------------------------------------------------------------------------

    def _compiled(self, schema: dict):
        import xgrammar as xgr

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            if self._grammar_compiler is None:
                vocab = self.model.config.get_text_config().vocab_size
                info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=vocab,
                                                          stop_token_ids=sorted(self.eos))
                self._grammar_compiler = xgr.GrammarCompiler(info)
            self._grammars[key] = self._grammar_compiler.compile_json_schema(key, any_whitespace=False,
                                                                              strict_mode=True)
        return self._grammars[key]

    # ---- sessions -------------------------------------------------------------------------------

    def start_call(self) -> None:
        self.calls += 1

    def end_call(self) -> None:
        stale = [key for key, s in self.sessions.items() if self.calls - s.last_call >= KEEP_UNUSED_CALLS]
        for key in stale:
            del self.sessions[key]

    # ---- one batch ------------------------------------------------------------------------------

    def generate(self, prompts: list[list[int]], params: SamplingParams, schemas: Sequence[dict | None],
                 sessions: Sequence[Hashable | None], generator=None) -> list[Generation]:
        import torch
        import xgrammar as xgr

        rows = [Row(i, prompt) for i, prompt in enumerate(prompts)]
        caches = []
        for row, key in zip(rows, sessions, strict=True):
            session = self.sessions.get(key) if key is not None else None
            reused = common_prefix(session.ids, row.prompt) if session is not None else 0
            reused = min(reused, len(row.prompt) - 1)  # at least one token goes through the model
            row.reused = reused if reused >= MIN_REUSE else 0
            caches.append(session.kv if row.reused else None)
        for row, schema in zip(rows, schemas, strict=True):
            if schema is not None:
                row.matcher = xgr.GrammarMatcher(self._compiled(schema))

        self._prefill_apart(rows, caches)
        cache, mask, input_ids, positions = self._layout(rows, caches, params.max_new_tokens)
        bitmask = xgr.allocate_token_bitmask(len(rows), self._vocab()) if any(r.matcher for r in rows) else None
        active = list(range(len(rows)))  # batch position → row
        with torch.inference_mode():
            output = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache,
                                use_cache=True, logits_to_keep=1)  # the cache grows in place
            last_positions = positions[:, -1]
            for _ in range(params.max_new_tokens):
                logits = output.logits[:, -1, :].float()
                tokens = self._choose(logits, [rows[r] for r in active], bitmask, params, generator)
                finished = []
                for b, (r, token) in enumerate(zip(active, tokens, strict=True)):
                    row = rows[r]
                    row.generated.append(token)
                    if row.matcher is not None:
                        row.matcher.accept_token(token)
                        row.done = row.matcher.is_terminated()
                    else:
                        row.done = token in self.eos
                    if row.done or len(row.generated) >= params.max_new_tokens:
                        finished.append(b)
                if len(finished) == len(active) or len(rows[active[0]].generated) >= params.max_new_tokens:
                    self._store(rows, active, cache, mask, sessions)
                    break
                if finished:
                    self._store(rows, [active[b] for b in finished], cache, mask, sessions,
                                batch_index=finished)
                    keep = [b for b in range(len(active)) if b not in set(finished)]
                    index = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(index)
                    mask, last_positions = mask[index], last_positions[index]
                    tokens = [tokens[b] for b in keep]
                    active = [active[b] for b in keep]
                mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
                last_positions = last_positions + 1
                output = self.model(input_ids=torch.tensor(tokens, device=self.device).view(-1, 1),
                                    attention_mask=mask, position_ids=last_positions.view(-1, 1), cache=cache,
                                    use_cache=True)
        return [self._decoded(row) for row in rows]

    def _prefill_apart(self, rows: list[Row], caches: list) -> None:
        """Prefill the rows with the longest new suffixes on their own (all but their last prompt token) when that
        pads fewer token-rows than one joint pass, so the joint first pass is not padded to them; their
        keys/values join ``caches``."""
        import torch

        n = len(rows)
        if n < 2:
            return
        suffixes = [len(r.prompt) - r.reused for r in rows]
        order = sorted(range(n), key=lambda i: suffixes[i])
        longest = suffixes[order[-1]]
        # keep the j shortest in the joint pass: n·(j-th suffix) + (n − j)·longest + overhead, vs n·longest
        cost, j = min((n * suffixes[order[j - 1]] + (n - j) * longest + SPLIT_OVERHEAD, j) for j in range(1, n))
        if cost >= n * longest:
            return
        apart = sorted(order[j:])
        self.prefilled_apart += len(apart)
        heads = [Row(-1, rows[i].prompt[:-1], reused=rows[i].reused) for i in apart]
        cache, mask, input_ids, positions = self._layout(heads, [caches[i] for i in apart], 0)
        with torch.inference_mode():
            self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                       logits_to_keep=1)
        for b, i in enumerate(apart):
            caches[i] = _row_kv(cache, mask, b)
            rows[i].reused = len(rows[i].prompt) - 1

    def _vocab(self) -> int:
        return self.model.config.get_text_config().vocab_size

    def _layout(self, rows: list[Row], caches: list, max_new_tokens: int):
        """(cache, attention mask, input ids, position ids) of the first forward pass; see the module docstring."""
        import torch
        from transformers import DynamicCache

        pad = self.tokenizer.pad_token_id
        reused = max(r.reused for r in rows)
        new = max(len(r.prompt) - r.reused for r in rows)
        n = len(rows)
        mask = torch.zeros(n, reused + new, dtype=torch.long)
        input_ids = torch.full((n, new), pad, dtype=torch.long)
        positions = torch.ones(n, new, dtype=torch.long)
        for i, row in enumerate(rows):
            suffix = row.prompt[row.reused:]
            mask[i, reused - row.reused: reused] = 1
            mask[i, reused + new - len(suffix):] = 1
            input_ids[i, new - len(suffix):] = torch.tensor(suffix)
            positions[i, new - len(suffix):] = torch.arange(row.reused, len(row.prompt))
        cache = DynamicCache()
        # keys/values in buffers sized for the whole call: a decoding step writes in place instead of
        # concatenating the whole cache (torch.cat of every layer made half of each step's time)
        cache.layer_class_to_replicate = partial(_buffered_layer, reused + new + max_new_tokens)
        if reused:
            layers = len(next(kv for kv in caches if kv is not None))
            for layer in range(layers):
                sample = next(kv for kv in caches if kv is not None)[layer][0]
                heads, dim = sample.shape[0], sample.shape[-1]
                keys = sample.new_zeros(n, heads, reused, dim)
                values = sample.new_zeros(n, heads, reused, dim)
                for i, (row, kv) in enumerate(zip(rows, caches, strict=True)):
                    if row.reused:
                        keys[i, :, reused - row.reused:] = kv[layer][0][:, : row.reused]
                        values[i, :, reused - row.reused:] = kv[layer][1][:, : row.reused]
                cache.update(keys.to(self.device), values.to(self.device), layer)
        return cache, mask.to(self.device), input_ids.to(self.device), positions.to(self.device)

    def _choose(self, logits, rows: list[Row], bitmask, params: SamplingParams, generator) -> list[int]:
        import torch
        import xgrammar as xgr

        if bitmask is not None and any(row.matcher is not None for row in rows):
            view = bitmask[: len(rows)]
            view.fill_(-1)  # all allowed; constrained rows overwrite theirs
            for b, row in enumerate(rows):
                if row.matcher is not None:
                    row.matcher.fill_next_token_bitmask(view, b)
            xgr.apply_token_bitmask_inplace(logits, view.to(logits.device))
        if params.greedy:
            return logits.argmax(dim=-1).tolist()
        probabilities = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            ordered, order = probabilities.sort(dim=-1, descending=True)
            outside = ordered.cumsum(dim=-1) - ordered > params.top_p
            ordered[outside] = 0.0
            probabilities = torch.zeros_like(probabilities).scatter_(-1, order, ordered)
        return torch.multinomial(probabilities, 1, generator=generator).view(-1).tolist()

    def _store(self, rows: list[Row], which: list[int], cache, mask, sessions, batch_index: list[int] | None = None):
        """Keep the keys/values of finished rows in their sessions (the tokens that went through the model)."""
        batch_index = batch_index if batch_index is not None else list(range(len(which)))
        for r, b in zip(which, batch_index, strict=True):
            key = sessions[r]
            if key is None:
                continue
            row = rows[r]
            fed = row.prompt + row.generated[:-1]  # the last sampled token never went through the model
            kv = [(keys.clone(), values.clone()) for keys, values in _row_kv(cache, mask, b)]
            if kv and kv[0][0].shape[1] != len(fed):  # a layout this code did not foresee: do not cache it
                self.sessions.pop(key, None)
                continue
            self.sessions[key] = Session(fed, kv, self.calls)

    def _decoded(self, row: Row) -> Generation:
        return self.decoded(row.generated)

    def decoded(self, tokens: list[int]) -> Generation:
        """Text and token count up to and including the first end-of-sequence token."""
        end = next((i for i, t in enumerate(tokens) if t in self.eos), len(tokens))
        text = self.tokenizer.decode(tokens[:end], skip_special_tokens=True).strip()
        return Generation(text, completion_tokens=min(end + 1, len(tokens)))


def _row_kv(cache, mask, b: int) -> list[tuple[Any, Any]]:
    """Batch row ``b``'s keys/values per layer at its unmasked positions (views into the batch's buffers)."""
    keep = mask[b].bool()
    return [(layer.keys[b][:, keep[: layer.keys.shape[-2]]], layer.values[b][:, keep[: layer.values.shape[-2]]])
            for layer in cache.layers]
