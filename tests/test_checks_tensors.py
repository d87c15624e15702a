"Mutation tests for lesson 01's checks: each accepts the reference and rejects plausible mistakes and the stub."
import math

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat

from mlre_lab.checks import tensors as T
from mlre_lab.checks.harness import CheckFailed
from mlre_lab.scratch import tensors as L

from .mutation import mutation_tests


def _broadcast_left(a, b):  # aligns shapes from the left
    n = max(len(a), len(b))
    a, b = tuple(a) + (1,) * (n - len(a)), tuple(b) + (1,) * (n - len(b))
    return tuple(q if p == 1 else p for p, q in zip(a, b, strict=True))


def _broadcast_max(a, b):  # never raises, and max(1, 0) is 1
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    return tuple(max(p, q) for p, q in zip(a, b, strict=True))


def _broadcast_same_rank(a, b):  # forgets to prepend 1s
    if len(a) != len(b):
        raise ValueError("ranks differ")
    return L.broadcast_shape(a, b)


def _broadcast_type_error(a, b):  # raises the wrong exception type for incompatible shapes
    try:
        return L.broadcast_shape(a, b)
    except ValueError as e:
        raise TypeError(str(e)) from None


NEG_INF = float("-inf")


def _bool_ones(seq, device):
    return torch.ones(seq, seq, dtype=torch.bool, device=device)


def _kth(x, k, largest=True):
    return x.topk(k, dim=-1, largest=largest).values[..., -1:]


def _top_k_sorted_mask(logits, k):  # keeps the first k positions, not the k largest
    out = torch.full_like(logits, NEG_INF)
    out[..., :k] = logits[..., :k]
    return out


# check name -> (check, reference, {mutant name: mutant})
CHECKS = {
    "last_token": (T.check_last_token, L.last_token, {
        "last position, ignoring lengths": lambda x, lengths: x[:, -1],
        "every position for every row": lambda x, lengths: x[:, lengths - 1],
        "off by one (lengths, not lengths - 1)":
            lambda x, lengths: x[torch.arange(x.shape[0]), lengths.clamp(max=x.shape[1] - 1)],
        "first token": lambda x, lengths: x[:, 0],
    }),
    "broadcast_shape": (T.check_broadcast_shape, L.broadcast_shape, {
        "aligned from the left": _broadcast_left,
        "max of sizes, never raises": _broadcast_max,
        "same rank only": _broadcast_same_rank,
        "TypeError instead of ValueError": _broadcast_type_error,
    }),
    "pairwise_distances": (T.check_pairwise_distances, L.pairwise_distances, {
        "axes swapped (transposed result)": lambda x, y: (y[:, None, :] - x[None, :, :]).pow(2).sum(-1).sqrt(),
        "squared distances": lambda x, y: (x[:, None, :] - y[None, :, :]).pow(2).sum(-1),
        "L1 distances": lambda x, y: (x[:, None, :] - y[None, :, :]).abs().sum(-1),
        "float32 result": lambda x, y: L.pairwise_distances(x.float(), y.float()),
        "rows only (no broadcasting: needs n_x == n_y)":
            lambda x, y: (x - y).pow(2).sum(-1).sqrt()[:, None].expand(-1, y.shape[0]),
    }),
    "causal_mask": (T.check_causal_mask, T.causal_mask, {
        "upper triangle (future visible)": lambda seq, device=None: torch.triu(_bool_ones(seq, device)),
        "strict (cannot see itself)": lambda seq, device=None: torch.tril(_bool_ones(seq, device), -1),
        "float mask": lambda seq, device=None: torch.tril(torch.ones(seq, seq, device=device)),
        "additive -inf mask": lambda seq, device=None: torch.triu(torch.full((seq, seq), NEG_INF, device=device), 1),
    }),
    "masked_mean": (T.check_masked_mean, L.masked_mean, {
        "mean over all positions": lambda x, mask: x.mean(dim=1),
        "divides by seq": lambda x, mask: (x * mask[..., None]).sum(1) / x.shape[1],
        "divides by the batch's total count": lambda x, mask: (x * mask[..., None]).sum(1) / mask.sum(),
        "boolean indexing flattens the batch": lambda x, mask: x[mask].mean(0),
    }),
    "one_hot": (T.check_one_hot, L.one_hot, {
        "int64 (F.one_hot as is)": lambda ids, vocab: F.one_hot(ids, vocab),
        "vocab inferred from ids": lambda ids, vocab: F.one_hot(ids).float(),
        "off by one": lambda ids, vocab: (ids[..., None] == torch.arange(1, vocab + 1, device=ids.device)).float(),
        "vocab axis first":
            lambda ids, vocab: (torch.arange(vocab, device=ids.device).view(-1, *[1] * ids.dim()) == ids).float(),
    }),
    "token_logprobs": (T.check_token_logprobs, L.token_logprobs, {
        "raw logits, no log_softmax": lambda logits, t: logits.gather(-1, t[..., None]).squeeze(-1),
        "log(softmax) (underflows)": lambda logits, t: logits.softmax(-1).log().gather(-1, t[..., None]).squeeze(-1),
        "probabilities, not log": lambda logits, t: logits.softmax(-1).gather(-1, t[..., None]).squeeze(-1),
        "gather on the seq dim":
            lambda logits, t: logits.log_softmax(-1).gather(1, t[..., None].clamp(max=logits.shape[1] - 1)).squeeze(-1),
        "log_softmax over seq": lambda logits, t: logits.log_softmax(1).gather(-1, t[..., None]).squeeze(-1),
        "index every target for every row": lambda logits, t: logits.log_softmax(-1)[..., t],
    }),
    "top_k_filter": (T.check_top_k_filter, L.top_k_filter, {
        "strictly greater (keeps k-1)": lambda x, k: x.masked_fill(x <= _kth(x, k), NEG_INF),
        "zeros instead of -inf": lambda x, k: x.masked_fill(x < _kth(x, k), 0.0),
        "keeps the k smallest": lambda x, k: x.masked_fill(x > _kth(x, k, largest=False), NEG_INF),
        "first k positions": _top_k_sorted_mask,
        "returns topk values only": lambda x, k: x.topk(k, dim=-1).values,
    }),
    "patchify": (T.check_patchify, L.patchify, {
        "channels first in each patch":
            lambda im, p: rearrange(im, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p),
        "column-major patch order": lambda im, p: rearrange(im, "b c (h p1) (w p2) -> b (w h) (p1 p2 c)", p1=p, p2=p),
        "reshape without permute": lambda im, p: im.reshape(im.shape[0], -1, p * p * im.shape[1]),
        "p2 before p1": lambda im, p: rearrange(im, "b c (h p1) (w p2) -> b (h w) (p2 p1 c)", p1=p, p2=p),
    }),
    "split_heads": (T.check_split_heads, L.split_heads, {
        "reshape without transpose": lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1),
        "d_head-major split": lambda x, h: rearrange(x, "b s (d h) -> b h s d", h=h),
        "no transpose": lambda x, h: x.reshape(x.shape[0], x.shape[1], h, -1),
        "heads and d_head confused": lambda x, h: rearrange(x, "b s (h d) -> b h s d", d=h),
    }),
    "max_pool": (T.check_max_pool, L.max_pool, {
        "mean instead of max": lambda im, s: reduce(im, "b c (h p1) (w p2) -> b c h w", "mean", p1=s, p2=s),
        "strided grouping (s h)": lambda im, s: reduce(im, "b c (p1 h) (p2 w) -> b c h w", "max", p1=s, p2=s),
        "height and width swapped": lambda im, s: reduce(im, "b c (h p1) (w p2) -> b c w h", "max", p1=s, p2=s),
        "pools height only": lambda im, s: reduce(im, "b c (h p1) w -> b c h w", "max", p1=s),
    }),
    "repeat_kv": (T.check_repeat_kv, T.repeat_kv, {
        "tiled (r h) instead of (h r)": lambda kv, r: kv.repeat(1, r, 1, 1),
        "repeated along seq": lambda kv, r: kv.repeat_interleave(r, dim=2),
        "repeated along batch": lambda kv, r: repeat(kv, "b h s d -> (b r) h s d", r=r),
        "no repeat": lambda kv, r: kv,
    }),
    "attention_scores": (T.check_attention_scores, L.attention_scores, {
        "not scaled": lambda q, k: torch.einsum("bhqd,bhkd->bhqk", q, k),
        "scaled by d_head": lambda q, k: torch.einsum("bhqd,bhkd->bhqk", q, k) / q.shape[-1],
        "transposed (seq_k, seq_q)": lambda q, k: torch.einsum("bhqd,bhkd->bhkq", q, k) / math.sqrt(q.shape[-1]),
        "summed over heads too": lambda q, k: torch.einsum("bhqd,bgkd->bhqk", q, k) / math.sqrt(q.shape[-1]),
        "scaled by sqrt(seq_k)": lambda q, k: q @ k.mT / math.sqrt(k.shape[-2]),
    }),
}

(test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected,
 test_mutant_rejected) = mutation_tests(CHECKS, T)



def test_failure_names_case_and_dimensions():
    with pytest.raises(CheckFailed) as info:
        T.check_attention_scores(CHECKS["attention_scores"][2]["transposed (seq_k, seq_q)"])
    msg = str(info.value)
    assert "case 'batch=2, heads=3, seq_q=4, seq_k=5, d_head=8'" in msg
    assert "has shape (2, 3, 5, 4), expected (batch=2, heads=3, seq_q=4, seq_k=5)" in msg


def test_large_logits_case_explains_log_softmax():
    with pytest.raises(CheckFailed) as info:
        T.check_token_logprobs(CHECKS["token_logprobs"][2]["log(softmax) (underflows)"])
    assert "large logits" in str(info.value) and "infinity" in str(info.value)
    assert "use log_softmax" in str(info.value)


def test_value_mismatch_reports_error_and_index():
    with pytest.raises(CheckFailed) as info:
        T.check_masked_mean(CHECKS["masked_mean"][2]["divides by seq"])
    assert "max abs error" in str(info.value) and "at index (batch=" in str(info.value)
