"""Training throughput of the lab's pipeline: ms per iteration, tokens/s and, on a GPU, model FLOPs utilisation.

Runs `mlre_lab.train.loop.train` (the same loop as `mlre train`, evaluation included) on a config — by default
configs/shakespeare_char.toml, nanoGPT's CPU quick-start — and reports the median time per optimizer step (steps
that evaluate or checkpoint excluded), tokens per second, the wall time of the whole run and the final validation
loss. On a GPU it also reports MFU: achieved model FLOPs per second over the GPU's peak for the dtype, looked up
by the GPU's name (`mlre_lab.perf`: `gpt_flops`, `peak_flops`, `mfu`).

Reference, nanoGPT's CPU quick-start on tinyshakespeare on a 2-core machine: about 33 ms/iter, validation loss
1.886 after 2000 iterations, 149 s including evaluation.

    .venv/bin/python benchmarks/train_throughput.py --corpus /path/to/tinyshakespeare.txt
    .venv/bin/python benchmarks/train_throughput.py --corpus FILE --set train.dtype=bfloat16 --set train.num_threads=1
    python benchmarks/train_throughput.py --corpus FILE --set train.device=cuda --set train.dtype=bfloat16 \
        --set train.batch_size=64 --set model.block_size=256 --set model.n_layer=6 --set model.d_model=384
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlre_lab.perf import gpt_flops, mfu, peak_flops  # noqa: E402
from mlre_lab.train.config import load_config  # noqa: E402
from mlre_lab.train.loop import Hook, resolve_dtype, train  # noqa: E402


class Timer(Hook):
    def __init__(self):
        self.records = []

    def on_metrics(self, step, metrics):
        if "ms_per_step" in metrics:
            self.records.append(metrics)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "shakespeare_char.toml"))
    parser.add_argument("--corpus", required=True, help="text file to train on (e.g. tinyshakespeare.txt)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(args.config, [f"data.corpus={args.corpus}", f"data.cache_dir={tmp}/cache",
                                           "train.progress=false", *args.overrides])
        timer = Timer()
        start = time.perf_counter()
        result = train(config, Path(tmp) / "run", hooks=[timer])
        wall = time.perf_counter() - start
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    tc = config.train
    # the loop times training steps only (evaluation and checkpoints excluded); skip the first, warm-up interval
    ms_per_step = statistics.median(r["ms_per_step"] for r in timer.records[1:] or timer.records)
    tokens_per_step = tc.batch_size * tc.grad_accum * config.model.block_size
    model = result["model"]
    device = model.lm_head.weight.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    dtype = resolve_dtype(tc.dtype, device)
    report = {"device": name, "torch": torch.__version__, "dtype": dtype, "compile": tc.compile,
              "steps": result["step"], "params": model.num_params(), "ms_per_step": ms_per_step,
              "tokens_per_s": 1000 * tokens_per_step / ms_per_step, "wall_s": wall,
              "final_val_loss": [r["val_loss"] for r in rows if "val_loss" in r][-1]}
    if device.type == "cuda":
        peak = peak_flops(report["device"], dtype)
        flops = gpt_flops(model.config, tc.batch_size * tc.grad_accum, config.model.block_size)  # per step
        report["model_tflops"] = flops / (ms_per_step / 1000) / 1e12
        report["mfu"] = mfu(flops, ms_per_step / 1000, peak) if peak else None
    for k, v in report.items():
        print(f"{k:>16}: {v:.4g}" if isinstance(v, float) else f"{k:>16}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
