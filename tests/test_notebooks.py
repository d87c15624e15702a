"""The notebooks are the source: the package is exactly what they export, every lesson runs, and every notebook
follows the lab's policy (committed without outputs). The policy is checked on what git records, so a lesson a learner
ran and saved in JupyterLab, outputs and all, does not fail the suite."""
import filecmp
import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from .conftest import BIN, ROOT, copy_project, run

NOTEBOOK_DIRS = ("nbs", "solutions", "exercises")
NOTEBOOKS = sorted(p for d in NOTEBOOK_DIRS for p in (ROOT / d).glob("*.ipynb"))


def test_export_leaves_the_package_unchanged(tmp_path):
    # Export into a copy, so a hand edit in mlre_lab/ is reported, never overwritten.
    copy_project(tmp_path)
    out = run([str(BIN / "nbdev-export")], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ignore = ["__pycache__"]
    diff = filecmp.dircmp(ROOT / "mlre_lab", tmp_path / "mlre_lab", ignore=ignore)
    changed = [*diff.diff_files, *diff.left_only, *diff.right_only]
    llms = "nbs/llms.txt"  # nbdev-export also writes this summary of the package
    if (ROOT / llms).read_text() != (tmp_path / llms).read_text():
        changed.append(llms)
    assert not changed, (f"nbdev-export would change mlre_lab/: {changed}. mlre_lab/ is generated: move the edit into "
                         "its notebook in nbs/ and run `make export`.")


def test_every_lesson_notebook_runs():
    out = run([str(BIN / "nbdev-test"), "--n-workers", "2"], timeout=1200)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]


def staged_text(path: Path, root: Path = ROOT) -> str:
    "The notebook as the next commit records it: git's index, or the file itself where git does not track it."
    shown = subprocess.run(["git", "show", f":{path.relative_to(root)}"], cwd=root, capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else path.read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_clean(path):
    text = staged_text(path)
    ids = [cell.get("id") for cell in json.loads(text)["cells"]]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert not repeated, f"{path.relative_to(ROOT)}: cell ids used twice (nbformat would rename them): {repeated}"
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        where = f"{path.relative_to(ROOT)} cell {index} (as staged in git)"
        # exercises/ is generated: its task cells carry the tag that lets Run All go past a failing check
        allowed = [{}, {"tags": ["raises-exception"]}] if path.parent.name == "exercises" else [{}]
        assert cell.metadata in allowed, f"{where} has cell metadata {dict(cell.metadata)}: run `make clean-nbs`"
        if cell.cell_type == "code":
            fix = "run `make clean-nbs` and stage it again"
            assert cell.outputs == [], f"{where} has stored outputs: {fix}"
            assert cell.execution_count is None, f"{where} has an execution count: {fix}"


def test_a_lesson_run_in_place_is_checked_as_staged(tmp_path):
    "A learner's saved outputs stay in the working tree; the policy reads the staged notebook."
    git = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True)
    git("init", "-q")
    path = tmp_path / "lesson.ipynb"
    clean = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(clean, path)
    git("add", "lesson.ipynb")
    ran = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "1 + 1", execution_count=1, outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"})])])
    nbformat.write(ran, path)
    assert nbformat.reads(staged_text(path, tmp_path), as_version=4).cells[0].execution_count is None
    git("add", "lesson.ipynb")  # staging the run notebook is what the policy refuses
    assert nbformat.reads(staged_text(path, tmp_path), as_version=4).cells[0].execution_count == 1
    untracked = tmp_path / "new.ipynb"
    nbformat.write(ran, untracked)
    assert nbformat.reads(staged_text(untracked, tmp_path), as_version=4).cells[0].outputs


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.name)
def test_solutions_have_no_notest_cells(path):
    # nbval runs every cell, `#| notest` ones included, so a solution cannot rely on being skipped.
    nb = nbformat.read(path, as_version=4)
    flagged = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "#| notest" in c.source]
    assert not flagged, f"{path.name}: cells {flagged} are marked `#| notest`, which nbval would still run"


def test_there_are_notebooks_to_check():
    assert (ROOT / "nbs" / "index.ipynb") in NOTEBOOKS and (ROOT / "nbs" / "00_core.ipynb") in NOTEBOOKS


# Phase 1's lessons; 01c (plotting helpers) and 05a (the option names) are reference pages, not lessons.
PHASE_1_LESSONS = sorted(p for p in (ROOT / "nbs").glob("0[0-7]*.ipynb") if p.stem not in ("01c_plot", "05a_options"))


@pytest.mark.parametrize("path", PHASE_1_LESSONS, ids=lambda p: p.stem)
def test_lesson_states_objectives_asks_first_and_cites_papers(path):
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
    headings = [s.splitlines()[0] for s in cells if s.startswith("## ")]
    assert headings[0] == "## Learning objectives", f"{path.name}: the first section is {headings[0]!r}"
    objectives = next(s for s in cells if s.startswith("## Learning objectives"))
    assert objectives.count("\n- ") >= 2, f"{path.name}: fewer than two learning objectives"
    questions = next((s for s in cells if s.startswith("## Questions to start with")), "")
    assert questions.count("<details><summary>Answer</summary>") >= 2 and questions.count("</details>") >= 2, (
        f"{path.name}: needs at least two questions with collapsed answers before the lesson answers them")
    assert headings[1] == "## Questions to start with", f"{path.name}: the questions must come before the lesson"
    papers = next((s for s in cells if s.startswith("## Papers")), "")
    cited = [line for line in papers.splitlines() if line.startswith("- ")]
    assert cited and all(re.search(r"\((19|20)\d\d\)", line) for line in cited), (
        f"{path.name}: '## Papers' must list the work it builds on, each entry with its year")


DRAWS = re.compile(r"plt\.show\(\)|\bplot_\w+\(|attention_explorer\(")


@pytest.mark.parametrize("path", [p for p in PHASE_1_LESSONS if p.stem != "07a_config"], ids=lambda p: p.stem)
def test_lesson_draws_a_figure(path):
    # 07a (config files) is the exception: its pictures are the error messages it prints.
    cells = nbformat.read(path, as_version=4).cells
    drawing = [c.id for c in cells if c.cell_type == "code" and not c.source.startswith("#| export")
               and DRAWS.search(c.source)]
    assert drawing, f"{path.name}: no cell draws a figure"
