"""The progress store survives crashes and kills mid-write; the roadmap has its 90 days; progress and today read
them together."""
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from types import SimpleNamespace

import nbformat
import pytest

from mlre_lab.lab.progress import (
    DB_ENV,
    attempts,
    connect,
    day_statuses,
    default_db_path,
    format_today,
    mark_done,
    progress_cli,
    record_run,
    today_cli,
    write_attempts,
)
from mlre_lab.lab.roadmap import ROADMAP, day

from .conftest import BIN, run


def result(notebook="exercises/01_tensors.ipynb", passed=(True, False), points=2):
    tasks = [SimpleNamespace(number=i + 1, title=f"task {i + 1}", points=points if ok else 0, max_points=points,
                             passed=ok, feedback="PASS" if ok else "wrong", seconds=0.5) for i, ok in enumerate(passed)]
    return SimpleNamespace(notebook=notebook, tasks=tasks)


def make_lab(root, n_tasks=10, lessons=("00_core", "01_tensors", "01b_shapes")):
    (root / "nbs").mkdir(parents=True)
    (root / "exercises").mkdir()
    for lesson in lessons:
        nbformat.write(nbformat.v4.new_notebook(), root / "nbs" / f"{lesson}.ipynb")
    cells = []
    for n in range(1, n_tasks + 1):
        cells += [nbformat.v4.new_markdown_cell(f"## Task {n}: step {n}\n\ndifficulty: {1 + n % 3} · importance: 2 · "
                                                f"minutes: {5 * n} · points: 2"),
                  nbformat.v4.new_code_cell(f"check_step(step{n})")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), root / "exercises" / "01_tensors.ipynb")
    return root


def test_default_path_env_and_flag(monkeypatch, tmp_path):
    monkeypatch.delenv(DB_ENV, raising=False)
    assert default_db_path().parts[-2:] == ("mlre-lab", "progress.sqlite")
    monkeypatch.setenv(DB_ENV, str(tmp_path / "env.sqlite"))
    assert default_db_path() == tmp_path / "env.sqlite"
    record_run(result())
    assert len(attempts()) == 2 and (tmp_path / "env.sqlite").exists()
    record_run(result(), tmp_path / "flag.sqlite")  # an explicit path wins over the variable
    assert len(attempts(tmp_path / "flag.sqlite")) == 2 and len(attempts()) == 2


def test_a_run_is_one_row_per_task_under_one_run_id(tmp_path):
    db = tmp_path / "p.sqlite"
    first, second = record_run(result(), db), record_run(result(passed=(True, True)), db)
    rows = attempts(db)
    assert [r["run_id"] for r in rows] == [first, first, second, second]
    row = rows[1]
    assert (row["notebook"], row["path"], row["task"], row["title"], row["points"], row["max_points"],
            row["passed"], row["feedback"], row["duration"]) == (
        "01_tensors", "exercises/01_tensors.ipynb", 2, "task 2", 0, 2, 0, "wrong", 0.5)
    assert row["timestamp"].endswith("+00:00")


def test_an_exception_mid_insert_leaves_no_partial_run(tmp_path):
    db = tmp_path / "p.sqlite"
    record_run(result(), db)
    good = dict(attempts(db)[0], run_id="partial")
    bad = dict(good, passed=None)  # violates NOT NULL on the second row
    with pytest.raises(sqlite3.IntegrityError):
        write_attempts([good, bad], db)
    assert "partial" not in {r["run_id"] for r in attempts(db)} and len(attempts(db)) == 2


KILLED_WRITER = """
import os, signal, sys
from mlre_lab.lab.progress import write_attempts
row = dict(run_id="killed", timestamp="t", notebook="01_tensors", path="p", task=1, title="t", points=1,
           max_points=1, passed=1, feedback="", duration=0.0)
def rows():
    for i in range(100):
        if i == 50:
            os.kill(os.getpid(), signal.SIGKILL)
        yield dict(row, task=i)
write_attempts(rows(), sys.argv[1])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_writer_killed_mid_transaction_leaves_a_readable_store_without_its_rows(tmp_path):
    db = tmp_path / "p.sqlite"
    record_run(result(), db)
    child = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(db)], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    with closing(connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert {r["run_id"] for r in attempts(db)} == {attempts(db)[0]["run_id"]} and len(attempts(db)) == 2
    record_run(result(), db)
    assert len(attempts(db)) == 4


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_grader_killed_while_grading_records_nothing(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Task 1: sleep\n\ndifficulty: 1 · importance: 1 · minutes: 1 · points: 1"),
        nbformat.v4.new_code_cell("import time\ntime.sleep(60)"), nbformat.v4.new_code_cell("check_x(1)")])
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    db = tmp_path / "p.sqlite"
    grader = subprocess.Popen([str(BIN / "mlre"), "grade", str(path), "--set", "01_tensors", "--db", str(db)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert grader.stdout.readline().startswith("grading")
    os.killpg(grader.pid, signal.SIGKILL)  # the grader and its kernel
    grader.wait()
    assert attempts(db) == []


def test_the_roadmap_has_every_day_in_its_phase():
    assert [d.day for d in ROADMAP] == list(range(1, 91))
    assert all((d.phase == 1) == (d.day <= 30) and (d.phase == 3) == (d.day > 60) for d in ROADMAP)
    assert ROADMAP[0].lesson == "00_core" and ROADMAP[-1].lesson == "14b_interviews"
    assert day(90) is ROADMAP[-1]
    with pytest.raises(ValueError):
        day(0)


def test_statuses_follow_the_attempts(tmp_path):
    root, db = make_lab(tmp_path / "lab"), tmp_path / "p.sqlite"
    statuses = day_statuses(db, root)
    tensor_days = [s for s in statuses if s.day.exercise == "01_tensors"]
    assert [len(s.tasks) for s in tensor_days] == [3, 3, 2, 2]
    assert [s.status for s in statuses[:8]] == ["todo"] * 8
    assert {s.status for s in statuses if s.day.lesson not in ("00_core", "01_tensors", "01b_shapes")} == {"upcoming"}
    record_run(result(passed=(True, True, False, False)), db)
    record_run(result(passed=(False, False, True, False)), db)  # best results count per task
    statuses = day_statuses(db, root)
    assert [(s.status, s.score) for s in statuses[2:6]] == [
        ("done", "6/6"), ("attempted", "0/6"), ("todo", "0/4"), ("todo", "0/4")]


def test_progress_prints_every_day_and_saves_a_chart(tmp_path, capsys):
    root, db = make_lab(tmp_path / "lab"), tmp_path / "p.sqlite"
    record_run(result(), db)
    assert progress_cli(["--db", str(db), "--root", str(root), "--chart", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert all(f"day {n:>2} " in out for n in range(1, 91))
    assert "day  3  attempted" in out and "day 90  upcoming" in out
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_today_names_the_first_unfinished_day_with_its_tasks(tmp_path, capsys):
    root, db = make_lab(tmp_path / "lab"), tmp_path / "p.sqlite"
    assert today_cli(["--db", str(db), "--root", str(root)]) == 0
    assert capsys.readouterr().out.startswith("Day 1 of 90")
    mark_done(1, db)
    mark_done(2, db)
    record_run(result(passed=(True, True, True)), db)
    text = format_today(day_statuses(db, root))
    assert text.startswith("Day 4 of 90") and "Then read: nbs/01_tensors.ipynb" in text
    assert text.index("Build it first: copy exercises/01_tensors.ipynb") < text.index("Then read:")  # exercise first
    assert "Task 4: step 4 (difficulty 2/3, importance 2/3, ~20 min, 2 points)" in text
    assert "Expected time: 3 hours" in text and "mlre grade work/01_tensors.ipynb" in text
    for n in (4, 5, 6, 7, 8):
        mark_done(n, db)
    assert format_today(day_statuses(db, root)).startswith("Day 9 of 90 · phase 1 (Foundations) · upcoming")


def test_the_commands_run_from_the_shell(tmp_path):
    env = {DB_ENV: str(tmp_path / "p.sqlite")}
    out = run([str(BIN / "mlre"), "today"], env=env)
    assert out.returncode == 0 and out.stdout.startswith("Day "), out.stdout + out.stderr
    out = run([str(BIN / "mlre"), "progress", "--done", "91"], env=env)
    assert out.returncode == 2 and "days 1 to 90, not 91" in out.stdout
