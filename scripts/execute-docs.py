"""Execute the lesson notebooks in a scratch copy of the project, so the docs site shows their outputs and figures.

    python scripts/execute-docs.py DEST [--source ROOT] [--kernel NAME] [--timeout SECONDS] [--workers N]

Copies what nbdev renders from (pyproject.toml, nbs/, mlre_lab/) from ROOT (default: this repository) into DEST,
replacing DEST, then runs every notebook of DEST/nbs in a fresh kernel from its own folder, the way JupyterLab would,
and saves the outputs into the copy. The committed notebooks stay without outputs. Markdown cells lose their
leading `#|` directive lines (`#| export` marks a module's overview for its docstring and llms.txt), which
nbdev's processing leaves in place and Quarto would print. A notebook that fails to execute
is reported with the cell that failed, and the script exits 1 after trying every notebook. Then
`cd DEST && nbdev-docs` renders the site with those outputs (`make docs` does both).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

PROJECT_FILES = ("pyproject.toml", "nbs", "mlre_lab")
SCRATCH = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "_proc", "_docs")


def copy_project(source: Path, dest: Path) -> Path:
    "Replace `dest` with a copy of the files nbdev renders from; return the copy's notebook folder."
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, ignore=SCRATCH)
        elif (source / name).exists():
            shutil.copy(source / name, dest / name)
    return dest / "nbs"


def strip_markdown_directives(nb) -> None:
    "Drop the `#|` lines that open a markdown cell: they are directions to nbdev, not text for the page."
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("#|"):
            lines = cell.source.splitlines()
            cell.source = "\n".join(lines[next((i for i, line in enumerate(lines) if not line.startswith("#|")),
                                                len(lines)):])


def failure(nb, error: Exception, timeout: int) -> str:
    "Name the first cell whose outputs hold an error (the one that stopped the run) and say why it failed."
    for index, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if cell.cell_type == "code" and errors:
            first_line = (cell.source.strip().splitlines() or [""])[0]
            return f"cell {index} (`{first_line}`) failed: {errors[0]['ename']}: {errors[0]['evalue']}"
    if isinstance(error, CellTimeoutError):
        return f"a cell ran longer than {timeout} s"
    return f"failed: {str(error).strip().splitlines()[-1]}"


def execute(path: Path, kernel: str, timeout: int) -> str | None:
    "Run one notebook in place from its folder; None when it ran through, else one line naming the failed cell."
    nb = nbformat.read(path, as_version=4)
    strip_markdown_directives(nb)
    client = NotebookClient(nb, kernel_name=kernel, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as error:
        return f"{path.name}: {failure(nb, error, timeout)}"
    finally:
        nbformat.write(nb, path)
        print(f"executed {path.name} in {time.perf_counter() - start:.0f} s", flush=True)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="scratch folder for the executed copy (replaced)")
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1],
                        help="project to copy (default: this repository)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel to run the notebooks with")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may run")
    parser.add_argument("--workers", type=int, default=2, help="notebooks executed at once")
    args = parser.parse_args(argv)
    if not (args.source / "nbs").is_dir():
        parser.error(f"{args.source} has no nbs/ folder to execute")
    nbs = copy_project(args.source.resolve(), args.dest.resolve())
    run = partial(execute, kernel=args.kernel, timeout=args.timeout)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        failures = [f for f in pool.map(run, sorted(nbs.glob("*.ipynb"))) if f]
    for failure in failures:
        print(f"nbs/{failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
