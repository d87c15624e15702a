"""Time byte-level BPE training: vocabulary 500 on the first 130,000 characters of the Python documentation that ships
with the standard library (pydoc_data). Target: at most 1.5 s on 2 CPU cores.

Run: .venv/bin/python benchmarks/bpe_training.py [--repeats 5] [--vocab-size 500] [--chars 130000]
"""
import argparse
import os
import statistics
import time

from mlre_lab.text.tokenizer import BPETokenizer, python_docs_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vocab-size", type=int, default=500)
    parser.add_argument("--chars", type=int, default=130_000)
    args = parser.parse_args()
    text = python_docs_text(args.chars)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        tok = BPETokenizer.train(text, args.vocab_size, special_tokens=["<|endoftext|>"])
        times.append(time.perf_counter() - start)
    n_bytes = len(text.encode("utf-8"))
    ratio = n_bytes / len(tok.encode(text))
    print(f"BPE training, vocab {args.vocab_size} ({len(tok.merges)} merges) on {n_bytes:,} bytes of pydoc_data text, "
          f"{os.cpu_count()} CPU(s): median {statistics.median(times):.3f} s, best {min(times):.3f} s "
          f"over {args.repeats} runs; compression {ratio:.2f} bytes/token")


if __name__ == "__main__":
    main()
