"Attention against torch's own implementations, masks, grouped-query attention and the KV cache."
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mlre_lab.nn.attention import (
    KVCache,
    MultiHeadAttention,
    attention_weights,
    causal_mask,
    padding_mask,
    repeat_kv,
    scaled_dot_product_attention,
)
from mlre_lab.shapes import ShapeError

# bfloat16 keeps 8 mantissa bits: a few ulps of 2**-8 on outputs of size ~1
TOL = {torch.float64: dict(atol=1e-10, rtol=1e-10), torch.float32: dict(atol=1e-5, rtol=1e-5),
       torch.bfloat16: dict(atol=3e-2, rtol=3e-2)}


def _copy(mha: nn.MultiheadAttention, ours: MultiHeadAttention) -> MultiHeadAttention:
    with torch.no_grad():
        ours.c_attn.weight.copy_(mha.in_proj_weight)
        ours.c_attn.bias.copy_(mha.in_proj_bias)
        ours.c_proj.weight.copy_(mha.out_proj.weight)
        ours.c_proj.bias.copy_(mha.out_proj.bias)
    return ours


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("impl", ["sdpa", "manual"])
def test_equals_torch_multihead_attention(dtype, impl):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(24, 3, batch_first=True).to(dtype)
    ours = _copy(mha, MultiHeadAttention(24, 3, impl=impl).to(dtype))
    x = torch.randn(2, 6, 24, dtype=dtype)
    lengths = torch.tensor([6, 4])
    key_padding = torch.arange(6)[None, :] >= lengths[:, None]  # torch: True = ignore
    expected = mha(x, x, x, key_padding_mask=key_padding, attn_mask=~causal_mask(6), need_weights=False)[0]
    torch.testing.assert_close(ours(x, mask=padding_mask(lengths, 6)), expected, **TOL[dtype])
    expected = mha(x, x, x, need_weights=False)[0]
    torch.testing.assert_close(ours(x, is_causal=False), expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_written_out_equals_torch_sdpa_with_scale_and_rectangular_causal(dtype):
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 2, 3, 8, dtype=dtype), torch.randn(2, 2, 7, 8, dtype=dtype), torch.randn(2, 2, 7, 5,
                                                                                                     dtype=dtype)
    mask = causal_mask(3, 7)  # the last 3 of 7 positions
    ours = scaled_dot_product_attention(q, k, v, mask=mask, scale=0.3)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3), **TOL[dtype])
    ours = scaled_dot_product_attention(q, k[:, :, :3], v[:, :, :3], is_causal=True)
    theirs = F.scaled_dot_product_attention(q, k[:, :, :3], v[:, :, :3], is_causal=True)
    torch.testing.assert_close(ours, theirs, **TOL[dtype])


def test_fully_masked_rows_are_zero_with_finite_gradients():
    q, k, v = (torch.randn(2, 1, 4, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = padding_mask(torch.tensor([0, 2]), 4)  # the first sequence has no real tokens at all
    for impl in ("ours", "weights"):
        out = scaled_dot_product_attention(q, k, v, mask=mask) if impl == "ours" else attention_weights(q, k, mask)
        assert torch.isfinite(out).all() and (out[0] == 0).all()
        grads = torch.autograd.grad(out.sum(), (q, k, v), allow_unused=True)
        assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert torch.autograd.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=mask), (q, k, v))


def test_gqa_shares_each_kv_head_with_consecutive_query_heads():
    torch.manual_seed(2)
    q, k, v = torch.randn(1, 6, 5, 4), torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    out = scaled_dot_product_attention(q, repeat_kv(k, 3), repeat_kv(v, 3), is_causal=True)
    for h in range(6):
        expected = scaled_dot_product_attention(q[:, h], k[:, h // 3], v[:, h // 3], is_causal=True)
        torch.testing.assert_close(out[:, h], expected)


@pytest.mark.parametrize("n_kv_head", [1, 2, 4])
def test_kv_cache_matches_full_forward_for_mha_gqa_mqa(n_kv_head):
    torch.manual_seed(3)
    layer = MultiHeadAttention(32, 4, n_kv_head=n_kv_head).eval()
    x = torch.randn(3, 9, 32)
    cache = KVCache(1, 3, n_kv_head, 9, 8)
    out = []
    for a, b in [(0, 1), (1, 5), (5, 6), (6, 9)]:
        out.append(layer(x[:, a:b], cache=cache))
        cache.advance(b - a)
    torch.testing.assert_close(torch.cat(out, 1), layer(x))


def test_dropout_only_in_training():
    torch.manual_seed(4)
    layer = MultiHeadAttention(16, 2, dropout=0.5)
    x = torch.randn(2, 5, 16)
    assert not torch.allclose(layer(x), layer(x))
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


def test_bad_configuration_and_shapes():
    with pytest.raises(ValueError, match="n_head=5 does not divide d_model=32"):
        MultiHeadAttention(32, 5)
    with pytest.raises(ValueError, match="n_kv_head=3 does not divide n_head=4"):
        MultiHeadAttention(32, 4, n_kv_head=3)
    with pytest.raises(ValueError, match="attn_impl='flash' is not one of"):
        MultiHeadAttention(32, 4, impl="flash")
    with pytest.raises(ShapeError, match="v: dimension 'seq_k'"):
        scaled_dot_product_attention(torch.randn(1, 3, 4), torch.randn(1, 5, 4), torch.randn(1, 6, 4))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 2, 4, 8]), st.integers(0, 2**16))
def test_property_keys_and_values_permuted_together_change_nothing(batch, seq_q, seq_k, d_head, seed):
    "Without a mask, attention is a set operation over the keys: permuting keys and values together is invisible."
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, 2, s, d_head, generator=g, dtype=torch.float64) for s in (seq_q, seq_k, seq_k))
    perm = torch.randperm(seq_k, generator=g)
    out = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(scaled_dot_product_attention(q, k[:, :, perm], v[:, :, perm]), out)
    weights = attention_weights(q, k)
    torch.testing.assert_close(weights.sum(-1), torch.ones(batch, 2, seq_q, dtype=torch.float64))
