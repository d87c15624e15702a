"""GPT-2 124M on one GPU: training-step MFU at context 1024, and decode tokens/s with and without the KV cache.

Training: the lab's GPT in GPT-2's shape (12 layers, 12 heads, width 768, context 1024; the vocabulary padded to
50,304, a multiple of 128, as nanoGPT does), fused AdamW, bfloat16 autocast, fused attention
(`F.scaled_dot_product_attention`, flash attention on the GPU), `torch.compile`, TF32 for what stays in float32.
Each step is timed with `mlre_lab.perf.time_fn` (synchronised, after warm-up steps that include compilation); MFU
is `gpt_flops` (model FLOPs: 6 per parameter and token plus attention) per second over the GPU's dense bf16 peak
from `mlre_lab.perf.PEAK_TFLOPS`. Target on an H100/H200: 45% or more.

Decoding: tokens per second of `GPT.generate` (greedy) at batch 1 and 32 from a 64-token prompt, with the KV cache
and without it (every step re-reads the whole sequence).

    python benchmarks/gpu_mfu.py                       # on a GPU: the full measurement
    python benchmarks/gpu_mfu.py --batch 8 --no-compile
    python benchmarks/gpu_mfu.py --tiny --device cpu   # a few seconds on a CPU: checks that the script works
"""
import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlre_lab.nn.transformer import GPT, GPTConfig  # noqa: E402
from mlre_lab.perf import gpt_flops, peak_flops, time_fn  # noqa: E402
from mlre_lab.train.loop import autocast, lm_loss  # noqa: E402


def model_config(tiny: bool, seq: int) -> GPTConfig:
    if tiny:
        return GPTConfig.gpt2_style(256, seq, 2, 2, 64)
    return GPTConfig.gpt2(vocab_size=50304, block_size=seq)


def train_mfu(config: GPTConfig, batch: int, device: torch.device, dtype: str, compile: bool, warmup: int,
              repeats: int) -> dict:
    "Median time of one optimizer step on random tokens, its tokens/s, model TFLOP/s and MFU."
    torch.manual_seed(0)
    model = GPT(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    step_model = torch.compile(model) if compile else model
    x = torch.randint(0, config.vocab_size, (batch, config.block_size), device=device)
    y = torch.randint(0, config.vocab_size, (batch, config.block_size), device=device)

    def step():
        with autocast(device, dtype):
            loss = lm_loss(step_model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    timing = time_fn(step, device=device, warmup=warmup, repeats=repeats)
    flops = gpt_flops(config, batch, config.block_size)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_flops(name, dtype) if device.type == "cuda" else None
    return {"ms_per_step": timing.median * 1e3, "ms_iqr": [t * 1e3 for t in timing.iqr],
            "tokens_per_s": batch * config.block_size / timing.median, "model_tflops": flops / timing.median / 1e12,
            "mfu": flops / timing.median / peak if peak else None,
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def decode_speed(config: GPTConfig, device: torch.device, dtype: str, batch: int, prompt: int, new_tokens: int,
                 use_cache: bool, repeats: int) -> float:
    "Generated tokens per second (all sequences together), greedy, from random prompts of `prompt` tokens."
    torch.manual_seed(0)
    model = GPT(config).to(device).eval()
    if dtype != "float32":
        model.to(getattr(torch, dtype))
    idx = torch.randint(0, config.vocab_size, (batch, prompt), device=device)
    timing = time_fn(model.generate, idx, new_tokens, temperature=0.0, use_cache=use_cache, device=device,
                     warmup=1, repeats=repeats)
    return batch * new_tokens / timing.median


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16, help="sequences per training step (default 16)")
    parser.add_argument("--seq", type=int, default=1024, help="context length (default 1024)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps (compilation happens here)")
    parser.add_argument("--repeats", type=int, default=20, help="timed training steps")
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens generated per decode measurement")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer width-64 model: checks the script on a CPU")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    config = model_config(args.tiny, args.seq)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "dtype": args.dtype, "compile": args.compile, "batch": args.batch,
              "seq": args.seq, "params": GPT(config).num_params(),
              "train": train_mfu(config, args.batch, device, args.dtype, args.compile, args.warmup, args.repeats)}
    prompt = min(64, args.seq // 2)
    new_tokens = min(args.new_tokens, args.seq - prompt)
    report["decode_tokens_per_s"] = {
        f"batch {b}, {'with' if cache else 'without'} cache": decode_speed(
            config, device, args.dtype, b, prompt, new_tokens, cache, repeats=3)
        for b in (1, 32) for cache in (True, False)}
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
