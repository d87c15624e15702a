"""The docs build's execution step (scripts/execute-docs.py), on a copy of two pages and one broken notebook: the
pages come out of nbdev's processing with the outputs and figures Quarto renders, and the broken notebook fails the
step, named with its cell."""
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from .conftest import BIN, ROOT, run

PAGES = ("index.ipynb", "04_attention.ipynb")
BROKEN = "zz_broken.ipynb"


def outputs(path: Path) -> list[dict]:
    nb = nbformat.read(path, as_version=4)
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, object]:
    "Execute a small project (two pages and a broken notebook) and process it as nbdev-docs does."
    source, dest = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("site") / "executed"
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "mlre_lab", source / "mlre_lab", ignore=shutil.ignore_patterns("__pycache__"))
    (source / "nbs").mkdir()
    for name in (*PAGES, "_quarto.yml", "sidebar.yml"):
        shutil.copy(ROOT / "nbs" / name, source / "nbs")
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Broken\n> Fails on purpose"),
                                             nbformat.v4.new_code_cell("1 / 0"), nbformat.v4.new_code_cell("2")])
    nbformat.write(broken, source / "nbs" / BROKEN)
    # python3: the interpreter running the tests (the per-user `mlre-lab` kernel may belong to another checkout).
    # IN_TEST, as nbdev-test sets it: lessons that train (04) run their smoke scale, not the published one.
    executed = run([sys.executable, str(ROOT / "scripts" / "execute-docs.py"), str(dest), "--source", str(source),
                    "--kernel", "python3", "--timeout", "300"], env={"IN_TEST": "1"}, timeout=600)
    # nbdev-proc-nbs looks for quarto before it starts, although processing never calls it: a stand-in that fails.
    fake = dest / "fakebin"
    fake.mkdir()
    (fake / "quarto").write_text("#!/bin/sh\necho 'quarto stand-in called' >&2\nexit 97\n")
    (fake / "quarto").chmod(0o755)
    processed = run([str(BIN / "nbdev-proc-nbs"), "--n-workers", "2"], cwd=dest,
                    env={"PATH": f"{fake}:{os.environ['PATH']}"}, timeout=600)
    assert processed.returncode == 0, processed.stdout[-3000:] + processed.stderr[-3000:]
    return dest, executed


def test_a_failing_notebook_fails_the_step_naming_its_cell(site):
    _, executed = site
    assert executed.returncode == 1, executed.stdout + executed.stderr
    assert f"nbs/{BROKEN}: cell 1 (`1 / 0`) failed: ZeroDivisionError" in executed.stderr, executed.stderr


def test_the_other_notebooks_still_run(site):
    _, executed = site
    for name in PAGES:
        assert f"executed {name}" in executed.stdout, executed.stdout + executed.stderr


def test_directives_do_not_show_on_pages(site):
    dest, _ = site
    shown = [f"{p.name} cell {i}" for p in (dest / "_proc").glob("*.ipynb")
             for i, c in enumerate(nbformat.read(p, as_version=4).cells)
             if c.cell_type == "markdown" and c.source.lstrip().startswith("#|")]
    assert not shown, f"markdown cells that would print a `#|` directive: {shown}"


def test_the_index_shows_the_roadmap_table(site):
    dest, _ = site
    tables = [o for o in outputs(dest / "_proc" / "index.ipynb")
              if "| days | phase | lesson" in o.get("data", {}).get("text/markdown", "")]
    assert tables, "the processed index has no roadmap table among its outputs"


def test_the_attention_page_shows_its_heatmap(site):
    dest, _ = site
    images = [o for o in outputs(dest / "_proc" / "04_attention.ipynb") if "image/png" in o.get("data", {})]
    assert images, "the processed attention page has no figure"

