"Mutation tests for lesson 13's checks: each accepts the reference and rejects plausible mistakes and the stub."

import torch
import torch.nn.functional as F

from mlre_lab import infer
from mlre_lab.checks import inference as C
from mlre_lab.nn import transformer as T

from .mutation import mutation_tests


def pad(side="left", pad_with=None, invert=False, all_ones=False):
    def fn(prompts, pad_id=0):
        longest = max(len(p) for p in prompts)
        fill = pad_id if pad_with is None else pad_with
        rows, masks = [], []
        for p in prompts:
            padding = [fill] * (longest - len(p))
            rows.append(padding + list(p) if side == "left" else list(p) + padding)
            ones, zeros = [1] * len(p), [0] * (longest - len(p))
            mask = zeros + ones if side == "left" else ones + zeros
            masks.append([1] * longest if all_ones else [1 - m for m in mask] if invert else mask)
        return torch.tensor(rows), torch.tensor(masks)
    return fn


def positions(minus=1, clamp=True, dim=-1):
    def fn(attention_mask):
        pos = attention_mask.long().cumsum(dim) - minus
        return pos.clamp(min=0) if clamp else pos
    return fn


def causal_mask(causal=True, padding=True, itself=True, on_queries=False):
    def fn(attention_mask):
        seq = attention_mask.size(-1)
        token = attention_mask.bool()
        allowed = torch.ones(seq, seq, dtype=torch.bool, device=attention_mask.device)
        if causal:
            allowed = allowed.tril()
        allowed = allowed.expand(len(attention_mask), 1, seq, seq)
        if padding:
            allowed = allowed & (token[:, None, :, None] if on_queries else token[:, None, None, :])
        if itself:
            allowed = allowed | torch.eye(seq, dtype=torch.bool, device=attention_mask.device)
        return allowed
    return fn


def cache_step(order="append", causal=False, scale=None, attend_new_only=False, skip_new=False):
    def fn(q, k_cache, v_cache, k_new, v_new):
        cat = (lambda c, n: torch.cat([c, n], -2)) if order == "append" else (lambda c, n: torch.cat([n, c], -2))
        k, v = cat(k_cache, k_new), cat(v_cache, v_new)
        keys, values = (k_new, v_new) if attend_new_only else (k_cache, v_cache) if skip_new else (k, v)
        if skip_new and k_cache.size(-2) == 0:
            keys, values = k, v  # nothing cached: the mistake cannot show, and attention over no keys is undefined
        out = F.scaled_dot_product_attention(q, keys, values, is_causal=causal, scale=scale)
        return out, k, v
    return fn


def quantize(per="row", levels=127, rounding=torch.round, guard_zero=True):
    def fn(w):
        absmax = w.abs().amax(dim=1) if per == "row" else w.abs().amax().expand(w.size(0))
        scale = absmax / levels
        if guard_zero:
            scale = torch.where(absmax > 0, scale, torch.ones_like(scale))
        return rounding(w / scale[:, None]).clamp(-127, 127).to(torch.int8), scale
    return fn


# check name -> (check, reference, {mutant name: mutant})
CHECKS = {
    "left_pad": (C.check_left_pad, infer.left_pad, {
        "pads on the right": pad(side="right"),
        "mask inverted (1 = padding)": pad(invert=True),
        "always pads with 0, not pad_id": pad(pad_with=0),
        "mask of all ones": pad(all_ones=True),
    }),
    "padded_positions": (C.check_padded_positions, T.padded_positions, {
        "positions ignore the padding (arange)":
            lambda m: torch.arange(m.size(-1), device=m.device).expand_as(m).clone(),
        "cumsum without the -1": positions(minus=0),
        "padding left at -1 (no clamp)": positions(clamp=False),
        "cumsum over the batch": positions(dim=0),
    }),
    "padded_causal_mask": (C.check_padded_causal_mask, T.padded_causal_mask, {
        "causal only (padding keys visible)": causal_mask(padding=False),
        "padding only (no causal mask)": causal_mask(causal=False),
        "padding queries see nothing (empty rows)": causal_mask(itself=False),
        "masks padding queries instead of keys": causal_mask(on_queries=True),
    }),
    "kv_cache_step": (C.check_kv_cache_step, C._kv_cache_step_reference, {
        "is_causal=True (SDPA aligns it top-left: the query sees only the first key)": cache_step(causal=True),
        "new token put before the cache": cache_step(order="prepend"),
        "no 1/sqrt(d_head) scaling": cache_step(scale=1.0),
        "attends to the new token only": cache_step(attend_new_only=True),
        "attends to the cache only (forgot the new token)": cache_step(skip_new=True),
    }),
    "quantize_int8": (C.check_quantize_int8, infer.quantize_int8, {
        "one scale for the whole matrix": quantize(per="tensor"),
        "divides by 128": quantize(levels=128),
        "truncates instead of rounding": quantize(rounding=torch.trunc),
        "scale 0 for a row of zeros": quantize(guard_zero=False),
        "scale as (out, 1)": lambda w: (infer.quantize_int8(w)[0], infer.quantize_int8(w)[1][:, None]),
    }),
}

(test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected,
 test_mutant_rejected) = mutation_tests(CHECKS, C)
