"""How often do the checks whose verdict involves chance give a wrong one? Each runs many times with fresh randomness:
- the property-test check (exercises 06, Task 6): the solution's hypothesis test, with a new random seed each run,
  on each tokenizer the check uses (two healthy, five broken): a wrong verdict passes a broken one or fails a healthy
  one;
- the BPE speed check (exercises 06, Task 5): the solution's trainer must pass and a right trainer doing 6x the
  library's work must fail, at the suite's scale (30,000 characters, the smallest and so the noisiest timings).
Both solutions run from solutions/06_tokenization.ipynb's own cells. Target: no wrong verdict.

Run: .venv/bin/python benchmarks/check_reliability.py [--runs 50]
"""
import argparse
import contextlib
import io
import json
from pathlib import Path

from hypothesis import settings

from mlre_lab.checks.harness import CheckFailed
from mlre_lab.checks.tokenizer import check_fast_bpe, property_test_cases
from mlre_lab.text.tokenizer import train_bpe

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("c001", "c006", "p1-06-05b", "p1-06-06b")  # imports, merge, train_bpe_fast, assert_tokenizer_properties


def solution_namespace() -> dict:
    "The solution's functions, executed from the notebook's own cells (no copy here)."
    nb = json.loads((ROOT / "solutions" / "06_tokenization.ipynb").read_text())
    sources = {cell.get("id"): "".join(cell["source"]) for cell in nb["cells"]}
    namespace: dict = {}
    for cell_id in CELLS:
        exec(sources[cell_id], namespace)
    return namespace


def property_test_wrong_verdicts(test, runs: int) -> dict[str, int]:
    "{case: runs in which `test` misjudged that tokenizer}, each run with a fresh random seed."
    settings.register_profile("reliability", derandomize=False, database=None)
    settings.load_profile("reliability")
    wrong: dict[str, int] = {}
    for _ in range(runs):
        for what, tokenizer, broken in property_test_cases():
            try:
                test(tokenizer)
                caught = False
            except Exception:
                caught = True
            wrong[what] = wrong.get(what, 0) + (caught != broken)
    return wrong


def six_times_the_work(text: str, vocab_size: int):
    for _ in range(6):
        merges = train_bpe(text, vocab_size)[1]
    return merges


def speed_check_wrong_verdicts(trainer, runs: int) -> tuple[int, int]:
    "(runs failing the right trainer, runs passing the one doing 6x the work), at the suite's scale."
    def passes(fn) -> bool:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the PASS lines
                check_fast_bpe(fn, corpus_chars=30_000, speed_vocab=500)
            return True
        except CheckFailed:
            return False
    return sum(not passes(trainer) for _ in range(runs)), sum(passes(six_times_the_work) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    solution = solution_namespace()
    wrong = property_test_wrong_verdicts(solution["assert_tokenizer_properties"], args.runs)
    print(f"property-test check, {args.runs} random seeds per tokenizer:")
    for what, count in wrong.items():
        print(f"  {count:3d} wrong  {what}")
    failed_right, passed_slow = speed_check_wrong_verdicts(solution["train_bpe_fast"], args.runs)
    print(f"BPE speed check, {args.runs} runs each: the solution failed {failed_right}, the 6x trainer passed "
          f"{passed_slow}")


if __name__ == "__main__":
    main()
