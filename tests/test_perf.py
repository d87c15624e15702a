"mlre_lab.perf: the FLOP formula against torch's FlopCounterMode, and the GPU benchmark at a tiny scale on a CPU."
import json
import runpy

import pytest
import torch

from mlre_lab.nn.transformer import GPT, GPTConfig
from mlre_lab.perf import count_flops, gpt_flops
from mlre_lab.train.loop import lm_loss

from .conftest import ROOT

SHAPES = [dict(), dict(n_kv_head=1, mlp="swiglu", norm="rmsnorm", pos="rope", bias=False, tie_embeddings=False),
          dict(d_ff=40, mlp="gelu_tanh", n_layer=3)]


@pytest.mark.parametrize("options", SHAPES)
@pytest.mark.parametrize("attn_impl", ["manual", "sdpa"])
def test_gpt_flops_equal_the_flop_counter(options, attn_impl):
    config = GPTConfig(**{"vocab_size": 37, "block_size": 24, "n_layer": 2, "n_head": 4, "d_model": 32,
                          "attn_impl": attn_impl, **options})
    model = GPT(config)
    idx = torch.randint(0, 37, (2, 24))
    assert count_flops(model, idx) == gpt_flops(config, 2, 24, backward=False)
    counted = count_flops(lambda: lm_loss(model(idx), idx).backward())
    # the fused backward recomputes the scores: one more seq² product per layer than the model needs
    recompute = 2 * 2 * 24 * 24 * config.d_model * config.n_layer if attn_impl == "sdpa" else 0
    assert counted == gpt_flops(config, 2, 24) + recompute


def test_gpu_benchmark_runs_tiny_on_a_cpu(tmp_path, capsys):
    main = runpy.run_path(str(ROOT / "benchmarks" / "gpu_mfu.py"))["main"]
    out = tmp_path / "mfu.json"
    assert main(["--tiny", "--device", "cpu", "--dtype", "float32", "--no-compile", "--seq", "32", "--batch", "2",
                 "--warmup", "1", "--repeats", "2", "--new-tokens", "4", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["train"]["tokens_per_s"] > 0 and report["train"]["mfu"] is None  # no peak known for a CPU
    assert set(report["decode_tokens_per_s"]) == {f"batch {b}, {w} cache" for b in (1, 32) for w in ("with", "without")}
    assert all(v > 0 for v in report["decode_tokens_per_s"].values())
