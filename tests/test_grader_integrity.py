"""A score that can be trusted: the answer key comes from the installed lab, the learner's copy can add work but never
points, the kernel cannot reach the progress store, a kernel death is blamed on its cause, nothing the kernel
started survives, and a check that was replaced in the notebook is not run."""
import json
import os
import time

import nbformat
import psutil
import pytest

from mlre_lab.lab import grader
from mlre_lab.lab.grader import (
    KEY_FILE,
    _probe,
    answer_key,
    build_answer_keys,
    format_result,
    grade_cli,
    grade_notebook,
    integrity_problem,
    integrity_request,
    render_answer_keys,
)
from mlre_lab.lab.progress import DB_ENV, attempts

from .conftest import ROOT
from .test_grader import by_number, code, md, notebook, task, write


def test_the_installed_answer_key_is_current():
    assert KEY_FILE.read_text(encoding="utf-8") == render_answer_keys(build_answer_keys(ROOT / "solutions")), (
        "the answer key is stale: run `mlre exercises build` in the lab's folder")
    keys = json.loads(KEY_FILE.read_text())
    assert set(keys) == {p.stem for p in (ROOT / "exercises").glob("*.ipynb")}
    for name, key in keys.items():
        assert all(module and module.startswith("mlre_lab.") for module in key["check_modules"].values()), name


def test_every_shipped_check_passes_the_integrity_probe():
    # The probe, run here on the real modules, finds the code the lab ships: no false alarm on any exercise set.
    import importlib
    for name, key in json.loads(KEY_FILE.read_text()).items():
        user_ns = {n: getattr(importlib.import_module(m), n) for n, m in key["check_modules"].items()}
        report = json.loads(_probe["probe"](integrity_request(key["check_modules"]), user_ns))
        assert all(report["code"].values()), name
        assert integrity_problem(report) is None, (name, integrity_problem(report))


def tamper(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A hostile learner's 01_tensors: a fake check, inflated points, an invented and a deleted task, patched checks,
    answers imported from the lab."""
    cells = nb.cells
    header = lambda n: next(i for i, c in enumerate(cells) if c.source.startswith(f"## Task {n}:"))
    # a task's k-th code cell (1: its stub, 2: its check), past any markdown (hints) after the header
    code_cell = lambda n, k: [i for i in range(header(n) + 1, len(cells)) if cells[i].cell_type == "code"][k - 1]
    # Task 13's cells deleted (its header kept); an invented Task 14 worth 100 points that passes by itself
    del cells[header(13) + 1:]
    cells += [md("## Task 14: free points\n\ndifficulty: 1 · importance: 1 · minutes: 1 · points: 100"),
              code("print('PASS check_free: 1 case')")]
    # Task 1: points raised to 50 and a fake check cell
    cells[header(1)].source = cells[header(1)].source.replace("points: 1", "points: 50")
    cells[code_cell(1, 2)].source = "print('PASS check_last_token(ok)')"
    # Task 3: the check redefined by the learner
    cells[code_cell(3, 1)].source = ("pairwise_distances = None\n"
                                     "check_pairwise_distances = lambda fn: print('PASS check_pairwise_distances: 6')")
    # Task 4: the harness patched so that every comparison agrees
    cells[code_cell(4, 1)].source = ("import mlre_lab.checks.harness as harness\n"
                                     "harness.describe_mismatch = lambda *a, **k: None\n"
                                     "causal_mask = lambda seq, device: torch.zeros(seq, seq, dtype=torch.bool)")
    # Task 5: the check's code swapped in place (the function object is still the lab's)
    cells[code_cell(5, 1)].source = ("import mlre_lab.checks.tensors as checks\ncheck_masked_mean.__code__ = "
                                     "(lambda fn: print('PASS check_masked_mean: 5 cases')).__code__")
    # Task 7: the answer imported from the lab; Task 8: the lab's answer behind functools.partial
    cells[code_cell(7, 1)].source = "from mlre_lab.scratch.tensors import token_logprobs"
    cells[code_cell(8, 1)].source = ("import functools\nimport mlre_lab.scratch.tensors as lab\n"
                                     "top_k_filter = functools.partial(lab.top_k_filter)")
    # Task 6: a forged attempt in the progress store, through the variable and through the default path
    cells[code_cell(6, 1)].source = (
        "import os\nfrom mlre_lab.lab.progress import write_attempts\n"
        "row = dict(run_id='forged', timestamp='now', notebook='01_tensors', path='x', task=1, title='t', points=99, "
        "max_points=5, passed=1, feedback='', duration=0.0)\n"
        "write_attempts([row], os.environ.get('MLRE_PROGRESS_DB'))")
    return nb


@pytest.fixture(scope="module")
def hostile_copy(tmp_path_factory):
    "A tampered copy of exercises/01_tensors.ipynb in work/, graded by `mlre grade` from a folder outside the lab."
    tmp = tmp_path_factory.mktemp("learner")
    (tmp / "work").mkdir()
    nb = tamper(nbformat.read(ROOT / "exercises" / "01_tensors.ipynb", as_version=4))
    nbformat.write(nb, tmp / "work" / "01_tensors.ipynb")
    db = tmp / "progress.sqlite"
    cwd = os.getcwd()
    os.chdir(tmp / "work")  # no solutions/ anywhere near
    old = os.environ.get(DB_ENV)
    os.environ[DB_ENV] = str(db)
    try:
        import contextlib
        import io
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = grade_cli(["01_tensors.ipynb", "--json", "--timeout", "120"])
    finally:
        os.chdir(cwd)
        if old is None:
            os.environ.pop(DB_ENV)
        else:
            os.environ[DB_ENV] = old
    [result] = json.loads(out.getvalue())
    return code, result, db


def test_points_and_tasks_come_from_the_key(hostile_copy):
    code, result, _ = hostile_copy
    tasks = {t["number"]: t for t in result["tasks"]}
    assert code == 1 and result["error"] is None
    assert result["max_score"] == 19 and result["score"] == 0, result
    assert tasks[1]["max_points"] == 1 and "check cell was changed" in tasks[1]["feedback"]
    assert "no check cell" in tasks[13]["feedback"] and tasks[13]["max_points"] == 2
    assert 14 not in tasks and result["notes"] == ["Task 14 is not part of 01_tensors: not scored"]
    assert not any(t["passed"] for t in result["tasks"])


def test_checks_replaced_in_the_notebook_are_not_run(hostile_copy):
    tasks = {t["number"]: t for t in hostile_copy[1]["tasks"]}
    assert "check_pairwise_distances is not the lab's" in tasks[3]["feedback"]
    assert "mlre_lab.checks.harness.describe_mismatch is not the code the lab shipped" in tasks[4]["feedback"]
    assert "mlre_lab.checks.tensors.check_masked_mean is not the code the lab shipped" in tasks[5]["feedback"]


def test_answers_imported_from_the_lab_are_not_graded(hostile_copy):
    # Both would pass their checks: they are the reference itself.
    tasks = {t["number"]: t for t in hostile_copy[1]["tasks"]}
    assert "`token_logprobs` is mlre_lab.scratch.tensors.token_logprobs, the lab's own code" in tasks[7]["feedback"]
    assert "`top_k_filter` is mlre_lab.scratch.tensors.top_k_filter, the lab's own code" in tasks[8]["feedback"]
    assert not tasks[7]["passed"] and not tasks[8]["passed"]


def test_the_kernel_cannot_reach_the_progress_store(hostile_copy):
    rows = attempts(hostile_copy[2])
    assert rows and {r["notebook"] for r in rows} == {"01_tensors"}
    assert not [r for r in rows if r["run_id"] == "forged"]
    assert len(rows) == 13  # one grading, recorded by the grader only


def test_unknown_names_are_refused_unless_a_set_is_named(tmp_path, capsys):
    copy = tmp_path / "my_copy.ipynb"
    copy.write_text((ROOT / "exercises" / "01_tensors.ipynb").read_text())
    assert grade_cli([str(copy), "--no-record"]) == 2
    err = capsys.readouterr().err
    assert "my_copy.ipynb matches no exercise set" in err and "--set NAME" in err and "01_tensors" in err
    assert grade_cli([str(copy), "--set", "99_nothing"]) == 2
    assert "--set 99_nothing: no such exercise set" in capsys.readouterr().err


def test_messages_for_files_that_are_not_gradable(tmp_path, capsys, monkeypatch):
    assert grade_cli([str(ROOT / "README.md")]) == 2
    err = capsys.readouterr().err
    assert "README.md is not a notebook (an .ipynb file)" in err and "no such" not in err
    assert grade_cli([str(tmp_path / "01_tensors.ipynb")]) == 2
    assert "01_tensors.ipynb: no such file" in capsys.readouterr().err
    # no tasks: exit 2; and a notebook inside exercises/ is called the pristine copy
    (tmp_path / "exercises").mkdir()
    write(tmp_path / "exercises", nbformat.v4.new_notebook(cells=[code("x = 1")]), "01_tensors.ipynb")
    monkeypatch.chdir(tmp_path)
    assert grade_cli(["exercises/01_tensors.ipynb", "--no-record"]) == 2
    captured = capsys.readouterr()
    assert "has no tasks" in captured.out
    assert "pristine exercise notebook" in captured.err and "cp exercises/01_tensors.ipynb work/" in captured.err


def test_the_table_wraps_feedback_and_json_keeps_it_whole():
    feedback = ("check_one_hot failed on case 'vocab of 5': output has dtype torch.int64, expected torch.float32\n"
                "  Hint: the output gains a last dimension of size vocab, 1.0 at the id and 0.0 elsewhere, as float32 "
                "on ids' device, whatever the shape of ids.")
    result = grader.NotebookResult("work/01_tensors.ipynb", "01_tensors", [
        grader.TaskResult(6, "one-hot by comparison", 0, 1, False, feedback, 0.1)])
    text = format_result(result, width=80)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    words = " ".join(line.strip() for line in text.splitlines())
    for word in feedback.split():
        assert word in words.split(), word  # every word whole: nothing cut mid-word, no ellipsis
    assert "…" not in text
    assert json.loads(json.dumps(result.to_dict()))["tasks"][0]["feedback"] == feedback


EXIT = notebook(
    task(1, "double", "def double(x):\n    return 2 * x", "check_double(double)"),
    task(2, "exit in the cell", "def double2(x):\n    return 2 * x\nexit()", "check_double(double2)"),
    task(3, "graded after", "double3 = double", "check_double(double3)"),
    task(4, "and again", "double4 = double", "check_double(double4)"))


def test_exit_is_blamed_on_its_cell_and_not_replayed(tmp_path):
    result = grade_notebook(write(tmp_path, EXIT), key=answer_key(EXIT), timeout=30)
    tasks = by_number(result)
    assert [t.passed for t in result.tasks] == [True, False, True, True]
    assert "called exit() or quit()" in tasks[2].feedback
    assert result.kernel_starts == 2  # one restart after the exit, none after


def test_a_failing_setup_cell_is_named_once(tmp_path, capsys, monkeypatch):
    nb = notebook(task(1, "double", "double = lambda x: 2 * x", "check_double(double)"),
                  task(2, "again", "double2 = lambda x: 2 * x", "check_double(double2)"),
                  setup="import no_such_module_for_the_grader")
    monkeypatch.setattr(grader, "load_answer_keys", lambda path=None: {"ex": answer_key(nb)})
    assert grade_cli([str(write(tmp_path, nb)), "--no-record"]) == 2
    out = capsys.readouterr().out
    assert out.count("setup cell (cell 1") == 1 and "No module named 'no_such_module_for_the_grader'" in out
    assert "NameError" not in out


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_nothing_the_kernel_started_survives_grading(tmp_path):
    pids = tmp_path / "pids"
    start = (f"import subprocess\n"
             f"procs = [subprocess.Popen(['sleep', '300'], start_new_session=True),\n"
             f"         subprocess.Popen(['sleep', '301'], process_group=0)]\n"
             f"subprocess.run(['setsid', 'sh', '-c', 'sleep 302 & echo $! > {pids}.daemon'])\n"
             f"open('{pids}', 'w').write(' '.join(str(p.pid) for p in procs))\n"
             f"double = lambda x: 2 * x")
    nb = notebook(task(1, "double", start, "check_double(double)"))
    result = grade_notebook(write(tmp_path, nb), key=answer_key(nb), timeout=30)
    assert result.tasks[0].passed, result.tasks[0].feedback
    started = [int(p) for p in pids.read_text().split()] + [int(pids.with_suffix(".daemon").read_text())]
    deadline = time.monotonic() + 5
    while any(map(alive, started)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in started if alive(p)]
