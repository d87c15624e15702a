"""The full grid of lesson 09's grokking reproduction: a baseline and four ablation cells × three seeds.

Runs `mlre_lab.repro.grokking_run` through `mlre_lab.sweep.run_sweep` (the engine of `mlre sweep`) on a local process
pool, prints the table (steps to fit and to generalise, mean and 95% t interval over seeds), the leakage finding
(validation accuracy on pairs whose mirror was trained on vs clean ones) and the wall time, and saves every record
to nbs/data/grokking_grid.json, which the lesson renders. Resumable: rerun with the same --out to finish a killed
grid.

    .venv/bin/python benchmarks/grokking_grid.py                      # 2 workers, runs/grokking_grid
    .venv/bin/python benchmarks/grokking_grid.py --workers 1 --seeds 5
"""
import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlre_lab.repro import GROKKING_ABLATIONS, mirrored_lead, save_grid  # noqa: E402
from mlre_lab.sweep import ablation_cells, markdown_table, run_sweep  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "runs" / "grokking_grid"), help="sweep directory")
    parser.add_argument("--workers", type=int, default=2, help="local processes (default 2: one per core)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    parser.add_argument("--save", default=str(ROOT / "nbs" / "data" / "grokking_grid.json"),
                        help="where the lesson reads the records from")
    args = parser.parse_args()
    start = time.perf_counter()
    records = run_sweep("mlre_lab.repro:grokking_run", ablation_cells(GROKKING_ABLATIONS), list(range(args.seeds)),
                        args.out, workers=args.workers)
    wall = time.perf_counter() - start
    print(markdown_table(records, ["steps_to_fit", "steps_to_generalise", "final_val_acc"]))
    cpu = sum(r.result["cpu_s"] for r in records)
    print(f"\n{len(records)} runs; this invocation's wall time {wall:.0f} s with {args.workers} workers; the runs "
          f"used {cpu:.0f} CPU seconds in all, {cpu / 2 / 60:.1f} minutes on two otherwise idle cores")
    for cell in dict.fromkeys(r.cell for r in records):
        leads = [mirrored_lead(r) for r in records if r.cell == cell]
        if not all(math.isnan(x) for x in leads):
            print(f"{cell}: largest lead of mirrored over clean validation accuracy per seed: "
                  f"{[round(x, 3) for x in leads]}")
    Path(args.save).parent.mkdir(parents=True, exist_ok=True)
    save_grid(records, args.save)
    print(f"saved {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
