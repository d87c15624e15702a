"""Run exercises 07, Task 7 (train a GPT with your optimizer to a validation loss within a CPU budget) at full scale:
the reference solution from solutions/07_experiments.ipynb, graded by its check, with the wall and CPU time it took.
Target: validation loss <= 2.0 nats per character within 300 CPU seconds on the default corpus.

Run: .venv/bin/python benchmarks/train_gpt_exercise.py [--cpu-seconds 300] [--target 2.0] [--curve curve.json]
"""
import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mlre_lab.checks.experiments import TRAINING_CPU_SECONDS, TRAINING_TARGET_VAL_LOSS, check_gpt_training
from mlre_lab.text.tokenizer import CharTokenizer
from mlre_lab.train.config import DataConfig
from mlre_lab.train.data import prepare_data

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("p1-07-07b", "p1-07-07c")  # the solution's "your parts" cell and its train_gpt


def solution_namespace() -> dict:
    "The reference `train_gpt` and what it uses, executed from the solution notebook's own cells (no copy here)."
    nb = json.loads((ROOT / "solutions" / "07_experiments.ipynb").read_text())
    sources = {cell.get("id"): "".join(cell["source"]) for cell in nb["cells"]}
    namespace = {"math": math, "time": time, "torch": torch, "F": F}
    for cell_id in CELLS:
        exec(sources[cell_id], namespace)
    return namespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-seconds", type=float, default=TRAINING_CPU_SECONDS)
    parser.add_argument("--target", type=float, default=TRAINING_TARGET_VAL_LOSS)
    parser.add_argument("--cache-dir", default="", help="tokenized-data cache (default: the user cache directory)")
    parser.add_argument("--curve", type=Path, help="write the learning curve here as JSON")
    args = parser.parse_args()
    data = prepare_data(DataConfig(cache_dir=args.cache_dir), CharTokenizer.train)
    train_gpt = solution_namespace()["train_gpt"]
    kept = {}

    def train_and_keep(data, cpu_seconds):
        kept["model"], kept["curve"] = train_gpt(data, cpu_seconds)
        return kept["model"], kept["curve"]

    wall, cpu = time.perf_counter(), time.process_time()
    check_gpt_training(train_and_keep, target_val_loss=args.target, cpu_seconds=args.cpu_seconds, data=data)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"reference solution: {wall:.0f} s wall, {cpu:.0f} s CPU (training and the check's evaluation), "
          f"{len(kept['curve'])} curve points, last train loss {kept['curve'][-1][1]:.3f}; "
          f"{os.cpu_count()} CPU(s), torch {torch.__version__}")
    if args.curve:
        args.curve.write_text(json.dumps(kept["curve"]))


if __name__ == "__main__":
    main()
