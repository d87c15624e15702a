"""The grader against hostile notebooks: each way a learner's cell can fail is reported on its own task, the
grading carries on, and nothing but a check's PASS line scores points."""
import json
import signal

import nbformat
import pytest

from mlre_lab.lab import grader
from mlre_lab.lab.grader import (
    CellRun,
    _exit_description,
    answer_key,
    format_result,
    grade_cli,
    grade_notebook,
    kernel_argv,
    memory_limit_bytes,
    summarise_error,
)

SETUP = '''import math

class CheckFailed(AssertionError):
    "Stands in for mlre_lab.checks.harness.CheckFailed."

def check_double(fn):
    try:
        got = fn(21)
    except NotImplementedError as e:
        raise CheckFailed(f"check_double: not implemented yet ({e})") from None
    if isinstance(got, float) and math.isnan(got):
        raise CheckFailed("check_double: double(21) returned NaN; expected 42")
    if got != 42:
        raise CheckFailed(f"check_double: double(21) gave {got!r}, expected 42")
    print("PASS check_double: 1 case")'''


def md(text):
    return nbformat.v4.new_markdown_cell(text)


def code(text):
    return nbformat.v4.new_code_cell(text)


def task(n, title, *cells, points=1):
    header = md(f"## Task {n}: {title}\n\ndifficulty: 1 · importance: 2 · minutes: 5 · points: {points}")
    return [header, *map(code, cells)]


def notebook(*tasks, setup=SETUP):
    cells = [md("# Synthetic exercises"), code(setup)]
    for t in tasks:
        cells += t
    return nbformat.v4.new_notebook(cells=cells)


def write(tmp_path, nb, name="ex.ipynb"):
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def grade(tmp_path, nb, name="ex.ipynb", **kwargs):
    "Grade `nb` against its own answer key (synthetic notebooks are no exercise set of the lab)."
    return grade_notebook(write(tmp_path, nb, name), key=answer_key(nb), **kwargs)


@pytest.fixture
def installed(monkeypatch):
    "Install synthetic answer keys for the CLI: installed(name=notebook, ...)."
    def install(**notebooks):
        keys = {name: answer_key(nb) for name, nb in notebooks.items()}
        monkeypatch.setattr(grader, "load_answer_keys", lambda path=None: keys)
    return install


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    "One notebook with every failure a learner can produce, graded once (three kernel starts)."
    nb = notebook(
        task(1, "a right answer", "def double(x):\n    return 2 * x", "check_double(double)", points=3),
        task(2, "a stub", "def double2(x):\n    raise NotImplementedError('Task 2: implement double2')",
             "check_double(double2)"),
        task(3, "an exception", "1 / 0\n\ndef double3(x):\n    return 2 * x", "check_double(double3)"),
        task(4, "an infinite loop", "while True:\n    pass", "check_double(double)"),
        task(5, "a kernel death", "import os\nos._exit(1)", "check_double(double)"),
        task(6, "graded after the death", "def double6(x):\n    return double(x)", "check_double(double6)"),
        task(7, "a memory blow-up", "hog = bytearray(3 * 2**30)", "check_double(lambda x: len(hog))"),
        task(8, "a deleted check call", "def double8(x):\n    return 0", "print('PASS check_double: 1 case')"),
        task(9, "NaN", "def double9(x):\n    return float('nan')", "check_double(double9)"),
        task(10, "a fake PASS from the learner", "def double10(x):\n    print('PASS check_double: me')\n    return 1",
             "check_double(double10)"),
        task(11, "a wrong answer with a passing-looking print", "print('PASS everything')\ndouble11 = abs",
             "check_double(double11)"),
    )
    return grade(tmp_path_factory.mktemp("hostile"), nb, timeout=4, memory_gb=1)


def by_number(result):
    return {t.number: t for t in result.tasks}


def test_only_the_right_answer_and_the_task_after_the_death_pass(hostile):
    assert hostile.error is None
    assert [t.number for t in hostile.tasks if t.passed] == [1, 6]
    assert hostile.score == 4 and hostile.max_score == 13
    assert hostile.kernel_starts == 3  # the first, then after the timeout and after the death


def test_each_failure_is_explained_on_its_own_task(hostile):
    tasks = by_number(hostile)
    assert tasks[1].feedback == "PASS check_double: 1 case"
    assert "not implemented yet" in tasks[2].feedback and "Task 2: implement double2" in tasks[2].feedback
    assert "ZeroDivisionError: division by zero" in tasks[3].feedback and "line 1" in tasks[3].feedback
    assert "timed out after 4 s" in tasks[4].feedback
    assert "kernel died" in tasks[5].feedback and "exited with code 1" in tasks[5].feedback
    assert "ran out of memory (the grading limit is 1 GiB)" in tasks[7].feedback
    assert "no check cell" in tasks[8].feedback
    assert "NaN" in tasks[9].feedback
    assert "gave 1, expected 42" in tasks[10].feedback
    assert "gave 21, expected 42" in tasks[11].feedback
    assert all(t.points == 0 for t in tasks.values() if not t.passed)


def test_the_report_and_json(hostile, capsys):
    text = format_result(hostile)
    assert "total 4/13 points, 2 of 11 tasks passed" in text and "grading overhead" in text
    assert 0 < hostile.learner_seconds < hostile.seconds
    data = json.loads(json.dumps(hostile.to_dict()))
    assert data["score"] == 4 and len(data["tasks"]) == 11 and data["overhead_seconds"] >= 0


def test_a_solved_notebook_scores_full_marks_and_is_recorded(tmp_path, capsys, installed):
    nb = notebook(task(1, "double", "def double(x):\n    return 2 * x", "check_double(double)", points=2),
                  task(2, "double again", "double2 = lambda x: x + x", "check_double(double2)"))
    installed(ex=nb)
    path = write(tmp_path, nb)
    db = tmp_path / "progress.sqlite"
    assert grade_cli([str(path), "--json", "--db", str(db), "--timeout", "30"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["score"] == result["max_score"] == 3 and result["error"] is None

    from mlre_lab.lab.progress import attempts
    rows = attempts(db)
    assert [(r["notebook"], r["task"], r["passed"], r["points"]) for r in rows] == [("ex", 1, 1, 2), ("ex", 2, 1, 1)]
    assert len({r["run_id"] for r in rows}) == 1


def test_a_changed_check_cell_fails_against_the_reference(tmp_path):
    original = notebook(task(1, "double", "def double(x):\n    return 2 * x", "check_double(double)"))
    cheat = notebook(task(1, "double", "def double(x):\n    return 0",
                          "check_double = lambda fn: print('PASS check_double')\ncheck_double(double)"))
    result = grade_notebook(write(tmp_path, cheat), key=answer_key(original), timeout=30)
    assert not result.tasks[0].passed and "check cell was changed" in result.tasks[0].feedback


def test_bad_paths_and_notebooks_without_tasks_are_clear(tmp_path, capsys):
    assert grade_cli([str(tmp_path / "missing.ipynb")]) == 2
    assert "missing.ipynb: no such file" in capsys.readouterr().err
    assert grade_cli([]) == 2
    (tmp_path / "broken.ipynb").write_text("{not json")
    result = grade_notebook(tmp_path / "broken.ipynb", key=answer_key(notebook()))
    assert result.error.startswith("could not read") and not result.tasks
    bad_header = notebook([md("## Task 1: no metadata"), code("pass")])
    result = grade_notebook(write(tmp_path, bad_header, "bad.ipynb"), key=answer_key(notebook()))
    assert "cell 2" in result.error and "difficulty" in result.error


def test_error_summaries():
    oom = CellRun(4, "error", ename="RuntimeError", evalue="[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: "
                  "can't allocate memory: you tried to allocate 8589934592 bytes.")
    assert summarise_error(oom, 2 * 2**30).startswith("ran out of memory (the grading limit is 2 GiB)")
    failed = CellRun(5, "error", ename="CheckFailed", evalue="check_softmax failed on case 'batch of 1':\n  ...")
    assert summarise_error(failed) == failed.evalue.strip()
    assert "signal 9 (SIGKILL)" in _exit_description(-signal.SIGKILL) and "memory" in _exit_description(-9)
    assert "exited with code 3" in _exit_description(3)


def test_memory_limit_settings(monkeypatch):
    monkeypatch.delenv("MLRE_GRADE_MEMORY_GB", raising=False)
    assert memory_limit_bytes() == 4 * 2**30
    monkeypatch.setenv("MLRE_GRADE_MEMORY_GB", "0.5")
    assert memory_limit_bytes() == 2**29 and memory_limit_bytes(0) == 0
    monkeypatch.setenv("MLRE_GRADE_MEMORY_GB", "lots")
    with pytest.raises(ValueError, match="MLRE_GRADE_MEMORY_GB='lots'"):
        memory_limit_bytes()
    argv = kernel_argv(2**30)
    assert argv[3:5] == ["-f", "{connection_file}"] and str(2**30) in argv[2]


def test_the_library_checks_surface_nan_shape_and_dtype_mistakes(tmp_path):
    # The real check from the library, on four versions of softmax: three mistakes and a right answer.
    setup = "import torch\nfrom mlre_lab.checks.autograd import check_softmax"
    nb = notebook(
        task(1, "wrong dimension", "def s1(x, dim=-1):\n    return torch.softmax(x, 0)", "check_softmax(s1)"),
        task(2, "no max subtraction", "def s2(x, dim=-1):\n    e = x.exp()\n    return e / e.sum(dim, keepdim=True)",
             "check_softmax(s2)"),
        task(3, "float64", "def s3(x, dim=-1):\n    return torch.softmax(x.double(), dim)", "check_softmax(s3)"),
        task(4, "right", "def s4(x, dim=-1):\n    return torch.softmax(x, dim)", "check_softmax(s4)"),
        setup=setup)
    result = grade(tmp_path, nb, timeout=60)
    tasks = by_number(result)
    assert [t.passed for t in result.tasks] == [False, False, False, True]
    assert all(tasks[n].feedback.startswith("check_softmax failed") for n in (1, 2, 3))
    assert "nan" in tasks[2].feedback.lower() or "inf" in tasks[2].feedback.lower()
    assert "float64" in tasks[3].feedback
    assert tasks[4].feedback.startswith("PASS check_softmax")


def test_grade_all_grades_the_exercises_folder(tmp_path, monkeypatch, capsys, installed):
    monkeypatch.chdir(tmp_path)
    assert grade_cli(["--all", "--no-record"]) == 2
    assert "no exercises/ folder" in capsys.readouterr().err
    (tmp_path / "exercises").mkdir()
    nb = notebook(task(1, "double", "def double(x):\n    return 2 * x", "check_double(double)"))
    write(tmp_path / "exercises", nb, "01_double.ipynb")
    assert grade_cli(["--all", "--no-record"]) == 2  # not an exercise set of the lab
    assert "01_double.ipynb matches no exercise set" in capsys.readouterr().err
    installed(**{"01_double": nb})
    assert grade_cli(["--all", "--no-record"]) == 0
    assert "exercises/01_double.ipynb" in capsys.readouterr().out


def test_a_task_whose_key_allows_longer_gets_its_own_time_limit(tmp_path):
    # The key's `timeout: S` (a long training task) lengthens that task's cells only; a learner's header cannot.
    slow = "import time\ntime.sleep(3)\n\ndef double(x):\n    return 2 * x"
    nb = notebook(task(1, "a slow task", slow, "check_double(double)"),
                  task(2, "a fast task", "import time\ntime.sleep(3)\ndouble2 = double", "check_double(double2)"))
    nb.cells[2].source += " · timeout: 30"
    key = answer_key(nb)
    assert [t.get("timeout") for t in key["tasks"]] == [30, None]
    result = grade_notebook(write(tmp_path, nb), key=key, timeout=2)
    assert [t.passed for t in result.tasks] == [True, False], format_result(result)
    assert "timed out after 2 s" in by_number(result)[2].feedback
    # The same header in the learner's copy, graded against a key without it, buys nothing.
    del key["tasks"][0]["timeout"]
    assert not grade_notebook(write(tmp_path, nb, "again.ipynb"), key=key, timeout=2).tasks[0].passed
