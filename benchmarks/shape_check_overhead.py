"""What a shape check costs per call: `check_shapes` as a call and as a decorator, against the bare function.

Run: .venv/bin/python benchmarks/shape_check_overhead.py
"""
import timeit

import torch

from mlre_lab.nn.transformer import GPT, GPTConfig
from mlre_lab.shapes import check_shapes


def per_call_us(stmt, number=20000, repeat=7):
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e6


def main():
    torch.set_num_threads(1)
    q, k = torch.randn(2, 4, 16, 32), torch.randn(2, 4, 16, 32)
    mask = torch.ones(16, 16, dtype=torch.bool)

    def bare(q, k, mask=None):
        return q

    decorated = check_shapes(q="batch heads seq_q d_head", k="batch heads seq_k d_head", mask="seq_q seq_k",
                             returns="batch heads seq_q d_head")(bare)
    base = per_call_us(lambda: bare(q, k, mask))
    dec = per_call_us(lambda: decorated(q, k, mask))
    call1 = per_call_us(lambda: check_shapes(idx=(q, "batch heads seq d_head")))
    call2 = per_call_us(lambda: check_shapes(q=(q, "batch heads seq d_head"), mask=(mask, "seq seq")))
    print(f"decorator, 3 arguments + result: {dec - base:.2f} µs per call (bare function {base:.2f} µs)")
    print(f"check_shapes call, 1 tensor:     {call1:.2f} µs")
    print(f"check_shapes call, 2 tensors:    {call2:.2f} µs")

    # in context: the one check in GPT.forward, against a forward pass of the benchmark model
    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, d_model=128)).eval()
    idx = torch.randint(0, 65, (12, 64))
    with torch.no_grad():
        fwd = min(timeit.repeat(lambda: model(idx), number=20, repeat=5)) / 20 * 1e6
    print(f"GPT forward (4 layers, width 128, batch 12 x 64, 1 thread): {fwd:.0f} µs; "
          f"its input check is {100 * call1 / fwd:.3f}% of it")


if __name__ == "__main__":
    main()
