"""Greedy generation with and without the KV cache: tokens per second and the speed-up, for a long generation.

Run: .venv/bin/python benchmarks/kv_cache_speedup.py [--tokens 256] [--device cpu]
"""
import argparse
import time

import torch

from mlre_lab.core import default_device
from mlre_lab.nn.transformer import GPT, GPTConfig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256, help="tokens to generate after a 16-token prompt")
    parser.add_argument("--device", default=None, help="default: the lab's default device")
    parser.add_argument("--style", choices=["gpt2", "llama"], default="gpt2")
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else default_device()
    torch.manual_seed(0)
    preset = GPTConfig.gpt2_style if args.style == "gpt2" else GPTConfig.llama_style
    cfg = preset(vocab_size=1000, block_size=args.tokens + 16, n_layer=6, n_head=6, d_model=384)
    model = GPT(cfg).to(device).eval()
    prompt = torch.randint(0, 1000, (1, 16), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model.generate(prompt, 8, temperature=0, use_cache=True)  # warm-up
    model.generate(prompt, 8, temperature=0, use_cache=False)
    times, outs = {}, {}
    for use_cache in (True, False):
        sync()
        start = time.perf_counter()
        outs[use_cache] = model.generate(prompt, args.tokens, temperature=0, use_cache=use_cache)
        sync()
        times[use_cache] = time.perf_counter() - start
    assert torch.equal(outs[True], outs[False]), "greedy tokens differ with and without the cache"
    print(f"{args.style}-style, 6 layers, width 384, {args.tokens} new tokens after 16, on {device}:")
    for use_cache in (True, False):
        print(f"  {'with' if use_cache else 'without'} cache: {times[use_cache]:.2f} s "
              f"({args.tokens / times[use_cache]:.0f} tokens/s)")
    print(f"  speed-up: {times[False] / times[True]:.1f}x (identical tokens)")


if __name__ == "__main__":
    main()
