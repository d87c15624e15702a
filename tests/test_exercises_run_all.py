"""Run All on a learner's copy of an exercise notebook: every task's check runs and shows its status, and a failed
check shows its message and hint, not the check's code. nbclient without `allow_errors` stops where JupyterLab's Run
All stops: at the first error in a cell not tagged `raises-exception`."""
import re
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from mlre_lab.lab.grader import is_check_cell

from .conftest import ROOT

ANSI = re.compile(r"\x1b\[[0-9;]*m")
WRONG_LAST_TOKEN = "def last_token(x, lengths):\n    return x[:, -1]  # ignores the lengths\n"


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> nbformat.NotebookNode:
    "A copy of exercises/01_tensors.ipynb with a wrong Task 1 and every other stub untouched, after Run All."
    work = tmp_path_factory.mktemp("work")
    path = work / "01_tensors.ipynb"
    shutil.copy(ROOT / "exercises" / "01_tensors.ipynb", path)
    nb = nbformat.read(path, as_version=4)
    stub = next(c for c in nb.cells if c.cell_type == "code" and "def last_token" in c.source)
    stub.source = WRONG_LAST_TOKEN
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(work)}}).execute()
    return nb


def check_cells(nb) -> list:
    return [c for c in nb.cells if is_check_cell(c)]


def errors(cell) -> list[dict]:
    return [o for o in cell.outputs if o.output_type == "error"]


def shown(error: dict) -> str:
    "The error as the notebook shows it (IPython's traceback lines, without colours)."
    return ANSI.sub("", "\n".join(error["traceback"]))


def test_every_check_runs_and_shows_a_status(ran):
    cells = check_cells(ran)
    assert len(cells) >= 10
    silent = [c.source for c in cells if not c.outputs]
    assert not silent, f"Run All stopped before these checks: {silent}"


def test_the_wrong_answer_shows_its_message_and_hint_only(ran):
    failed = errors(check_cells(ran)[0])
    assert failed and failed[0]["ename"] == "CheckFailed", check_cells(ran)[0].outputs
    text = shown(failed[0])
    assert "check_last_token failed on case" in text and "Hint:" in text, text
    assert 'File "' not in text and "site-packages" not in text and "mlre_lab" not in text, text
    assert len(text.splitlines()) <= 6, text


def test_untouched_tasks_say_not_implemented(ran):
    for cell in check_cells(ran)[1:]:
        failed = errors(cell)
        assert failed and failed[0]["ename"] == "TaskNotImplemented", (cell.source, cell.outputs)
        assert "not implemented yet" in shown(failed[0]) and "Traceback" not in shown(failed[0])


def test_only_task_cells_may_fail_without_stopping_run_all():
    nb = nbformat.read(ROOT / "exercises" / "01_tensors.ipynb", as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "raises-exception" in c.metadata.get("tags", [])]
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert tagged and setup not in tagged, "the setup cell must stop Run All when it fails"
    assert all(i in tagged for i, c in enumerate(nb.cells) if is_check_cell(c))
