"""The GPT: checkpoint layouts against independent reference forward passes, generation, and bad input.

The references below are written from the published key names alone (GPT-2's Conv1D layout; Hugging Face's Llama
layout with `rotate_half`), sharing no code with mlre_lab.nn.transformer."""
import math

import pytest
import torch
import torch.nn.functional as F

from mlre_lab.nn.transformer import (
    GPT,
    GPTConfig,
    StateDictError,
    hf_to_interleaved,
    load_gpt2_state_dict,
    load_llama_state_dict,
    sample_next,
)
from mlre_lab.shapes import ShapeError


def _rand(g, *shape, scale=0.2):
    return torch.randn(*shape, generator=g) * scale


# ---- GPT-2 ------------------------------------------------------------------------------------------------------
def gpt2_sd(vocab=40, block=10, n_layer=2, d=24, prefix="transformer.", seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {f"{prefix}wte.weight": _rand(g, vocab, d), f"{prefix}wpe.weight": _rand(g, block, d),
          f"{prefix}ln_f.weight": 1 + _rand(g, d), f"{prefix}ln_f.bias": _rand(g, d)}
    for i in range(n_layer):
        p = f"{prefix}h.{i}."
        for name, shape in [("ln_1.weight", (d,)), ("ln_1.bias", (d,)), ("attn.c_attn.weight", (d, 3 * d)),
                            ("attn.c_attn.bias", (3 * d,)), ("attn.c_proj.weight", (d, d)), ("attn.c_proj.bias", (d,)),
                            ("ln_2.weight", (d,)), ("ln_2.bias", (d,)), ("mlp.c_fc.weight", (d, 4 * d)),
                            ("mlp.c_fc.bias", (4 * d,)), ("mlp.c_proj.weight", (4 * d, d)), ("mlp.c_proj.bias", (d,))]:
            sd[p + name] = _rand(g, *shape) + (1 if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") else 0)
        sd[p + "attn.masked_bias"] = torch.tensor(-1e4)
    return sd


def gpt2_forward(sd, idx, n_layer, n_head, prefix="transformer."):
    "GPT-2 as OpenAI wrote it: Conv1D is x @ W + b with W (in, out); gelu_new is the tanh approximation."
    def ln(x, p):
        mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * sd[p + ".weight"] + sd[p + ".bias"]

    def gelu_new(x):
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))

    t = idx.shape[1]
    h = sd[prefix + "wte.weight"][idx] + sd[prefix + "wpe.weight"][torch.arange(t)]
    for i in range(n_layer):
        p = f"{prefix}h.{i}."
        a = ln(h, p + "ln_1") @ sd[p + "attn.c_attn.weight"] + sd[p + "attn.c_attn.bias"]
        d = a.shape[-1] // 3
        heads = [a[..., j * d // n_head:(j + 1) * d // n_head] for j in range(3 * n_head)]  # q heads, k heads, v heads
        outs = []
        for j in range(n_head):
            q, k, v = heads[j], heads[n_head + j], heads[2 * n_head + j]
            w = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + torch.triu(torch.full((t, t), -1e10), 1)
            outs.append(w.softmax(-1) @ v)
        h = h + torch.cat(outs, -1) @ sd[p + "attn.c_proj.weight"] + sd[p + "attn.c_proj.bias"]
        m = gelu_new(ln(h, p + "ln_2") @ sd[p + "mlp.c_fc.weight"] + sd[p + "mlp.c_fc.bias"])
        h = h + m @ sd[p + "mlp.c_proj.weight"] + sd[p + "mlp.c_proj.bias"]
    return ln(h, prefix + "ln_f") @ sd[prefix + "wte.weight"].T


@pytest.mark.parametrize("prefix", ["transformer.", ""])  # GPT2LMHeadModel and GPT2Model key names
def test_gpt2_logits_match_reference(prefix):
    sd = gpt2_sd(prefix=prefix)
    model = load_gpt2_state_dict(GPT(GPTConfig.gpt2_style(40, 10, 2, 4, 24)), sd)
    idx = torch.randint(0, 40, (3, 10), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(idx), gpt2_forward(sd, idx, 2, 4, prefix), atol=1e-5, rtol=1e-5)


def test_gpt2_loader_lists_every_offending_key():
    sd = gpt2_sd()
    del sd["transformer.wpe.weight"], sd["transformer.h.0.ln_2.bias"]
    sd["transformer.h.1.mlp.c_fc.weight"] = torch.zeros(96, 24)  # Linear layout, not Conv1D
    sd["transformer.h.0.mlp.c_proj.bias"] = torch.zeros(25)
    sd["transformer.extra.weight"] = torch.zeros(1)
    with pytest.raises(StateDictError) as err:
        load_gpt2_state_dict(GPT(GPTConfig.gpt2_style(40, 10, 2, 4, 24)), sd)
    msg = str(err.value)
    assert "(5 problems)" in msg
    for text in ("missing: transformer.wpe.weight", "missing: transformer.h.0.ln_2.bias",
                 "unexpected: transformer.extra.weight", "mis-shaped: transformer.h.1.mlp.c_fc.weight (96, 24)",
                 "mis-shaped: transformer.h.0.mlp.c_proj.bias (25,)"):
        assert text in msg


def test_loaders_refuse_the_wrong_architecture():
    with pytest.raises(ValueError, match="not GPT-2-shaped: norm='rmsnorm'"):
        load_gpt2_state_dict(GPT(GPTConfig.llama_style(40, 10, 1, 4, 24, d_ff=32)), {})
    with pytest.raises(ValueError, match="not Llama-shaped: norm='layernorm'"):
        load_llama_state_dict(GPT(GPTConfig.gpt2_style(40, 10, 1, 4, 24)), {})


# ---- Llama ------------------------------------------------------------------------------------------------------
def llama_sd(vocab=40, n_layer=2, d=32, n_head=4, n_kv=2, d_ff=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    d_head = d // n_head
    sd = {"model.embed_tokens.weight": _rand(g, vocab, d, scale=1.0), "model.norm.weight": 1 + _rand(g, d),
          "lm_head.weight": _rand(g, vocab, d)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        sd |= {p + "self_attn.q_proj.weight": _rand(g, n_head * d_head, d, scale=0.5),
               p + "self_attn.k_proj.weight": _rand(g, n_kv * d_head, d, scale=0.5),
               p + "self_attn.v_proj.weight": _rand(g, n_kv * d_head, d),
               p + "self_attn.o_proj.weight": _rand(g, d, n_head * d_head),
               p + "mlp.gate_proj.weight": _rand(g, d_ff, d), p + "mlp.up_proj.weight": _rand(g, d_ff, d),
               p + "mlp.down_proj.weight": _rand(g, d, d_ff),
               p + "input_layernorm.weight": 1 + _rand(g, d), p + "post_attention_layernorm.weight": 1 + _rand(g, d)}
    return sd


def llama_forward(sd, idx, n_layer, n_head, n_kv, eps=1e-5, theta=10000.0):
    "Hugging Face's LlamaForCausalLM forward, written from its key names: rotate_half RoPE, repeat_kv, SwiGLU."
    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    b, t = idx.shape
    h = sd["model.embed_tokens.weight"][idx]
    d_head = h.shape[-1] // n_head
    inv_freq = 1.0 / (theta ** (torch.arange(0, d_head, 2).float() / d_head))
    freqs = torch.outer(torch.arange(t).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    for i in range(n_layer):
        p = f"model.layers.{i}."
        x = rms(h, sd[p + "input_layernorm.weight"])
        q = (x @ sd[p + "self_attn.q_proj.weight"].T).view(b, t, n_head, d_head).transpose(1, 2)
        k = (x @ sd[p + "self_attn.k_proj.weight"].T).view(b, t, n_kv, d_head).transpose(1, 2)
        v = (x @ sd[p + "self_attn.v_proj.weight"].T).view(b, t, n_kv, d_head).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k[:, :, None].expand(b, n_kv, n_head // n_kv, t, d_head).reshape(b, n_head, t, d_head)
        v = v[:, :, None].expand(b, n_kv, n_head // n_kv, t, d_head).reshape(b, n_head, t, d_head)
        w = q @ k.transpose(2, 3) / math.sqrt(d_head) + torch.full((t, t), float("-inf")).triu(1)
        o = (w.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
        h = h + o @ sd[p + "self_attn.o_proj.weight"].T
        x = rms(h, sd[p + "post_attention_layernorm.weight"])
        gate, up = x @ sd[p + "mlp.gate_proj.weight"].T, x @ sd[p + "mlp.up_proj.weight"].T
        h = h + (F.silu(gate) * up) @ sd[p + "mlp.down_proj.weight"].T
    return rms(h, sd["model.norm.weight"]) @ sd["lm_head.weight"].T


LLAMA = GPTConfig.llama_style(40, 12, 2, 4, 32, n_kv_head=2, d_ff=48)


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_llama_logits_match_reference_in_both_rope_layouts(layout):
    sd = llama_sd()
    cfg = GPTConfig(**{**LLAMA.__dict__, "rope_layout": layout})
    model = load_llama_state_dict(GPT(cfg), sd)
    idx = torch.randint(0, 40, (2, 12), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(idx), llama_forward(sd, idx, 2, 4, 2), atol=1e-4, rtol=1e-4)


def test_rope_layout_mixup_changes_logits():
    sd = llama_sd()
    half = load_llama_state_dict(GPT(LLAMA), sd)
    model = GPT(GPTConfig(**{**LLAMA.__dict__, "rope_layout": "interleaved"}))
    model.load_state_dict(half.state_dict())  # the same weights, q/k not un-permuted: rotary pairs mixed up
    idx = torch.randint(0, 40, (2, 12), generator=torch.Generator().manual_seed(1))
    assert (model(idx) - llama_forward(sd, idx, 2, 4, 2)).abs().max() > 1e-2


def test_hf_permutation_round_trip():
    "HF's conversion permute (Meta interleaved -> half) undone by hf_to_interleaved."
    w = torch.randn(4 * 8, 5)
    hf = w.view(4, 8 // 2, 2, 5).transpose(1, 2).reshape(32, 5)  # convert_llama_weights_to_hf.permute
    torch.testing.assert_close(hf_to_interleaved(hf, 4), w)


def test_llama_loader_lists_every_offending_key():
    sd = llama_sd()
    del sd["lm_head.weight"], sd["model.layers.1.mlp.up_proj.weight"]
    sd["model.layers.0.self_attn.k_proj.weight"] = torch.zeros(32, 32)  # MHA-sized k for a GQA model
    sd["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.zeros(4)  # a saved buffer: ignored
    sd["model.layers.2.input_layernorm.weight"] = torch.zeros(32)
    with pytest.raises(StateDictError) as err:
        load_llama_state_dict(GPT(LLAMA), sd)
    msg = str(err.value)
    assert "(4 problems)" in msg
    for text in ("missing: lm_head.weight", "missing: model.layers.1.mlp.up_proj.weight",
                 "unexpected: model.layers.2.input_layernorm.weight",
                 "model.layers.0.self_attn.k_proj.weight (32, 32)"):
        assert text in msg


# ---- generation -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [GPTConfig.gpt2_style(30, 8, 2, 2, 16), LLAMA], ids=["gpt2", "llama"])
def test_greedy_identical_with_and_without_cache(cfg):
    torch.manual_seed(0)
    model = GPT(cfg)
    prompt = torch.randint(0, 30, (3, 4))
    a = model.generate(prompt, 20, temperature=0, use_cache=True)
    b = model.generate(prompt, 20, temperature=0, use_cache=False)
    assert torch.equal(a, b) and a.shape == (3, 24)
    assert model.training  # generate restores the mode


def test_sampling_is_reproducible_with_a_generator_and_respects_filters():
    torch.manual_seed(0)
    model = GPT(GPTConfig.gpt2_style(30, 8, 1, 2, 16))
    prompt = torch.zeros(2, 1, dtype=torch.long)
    run = lambda seed, **kw: model.generate(prompt, 10, generator=torch.Generator().manual_seed(seed), **kw)
    assert torch.equal(run(0, top_p=0.9, temperature=0.8), run(0, top_p=0.9, temperature=0.8))
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0]])
    g = torch.Generator().manual_seed(0)
    seen = {sample_next(logits, 1.0, top_k=3, generator=g).item() for _ in range(200)}
    assert seen == {0, 1, 2}


# ---- bad input --------------------------------------------------------------------------------------------------
def test_bad_input_errors_name_the_problem():
    model = GPT(GPTConfig.gpt2_style(30, 8, 1, 2, 16))
    with pytest.raises(ShapeError, match="idx: expected 2 dimensions 'batch seq', got 1 dimensions"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="sequence of 9 tokens is longer than block_size=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"must be in \[0, vocab_size=30\); got 2 outside it, e.g. \[-1, 30\]"):
        model(torch.tensor([[1, -1, 30]]))
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 2, temperature=-1)
    cache = model.new_cache(1)
    model(torch.zeros(1, 6, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="sequence of 3 tokens after 6 cached is longer than block_size=8"):
        model(torch.zeros(1, 3, dtype=torch.long), cache=cache)


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_head=3), "n_head=3 does not divide d_model=16"),
    (dict(n_kv_head=3, n_head=4), "n_kv_head=3 does not divide n_head=4"),
    (dict(mlp="relu"), "mlp='relu' is not one of"),
    (dict(pos="alibi"), "pos='alibi' is not one of"),
    (dict(attn_impl="flash"), "attn_impl='flash' is not one of"),
    (dict(rope_layout="pairs", pos="rope"), "rope_layout='pairs' is not one of"),
    (dict(dropout=1.0), "dropout must be in"),
    (dict(d_model=0), "d_model must be a positive int"),
])
def test_config_validation_names_field_and_value(kwargs, message):
    base = dict(vocab_size=30, block_size=8, n_layer=1, n_head=2, d_model=16)
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**base, **kwargs})


def test_config_is_frozen():
    cfg = GPTConfig(30, 8, 1, 2, 16)
    with pytest.raises(AttributeError):
        cfg.n_layer = 2
