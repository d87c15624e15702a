"Mutation tests for lesson 04's checks: each accepts the reference and rejects plausible mistakes and the stub."
import math

import pytest
import torch
from einops import rearrange

from mlre_lab.checks import attention as A
from mlre_lab.checks.harness import CheckFailed
from mlre_lab.nn import attention as L

from .mutation import mutation_tests


def _scores(q, k, scale=None):
    return q @ k.mT * (1 / math.sqrt(q.size(-1)) if scale is None else scale)


def _weights(scores, mask):
    "The correct masking, on given scores."
    if mask is None:
        return scores.softmax(-1)
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(-1).masked_fill(~mask, 0.0)


def w_no_scale(q, k, mask=None):
    return _weights(_scores(q, k, scale=1.0), mask)


def w_scale_by_d(q, k, mask=None):
    return _weights(_scores(q, k, scale=1 / q.size(-1)), mask)


def w_mask_after_softmax(q, k, mask=None):
    w = _scores(q, k).softmax(-1)
    return w if mask is None else w.masked_fill(~mask, 0.0)


def w_neg_inf(q, k, mask=None):
    s = _scores(q, k)
    return (s if mask is None else s.masked_fill(~mask, float("-inf"))).softmax(-1)


def w_softmax_over_queries(q, k, mask=None):
    s = _scores(q, k)
    w = (s if mask is None else s.masked_fill(~mask, torch.finfo(s.dtype).min)).softmax(-2)
    return w if mask is None else w.masked_fill(~mask, 0.0)


def w_mask_inverted(q, k, mask=None):
    return _weights(_scores(q, k), None if mask is None else ~mask)


def _attn_from(weights_fn):
    return lambda q, k, v, mask=None: weights_fn(q, k, mask) @ v


def a_transposed_weights(q, k, v, mask=None):
    w = L.attention_weights(q, k, mask)
    return w.mT[..., : v.size(-2)] @ v if w.size(-1) == w.size(-2) else w.mT @ v


def a_ignores_mask(q, k, v, mask=None):
    return L.attention_weights(q, k) @ v


def a_keys_as_values(q, k, v, mask=None):
    return L.attention_weights(q, k, mask) @ k


def cm(diagonal):
    return lambda seq_q, seq_k, device=None: torch.ones(seq_q, seq_k, dtype=torch.bool, device=device).tril(
        diagonal(seq_q, seq_k))


def cm_inverted(seq_q, seq_k, device=None):
    return torch.ones(seq_q, seq_k, dtype=torch.bool, device=device).triu(seq_k - seq_q)


def mha(split="batch seq (heads d_head) -> batch heads seq d_head", merge_transposes=True, causal=True, scale=None,
        order=(0, 1, 2)):
    def fn(x, w_qkv, w_o, n_head):
        parts = (x @ w_qkv.T).chunk(3, dim=-1)
        q, k, v = (rearrange(parts[i], split, heads=n_head) for i in order)
        s = _scores(q, k, scale)
        mask = L.causal_mask(x.size(1), device=x.device) if causal else None
        y = _weights(s, mask) @ v
        y = rearrange(y, "b h s d -> b s (h d)") if merge_transposes else y.reshape(x.shape)
        return y @ w_o.T
    return fn


def gqa(kv_layout="interleave", causal=True, scale=None):
    "Grouped-query attention with one chosen mistake."
    def fn(x, w_q, w_k, w_v, w_o, n_head, n_kv_head):
        q = rearrange(x @ w_q.T, "b s (h d) -> b h s d", h=n_head)
        k = rearrange(x @ w_k.T, "b s (h d) -> b h s d", h=n_kv_head)
        v = rearrange(x @ w_v.T, "b s (h d) -> b h s d", h=n_kv_head)
        g = n_head // n_kv_head
        if kv_layout == "interleave":
            k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
        elif kv_layout == "tile":  # head h reads kv head h % n_kv_head
            k, v = k.repeat(1, g, 1, 1), v.repeat(1, g, 1, 1)
        elif kv_layout == "mean":  # query heads of a group averaged
            q = q.reshape(q.size(0), n_kv_head, g, *q.shape[2:]).mean(2).repeat_interleave(g, 1)
            k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
        mask = L.causal_mask(x.size(1), device=x.device) if causal else None
        y = _weights(_scores(q, k, scale), mask) @ v
        return rearrange(y, "b h s d -> b s (h d)") @ w_o.T
    return fn


class CachedAttention:
    "The reference learner solution, with switches for the mistakes a learner makes."

    def __init__(self, w_q, w_k, w_v, w_o, n_head, n_kv_head, batch, max_seq, mistake=None):
        self.w_q, self.w_k, self.w_v, self.w_o = w_q, w_k, w_v, w_o
        self.n_head, self.n_kv_head, self.mistake = n_head, n_kv_head, mistake
        heads = n_head if mistake == "caches repeated heads" else n_kv_head
        d_head = w_q.size(0) // n_head
        self.k_cache = torch.zeros(batch, heads, max_seq, d_head, dtype=w_q.dtype, device=w_q.device)
        self.v_cache = torch.zeros_like(self.k_cache)
        self.pos = 0

    def reset(self):
        if self.mistake != "reset forgets the position":
            self.pos = 0

    def __call__(self, x):
        new = x.size(1)
        end = self.pos + new
        if end > self.k_cache.size(2) and self.mistake != "no capacity check":
            raise ValueError("cache full")
        g = self.n_head // self.n_kv_head
        q = rearrange(x @ self.w_q.T, "b s (h d) -> b h s d", h=self.n_head)
        k = rearrange(x @ self.w_k.T, "b s (h d) -> b h s d", h=self.n_kv_head)
        v = rearrange(x @ self.w_v.T, "b s (h d) -> b h s d", h=self.n_kv_head)
        if self.mistake == "caches repeated heads":
            k, v, g = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1), 1
        start = 0 if self.mistake == "never advances" else self.pos
        end = start + new
        self.k_cache[:, :, start:end] = k
        self.v_cache[:, :, start:end] = v
        keys = self.k_cache[:, :, :end].repeat_interleave(g, 1)
        values = self.v_cache[:, :, :end].repeat_interleave(g, 1)
        diagonal = 0 if self.mistake == "mask aligned top-left" else end - new
        mask = torch.ones(new, end, dtype=torch.bool, device=x.device).tril(diagonal)
        y = _weights(_scores(q, keys), mask) @ values
        self.pos = end
        return rearrange(y, "b h s d -> b s (h d)") @ self.w_o.T


def cached(mistake):
    return lambda *args: CachedAttention(*args, mistake=mistake)


# check name -> (check, reference, {mutant name: mutant})
CHECKS = {
    "masked_attention_weights": (A.check_masked_attention_weights, L.attention_weights, {
        "no 1/sqrt(d_head) scaling": w_no_scale,
        "scaled by 1/d_head": w_scale_by_d,
        "mask applied after the softmax": w_mask_after_softmax,
        "-inf fill (NaN on fully masked rows)": w_neg_inf,
        "softmax over the queries": w_softmax_over_queries,
        "mask meaning inverted": w_mask_inverted,
    }),
    "attention": (A.check_attention, L.scaled_dot_product_attention, {
        "no 1/sqrt(d_head) scaling": _attn_from(w_no_scale),
        "mask applied after the softmax": _attn_from(w_mask_after_softmax),
        "weights transposed": a_transposed_weights,
        "mask ignored": a_ignores_mask,
        "keys used as values": a_keys_as_values,
    }),
    "cached_causal_mask": (A.check_cached_causal_mask, L.causal_mask, {
        "aligned top-left (ignores the cache)": cm(lambda q, k: 0),
        "off by one: hides each token from itself": cm(lambda q, k: k - q - 1),
        "off by one: sees the next token": cm(lambda q, k: k - q + 1),
        "upper triangle (sees the future)": cm_inverted,
    }),
    "multi_head_attention": (A.check_multi_head_attention, A._mha_reference, {
        "heads split in the wrong order (d_head heads)": mha(split="b s (d_head heads) -> b heads s d_head"),
        "heads merged without moving them back": mha(merge_transposes=False),
        "no causal mask": mha(causal=False),
        "no 1/sqrt(d_head) scaling": mha(scale=1.0),
        "queries and keys swapped": mha(order=(1, 0, 2)),
    }),
    "grouped_query_attention": (A.check_grouped_query_attention, A._gqa_reference, {
        "key/value heads tiled (head h reads kv head h % n_kv_head)": gqa(kv_layout="tile"),
        "the query heads of a group averaged": gqa(kv_layout="mean"),
        "no causal mask": gqa(causal=False),
        "no 1/sqrt(d_head) scaling": gqa(scale=1.0),
    }),
    "cached_attention": (A.check_cached_attention, A._CachedReference, {
        "mask aligned top-left (ignores the cache)": cached("mask aligned top-left"),
        "the position never advances": cached("never advances"),
        "caches the repeated heads": cached("caches repeated heads"),
        "reset() leaves the position": cached("reset forgets the position"),
        "no capacity check": cached("no capacity check"),
    }),
}
(test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected,
 test_mutant_rejected) = mutation_tests(CHECKS, A)



def test_nan_rows_get_the_specific_hint():
    with pytest.raises(CheckFailed) as info:
        A.check_masked_attention_weights(w_neg_inf)
    msg = str(info.value)
    assert "a query whose every key is masked" in msg and "NaN" in msg and "not -inf" in msg


def test_wrong_head_split_reports_value_error_location():
    with pytest.raises(CheckFailed) as info:
        A.check_multi_head_attention(CHECKS["multi_head_attention"][2]["heads split in the wrong order (d_head heads)"])
    assert "max abs error" in str(info.value) and "(batch=" in str(info.value)
