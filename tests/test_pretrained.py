"""`GPT.from_pretrained` on Hugging Face folders written here (config.json + safetensors, random weights): the logits
equal a forward pass written independently from Hugging Face's key names, with rotary scaling and sliding windows
computed the way Hugging Face computes them; every unsupported config field is refused by name."""
import json
import math

import pytest
import torch
from safetensors.torch import save_file

from mlre_lab.nn.pretrained import UnsupportedCheckpoint, config_from_hf, load_pretrained
from mlre_lab.nn.transformer import GPT

TOL = dict(atol=2e-4, rtol=1e-4)


def write_folder(folder, config: dict, sd: dict, shards: int = 1):
    "A Hub-style model folder: config.json and model.safetensors, or `shards` files and their index."
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    sd = {k: v.contiguous() for k, v in sd.items()}
    if shards == 1:
        save_file(sd, folder / "model.safetensors")
        return folder
    keys, weight_map = sorted(sd), {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = keys[s::shards]
        save_file({k: sd[k] for k in part}, folder / name)
        weight_map |= {k: name for k in part}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder


def rand(g, *shape, scale=0.3):
    return torch.randn(*shape, generator=g) * scale


# ------------------------------------------------------------------ Llama family, written from HF's key names
def llama_config(model_type="llama", **changes):
    base = {"model_type": model_type, "vocab_size": 48, "hidden_size": 32, "intermediate_size": 40,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
            "tie_word_embeddings": False}
    return base | changes


def llama_sd(cfg: dict, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    d, n_head, n_kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, ff = cfg.get("head_dim") or d // n_head, cfg["intermediate_size"]
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    sd = {"model.embed_tokens.weight": rand(g, cfg["vocab_size"], d, scale=1.0), "model.norm.weight": 1 + rand(g, d)}
    if not cfg["tie_word_embeddings"]:
        sd["lm_head.weight"] = rand(g, cfg["vocab_size"], d)
    for i in range(cfg["num_hidden_layers"]):
        a, m = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
        sd |= {f"model.layers.{i}.input_layernorm.weight": 1 + rand(g, d),
               f"model.layers.{i}.post_attention_layernorm.weight": 1 + rand(g, d),
               a + "q_proj.weight": rand(g, n_head * hd, d), a + "k_proj.weight": rand(g, n_kv * hd, d),
               a + "v_proj.weight": rand(g, n_kv * hd, d), a + "o_proj.weight": rand(g, d, n_head * hd),
               m + "gate_proj.weight": rand(g, ff, d), m + "up_proj.weight": rand(g, ff, d),
               m + "down_proj.weight": rand(g, d, ff)}
        if qkv_bias:
            sd |= {a + "q_proj.bias": rand(g, n_head * hd), a + "k_proj.bias": rand(g, n_kv * hd),
                   a + "v_proj.bias": rand(g, n_kv * hd)}
        if cfg.get("attention_bias", False):
            sd[a + "o_proj.bias"] = rand(g, d)
        if cfg.get("mlp_bias", False):
            sd |= {m + "gate_proj.bias": rand(g, ff), m + "up_proj.bias": rand(g, ff), m + "down_proj.bias": rand(g, d)}
    return sd


def hf_inv_freq(cfg: dict, head_dim: int) -> torch.Tensor:
    "Rotary frequencies as transformers' modeling_rope_utils computes them (default, linear, llama3)."
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    scaling = cfg.get("rope_scaling") or {"rope_type": "default"}
    kind = scaling.get("rope_type", scaling.get("type"))  # "type" is the older spelling
    if kind == "linear":
        inv_freq = inv_freq / scaling["factor"]
    elif kind == "llama3":
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_context = scaling["original_max_position_embeddings"]
        low_freq_wavelen, high_freq_wavelen = old_context / low, old_context / high
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context / wavelen - low) / (high - low)
        smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        inv_freq = torch.where(is_medium, smoothed, inv_freq_llama)
    return inv_freq


def llama_forward(cfg: dict, sd: dict, idx: torch.Tensor) -> torch.Tensor:
    "A Llama/Mistral/Qwen2 forward pass in float64 from the HF state dict: rotate_half RoPE, GQA, windowed mask."
    sd = {k: v.double() for k, v in sd.items()}
    n_head, n_kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    hd, eps, seq = cfg.get("head_dim") or d // n_head, cfg["rms_norm_eps"], idx.size(1)
    linear = lambda x, name: x @ sd[name + ".weight"].T + sd.get(name + ".bias", 0)
    rms = lambda x, w: x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
    angles = torch.outer(torch.arange(seq, dtype=torch.float64), hf_inv_freq(cfg, hd))
    emb = torch.cat([angles, angles], dim=-1)  # (seq, hd), as HF's LlamaRotaryEmbedding
    cos, sin = emb.cos(), emb.sin()
    rotate_half = lambda x: torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], dim=-1)
    q_pos, k_pos = torch.arange(seq)[:, None], torch.arange(seq)[None, :]
    allowed = k_pos <= q_pos
    if cfg.get("sliding_window"):
        allowed &= k_pos > q_pos - cfg["sliding_window"]  # transformers' sliding_window_overlay
    x = sd["model.embed_tokens.weight"][idx]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, sd[p + "input_layernorm.weight"])
        q = linear(h, p + "self_attn.q_proj").view(*idx.shape, n_head, hd).transpose(1, 2)
        k = linear(h, p + "self_attn.k_proj").view(*idx.shape, n_kv, hd).transpose(1, 2)
        v = linear(h, p + "self_attn.v_proj").view(*idx.shape, n_kv, hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(n_head // n_kv, dim=1), v.repeat_interleave(n_head // n_kv, dim=1)
        scores = (q @ k.transpose(-1, -2)) * hd ** -0.5
        att = scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v
        x = x + linear(att.transpose(1, 2).reshape(*idx.shape, n_head * hd), p + "self_attn.o_proj")
        h = rms(x, sd[p + "post_attention_layernorm.weight"])
        gate = linear(h, p + "mlp.gate_proj")
        x = x + linear(gate * torch.sigmoid(gate) * linear(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    head = sd["lm_head.weight"] if "lm_head.weight" in sd else sd["model.embed_tokens.weight"]
    return rms(x, sd["model.norm.weight"]) @ head.T


def check_llama(tmp_path, cfg, seq=48, shards=1, differs_without=None):
    sd = llama_sd(cfg)
    folder = write_folder(tmp_path / "model", cfg, sd, shards)
    model = GPT.from_pretrained(folder)
    idx = torch.randint(0, cfg["vocab_size"], (2, seq), generator=torch.Generator().manual_seed(1))
    expected = llama_forward(cfg, sd, idx).float()
    torch.testing.assert_close(model(idx), expected, **TOL)
    if differs_without:  # the field matters: the same weights without it give other logits
        plain = {k: v for k, v in cfg.items() if k != differs_without}
        wrong = GPT.from_pretrained(write_folder(tmp_path / "without", plain, sd))
        assert (wrong(idx) - expected).abs().max() > 1e-2
    return model


def test_llama_matches_reference(tmp_path):
    check_llama(tmp_path, llama_config())


def test_llama3_rope_scaling_matches_reference(tmp_path):
    scaling = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}
    model = check_llama(tmp_path, llama_config(rope_scaling=scaling, head_dim=16, hidden_size=48),
                        differs_without="rope_scaling")
    assert model.config.rope_scaling == "llama3" and model.config.rope_original_context == 16


def test_linear_rope_scaling_matches_reference(tmp_path):
    check_llama(tmp_path, llama_config(rope_scaling={"type": "linear", "factor": 3.0}), differs_without="rope_scaling")


def test_rope_parameters_spelling(tmp_path):
    "transformers 5 writes rope_theta and the scaling together as rope_parameters."
    cfg = llama_config(rope_scaling={"rope_type": "linear", "factor": 2.0}, rope_theta=500.0)
    new_style = {k: v for k, v in cfg.items() if k not in ("rope_scaling", "rope_theta")}
    new_style["rope_parameters"] = {"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0}
    assert config_from_hf(new_style) == config_from_hf(cfg)


def test_mistral_sliding_window_matches_reference(tmp_path):
    check_llama(tmp_path, llama_config("mistral", sliding_window=5), differs_without="sliding_window")


def test_qwen2_qkv_biases_tied_head_and_shards(tmp_path):
    cfg = llama_config("qwen2", tie_word_embeddings=True, use_sliding_window=False, sliding_window=4096,
                       max_window_layers=2)
    model = check_llama(tmp_path, cfg, shards=3)
    assert model.transformer.h[0].attn.c_attn.bias is not None and model.transformer.h[0].attn.c_proj.bias is None
    assert model.lm_head.weight is model.transformer.wte.weight


def test_llama_separate_biases_and_wide_heads(tmp_path):
    "attention_bias on q, k, v and o; mlp_bias; heads of 16 where hidden_size / heads is 8."
    model = check_llama(tmp_path, llama_config(attention_bias=True, mlp_bias=True, head_dim=16))
    assert model.config.d_head == 16 and model.transformer.h[0].mlp.gate_proj.bias is not None


def test_block_size_caps_the_context(tmp_path):
    cfg = llama_config()
    model = GPT.from_pretrained(write_folder(tmp_path, cfg, llama_sd(cfg)), block_size=16)
    assert model.config.block_size == 16 and model.rotary.cos.shape[0] == 16


def test_left_padded_batch_with_a_window_decodes_like_one_prompt_at_a_time(tmp_path):
    cfg = llama_config("mistral", sliding_window=4)
    model = GPT.from_pretrained(write_folder(tmp_path, cfg, llama_sd(cfg)))
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 48, (n,), generator=g) for n in (7, 3, 1)]
    idx = torch.stack([torch.cat([torch.zeros(7 - len(p), dtype=torch.long), p]) for p in prompts])
    mask = (torch.arange(7) >= torch.tensor([7 - len(p) for p in prompts])[:, None]).long()
    batched = model.generate(idx, 12, temperature=0, attention_mask=mask)
    for row, p in enumerate(prompts):
        torch.testing.assert_close(batched[row, 7 - len(p):], model.generate(p[None], 12, temperature=0)[0])


# ------------------------------------------------------------------ GPT-2, written from its Conv1D weights
def gpt2_config(**changes):
    return {"model_type": "gpt2", "vocab_size": 40, "n_positions": 24, "n_ctx": 24, "n_embd": 32, "n_layer": 3,
            "n_head": 4, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
            "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "summary_type": "cls_index"} | changes


def gpt2_sd(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    d, v = cfg["n_embd"], cfg["vocab_size"]
    sd = {"wte.weight": rand(g, v, d, scale=1.0), "wpe.weight": rand(g, cfg["n_positions"], d),
          "ln_f.weight": 1 + rand(g, d), "ln_f.bias": rand(g, d)}
    for i in range(cfg["n_layer"]):
        h = f"h.{i}."
        sd |= {h + "ln_1.weight": 1 + rand(g, d), h + "ln_1.bias": rand(g, d), h + "ln_2.weight": 1 + rand(g, d),
               h + "ln_2.bias": rand(g, d), h + "attn.c_attn.weight": rand(g, d, 3 * d),
               h + "attn.c_attn.bias": rand(g, 3 * d), h + "attn.c_proj.weight": rand(g, d, d),
               h + "attn.c_proj.bias": rand(g, d), h + "mlp.c_fc.weight": rand(g, d, 4 * d),
               h + "mlp.c_fc.bias": rand(g, 4 * d), h + "mlp.c_proj.weight": rand(g, 4 * d, d),
               h + "mlp.c_proj.bias": rand(g, d),
               h + "attn.bias": torch.ones(1, 1, cfg["n_positions"], cfg["n_positions"]).tril()}  # a saved mask
    return sd


def gpt2_forward(cfg, sd, idx):
    "GPT-2 from its Conv1D (in, out) weights, with scale_attn_by_inverse_layer_idx as modeling_gpt2 applies it."
    sd = {k: v.double() for k, v in sd.items()}
    d, n_head, seq = cfg["n_embd"], cfg["n_head"], idx.size(1)
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (d,), sd[p + ".weight"], sd[p + ".bias"], 1e-5)
    conv1d = lambda x, p: x @ sd[p + ".weight"] + sd[p + ".bias"]
    heads = lambda t: t.view(*idx.shape, n_head, d // n_head).transpose(1, 2)
    x = sd["wte.weight"][idx] + sd["wpe.weight"][:seq]
    for i in range(cfg["n_layer"]):
        h = f"h.{i}."
        q, k, v = map(heads, conv1d(ln(x, h + "ln_1"), h + "attn.c_attn").split(d, dim=-1))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // n_head)
        if cfg.get("scale_attn_by_inverse_layer_idx"):
            scores = scores / float(i + 1)
        causal = torch.ones(seq, seq, dtype=torch.bool).tril()
        att = (scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v).transpose(1, 2).reshape(*idx.shape, d)
        x = x + conv1d(att, h + "attn.c_proj")
        m = conv1d(ln(x, h + "ln_2"), h + "mlp.c_fc")
        x = x + conv1d(torch.nn.functional.gelu(m, approximate="tanh"), h + "mlp.c_proj")
    return ln(x, "ln_f") @ sd["wte.weight"].T


@pytest.mark.parametrize("by_layer", [False, True])
def test_gpt2_matches_reference(tmp_path, by_layer):
    cfg = gpt2_config(scale_attn_by_inverse_layer_idx=by_layer)
    sd = gpt2_sd(cfg)
    model = load_pretrained(write_folder(tmp_path / "m", cfg, sd))
    idx = torch.randint(0, 40, (2, 24), generator=torch.Generator().manual_seed(2))
    expected = gpt2_forward(cfg, sd, idx).float()
    torch.testing.assert_close(model(idx), expected, **TOL)
    other = gpt2_forward(gpt2_config(scale_attn_by_inverse_layer_idx=not by_layer), sd, idx).float()
    assert (other - expected).abs().max() > 1e-2  # the option changes the logits, so the test can fail


def test_gpt2_block_size_is_fixed_by_learned_positions(tmp_path):
    cfg = gpt2_config()
    with pytest.raises(ValueError, match="n_positions=24"):
        load_pretrained(write_folder(tmp_path, cfg, gpt2_sd(cfg)), block_size=16)


# ------------------------------------------------------------------ refusals
REFUSED = [
    (llama_config(rope_scaling={"rope_type": "yarn", "factor": 4.0}), "rope_scaling.rope_type"),
    (llama_config(rope_scaling={"rope_type": "dynamic", "factor": 2.0}), "rope_scaling.rope_type"),
    (llama_config(rope_scaling={"rope_type": "linear", "factor": 2.0, "beta_fast": 32}), "rope_scaling.beta_fast"),
    (llama_config(hidden_act="gelu"), "hidden_act"),
    (llama_config(partial_rotary_factor=0.5), "partial_rotary_factor"),
    (llama_config("qwen2", use_sliding_window=True, sliding_window=8), "use_sliding_window"),
    (llama_config("mistral", layer_types=["full_attention", "sliding_attention"], sliding_window=8), "layer_types"),
    (llama_config(model_type="bert"), "model_type"),
    (gpt2_config(activation_function="relu"), "activation_function"),
    (gpt2_config(scale_attn_weights=False), "scale_attn_weights"),
    (gpt2_config(add_cross_attention=True), "add_cross_attention"),
    (gpt2_config(n_ctx=12), "n_ctx"),
    (gpt2_config(tie_word_embeddings=False), "tie_word_embeddings"),
]


@pytest.mark.parametrize("cfg,field", REFUSED, ids=[f for _, f in REFUSED])
def test_unsupported_fields_are_refused_by_name(cfg, field):
    with pytest.raises(UnsupportedCheckpoint, match=f"field '{field}'"):
        config_from_hf(cfg)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(llama_config()))
    with pytest.raises(FileNotFoundError, match="holds no model.safetensors"):
        load_pretrained(tmp_path)


def test_a_hub_name_offline_fails_with_one_sentence(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="could not fetch 'no-such-user/no-such-model' from the Hugging Face Hub"):
        load_pretrained("no-such-user/no-such-model")
