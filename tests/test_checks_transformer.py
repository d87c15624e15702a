"Mutation tests for lesson 05's checks: each accepts the reference and rejects plausible mistakes and the stub."
import math

import pytest
import torch
import torch.nn.functional as F

from mlre_lab.checks import transformer as T
from mlre_lab.checks.harness import CheckFailed
from mlre_lab.nn import transformer as L

from .mutation import mutation_tests


def rope(pairs="interleaved", sign=1.0, swap=False, interleave_back=True):
    def fn(x, cos, sin):
        c, s = (sin, cos) if swap else (cos, sin)
        s = sign * s
        a, b = (x[..., 0::2], x[..., 1::2]) if pairs == "interleaved" else x.chunk(2, dim=-1)
        ra, rb = a * c - b * s, a * s + b * c
        return torch.stack([ra, rb], -1).flatten(-2) if interleave_back else torch.cat([ra, rb], -1)
    return fn


def top_p(drop_rule="exclusive", sort=True, on_logits=False):
    def fn(logits, p):
        if sort:
            vals, order = logits.sort(dim=-1, descending=True)
        else:
            vals, order = logits, torch.arange(logits.size(-1), device=logits.device).expand_as(logits)
        mass = vals if on_logits else vals.softmax(-1)
        cum = mass.cumsum(-1)
        drop = (cum - mass) >= p if drop_rule == "exclusive" else cum > p
        return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return fn


def swiglu(act=F.silu, swap=False):
    def fn(x, w_gate, w_up, w_down):
        g, u = x @ w_gate.T, x @ w_up.T
        if swap:
            g, u = u, g
        return (act(g) * u) @ w_down.T
    return fn



# ---- the learner's block, GPT and cached generation: the library's classes behind the exercise's call signatures ----

class BlockAsExercise(L.Block):
    "The library's `Block`, called as the exercise calls a block: `block(x, cos, sin)` with rotary tables or None."
    def __init__(self, config):
        super().__init__(config)
        self.config = config

    def rotary(self, cos, sin, seq):
        if cos is None:
            return None
        c = self.config
        rotary = L.Rotary(c.d_head, seq, c.rope_base, c.rope_layout).to(cos.device)
        rotary.cos, rotary.sin = cos, sin
        return rotary

    def forward(self, x, cos, sin):
        return super().forward(x, self.rotary(cos, sin, x.size(1)))


class BlockIgnoresRope(BlockAsExercise):
    def forward(self, x, cos, sin):
        return L.Block.forward(self, x, None)


class BlockSwapsCosSin(BlockAsExercise):
    def forward(self, x, cos, sin):
        return L.Block.forward(self, x, self.rotary(sin, cos, x.size(1)))


class BlockDetachesInput(BlockAsExercise):
    def forward(self, x, cos, sin):
        return super().forward(x.detach(), cos, sin)


class GPTWritten(L.GPT):
    "The library's forward pass written out, with one mistake switchable per subclass."
    final_norm, position_offset, pass_rotary = True, 0, True

    def forward(self, idx):
        x = self._embed_tokens(idx)
        if "wpe" in self.transformer:
            start = self.position_offset
            x = x + self.transformer.wpe(torch.arange(start, start + idx.size(1), device=idx.device))
        for layer, block in enumerate(self.transformer.h):
            x = block(x, self.rotary if self.pass_rotary else None, None, layer, None, None)
        return self.lm_head(self.transformer.ln_f(x) if self.final_norm else x)


class GPTNoFinalNorm(GPTWritten):
    final_norm = False


class GPTPositionsFromOne(GPTWritten):
    position_offset = 1


class GPTWithoutRope(GPTWritten):
    pass_rotary = False


class GPTUntiedHead(L.GPT):
    def __init__(self, config):
        super().__init__(config)
        self.lm_head.weight = torch.nn.Parameter(self.lm_head.weight.detach().clone())


class GreedyGenerator(L.GPT):
    "The library's GPT with the exercise's `generate(idx, max_new_tokens, use_cache=True)`: greedy."
    def generate(self, idx, max_new_tokens, use_cache=True):
        return super().generate(idx, max_new_tokens, temperature=0.0, use_cache=use_cache)


class GeneratorWithoutCache(L.GPT):
    def generate(self, idx, max_new_tokens, use_cache=True):
        return super().generate(idx, max_new_tokens, temperature=0.0, use_cache=False)


class GeneratorOneShort(L.GPT):
    def generate(self, idx, max_new_tokens, use_cache=True):
        return super().generate(idx, max_new_tokens - 1, temperature=0.0, use_cache=use_cache)


class GeneratorSampling(L.GPT):
    def generate(self, idx, max_new_tokens, use_cache=True):
        g = torch.Generator(device=idx.device).manual_seed(0)
        return super().generate(idx, max_new_tokens, temperature=1.0, use_cache=use_cache, generator=g)


class StubModule(torch.nn.Module):
    "What the exercise's class holds before the learner writes anything."
    def __init__(self, config):
        raise NotImplementedError("exercise stub")


# check name -> (check, reference, {mutant name: mutant})
CHECKS = {
    "rms_norm": (T.check_rms_norm, T._rms_norm_reference, {
        "subtracts the mean (LayerNorm without bias)":
            lambda x, w, eps=1e-5: F.layer_norm(x, x.shape[-1:], eps=eps) * w,
        "eps outside the square root": lambda x, w, eps=1e-5: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * w,
        "no weight": lambda x, w, eps=1e-5: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps),
        "divides by the L2 norm, not the RMS": lambda x, w, eps=1e-5: x / (x.norm(dim=-1, keepdim=True) + eps) * w,
        "mean over the sequence, not the features":
            lambda x, w, eps=1e-5: x * torch.rsqrt(x.pow(2).mean(-2, keepdim=True) + eps) * w,
    }),
    "gelu_tanh": (T.check_gelu_tanh, L.gelu_tanh, {
        "exact (erf) GELU": L.gelu,
        "no cubic term": lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * x)),
        "sqrt(2 pi) instead of sqrt(2 / pi)":
            lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 * math.pi) * (x + 0.044715 * x**3))),
        "sigmoid approximation": lambda x: x * torch.sigmoid(1.702 * x),
    }),
    "swiglu": (T.check_swiglu, T._swiglu_reference, {
        "gate and up swapped": swiglu(swap=True),
        "sigmoid instead of silu": swiglu(act=torch.sigmoid),
        "GELU instead of silu": swiglu(act=F.gelu),
        "weights not transposed": lambda x, w_gate, w_up, w_down: (F.silu(x @ w_gate) * (x @ w_up)) @ w_down,
    }),
    "apply_rope": (T.check_apply_rope, T._rope_interleaved, {
        "RoPE on the wrong pairs (half-split)": rope(pairs="half"),
        "rotation reversed (sin sign)": rope(sign=-1.0),
        "cos and sin swapped": rope(swap=True),
        "halves concatenated instead of re-interleaved": rope(interleave_back=False),
    }),
    "top_p_filter": (T.check_top_p_filter, L.top_p_filter, {
        "drops the token that crosses p": top_p(drop_rule="inclusive"),
        "cumulative mass in vocabulary order (no sort)": top_p(sort=False),
        "cumulative sum of logits, not probabilities": top_p(on_logits=True),
        "returns probabilities": lambda logits, p: L.top_p_filter(logits, p).softmax(-1),
    }),
    "block": (T.check_block, BlockAsExercise, StubModule, {
        "ignores the rotary tables": BlockIgnoresRope,
        "swaps cos and sin": BlockSwapsCosSin,
        "detaches its input (no gradient reaches x)": BlockDetachesInput,
    }),
    "gpt": (T.check_gpt, GPTWritten, StubModule, {
        "no final norm": GPTNoFinalNorm,
        "learned positions counted from 1": GPTPositionsFromOne,
        "RoPE tables never passed to the blocks": GPTWithoutRope,
        "lm_head not tied to wte": GPTUntiedHead,
    }),
    "cached_generation": (T.check_cached_generation, GreedyGenerator, StubModule, {
        "never uses the cache": GeneratorWithoutCache,
        "one token short": GeneratorOneShort,
        "samples instead of greedy": GeneratorSampling,
    }),
}
(test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected,
 test_mutant_rejected) = mutation_tests(CHECKS, T)



def test_eps_mistake_is_caught_by_the_tiny_activation_case():
    with pytest.raises(CheckFailed) as info:
        T.check_rms_norm(CHECKS["rms_norm"][2]["eps outside the square root"])
    assert "tiny activations" in str(info.value) and "eps goes inside the square root" in str(info.value)


def test_crossing_token_mistake_reports_the_dropped_token():
    with pytest.raises(CheckFailed) as info:
        T.check_top_p_filter(CHECKS["top_p_filter"][2]["drops the token that crosses p"])
    msg = str(info.value)
    assert "output has infinity at index (batch=" in msg and "mass ranked above it already reaches p" in msg
