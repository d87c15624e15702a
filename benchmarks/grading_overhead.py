"""Grading overhead: the time `mlre grade` spends beyond the learner's own code, per notebook.

    .venv/bin/python benchmarks/grading_overhead.py [NOTEBOOK ...] [--repeat 3]

Without notebooks it grades every exercises/*.ipynb, a synthetic 10-task notebook that imports torch, and a
variant of it whose kernel dies once and times out once (two restarts, each replaying the setup). For each notebook
it prints the wall time of the whole grading, the time the kernel spent in the notebook's cells (the learner's code,
as nbclient's timestamps record it) and the difference, the overhead: starting kernels, messaging, reading and
scoring.
Target: at most 15 s per notebook on a 2-core machine.
"""
import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import nbformat

from mlre_lab.lab.grader import grade_notebook

ROOT = Path(__file__).resolve().parents[1]
HEADER = "## Task {n}: task {n}\n\ndifficulty: 1 · importance: 2 · minutes: 5 · points: 1"
SETUP = '''import torch

def check_close(fn, n):
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(n))
    if not torch.allclose(fn(x), x.softmax(-1), atol=1e-6):
        raise AssertionError(f"check_close: wrong on task {n}")
    print(f"PASS check_close: task {n}")'''


def synthetic(path: Path, hostile: bool = False) -> Path:
    cells = [nbformat.v4.new_code_cell(SETUP)]
    for n in range(1, 11):
        body = "def f{n}(x):\n    return x.softmax(-1)"
        if hostile and n == 4:
            body = "import os\nos._exit(1)"
        if hostile and n == 7:
            body = "while True:\n    pass"
        cells += [nbformat.v4.new_markdown_cell(HEADER.format(n=n)), nbformat.v4.new_code_cell(body.format(n=n)),
                  nbformat.v4.new_code_cell(f"check_close(f{n}, {n})")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=10, help="per-cell timeout (the hostile variant loops once)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    notebooks = args.notebooks or [*sorted((ROOT / "exercises").glob("*.ipynb")), synthetic(tmp / "synthetic.ipynb"),
                                   synthetic(tmp / "synthetic_hostile.ipynb", hostile=True)]
    print(f"{'notebook':<36} {'score':>7} {'wall s':>7} {'learner s':>9} {'overhead s':>10} {'kernels':>7}")
    worst = 0.0
    for path in notebooks:
        results = [grade_notebook(path, timeout=args.timeout) for _ in range(args.repeat)]
        if results[0].error:
            print(f"{path.name:<36} error: {results[0].error}")
            continue
        median = statistics.median(r.overhead_seconds for r in results)
        worst = max(worst, median)
        r = results[0]
        print(f"{path.name:<36} {f'{r.score}/{r.max_score}':>7} {statistics.median(x.seconds for x in results):>7.2f} "
              f"{statistics.median(x.learner_seconds for x in results):>9.2f} {median:>10.2f} {r.kernel_starts:>7}")
    print(f"worst median overhead: {worst:.2f} s per notebook (target <= 15 s)")
    return 0 if worst <= 15 else 1


if __name__ == "__main__":
    sys.exit(main())
