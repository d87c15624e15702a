"""`mlre drill`: answers stay hidden until asked for, the tensor drills are timed and graded, defense drills carry the
project's numbers and are answered in a file that `mlre review check` covers."""
import json
import shutil

from mlre_lab.lab.drill import CATEGORIES, QUESTION_BANK, drill_cli
from mlre_lab.lab.progress import attempts
from mlre_lab.lab.review import review_cli

from .conftest import ROOT


def test_questions_hide_their_answers_until_asked(capsys):
    assert drill_cli(["questions", "--count", str(len(QUESTION_BANK)), "--seed", "0"]) == 0
    shown = capsys.readouterr().out
    assert all(q.prompt in shown and q.answer not in shown for q in QUESTION_BANK)
    assert {q.category for q in QUESTION_BANK} == set(CATEGORIES) and len(CATEGORIES) == 7
    assert drill_cli(["answer", QUESTION_BANK[0].id]) == 0
    assert QUESTION_BANK[0].answer in capsys.readouterr().out


def test_unknown_ids_and_categories_get_one_sentence(capsys):
    assert drill_cli(["answer", "nope-1"]) == 2
    assert "no question 'nope-1'" in capsys.readouterr().err


def test_tensor_drills_start_the_clock_then_grade_and_record(tmp_path, capsys):
    work, db = tmp_path / "drills", tmp_path / "progress.sqlite"
    assert drill_cli(["tensors", "start", "--dir", str(work), "--root", str(ROOT)]) == 0
    assert "Clock started: 31 minutes" in capsys.readouterr().out
    assert (work / "14_drills.ipynb").read_text() == (ROOT / "exercises" / "14_drills.ipynb").read_text()
    assert drill_cli(["tensors", "grade", "--dir", str(work), "--db", str(db)]) == 1  # the stubs fail
    shutil.copy(ROOT / "solutions" / "14_drills.ipynb", work / "14_drills.ipynb")
    assert drill_cli(["tensors", "start", "--dir", str(work), "--root", str(ROOT)]) == 0  # keeps the copy
    assert drill_cli(["tensors", "grade", "--dir", str(work), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "total 5/5 points" in out and "against a budget of 31 (within)" in out
    assert {a["passed"] for a in attempts(db, "14_drills")[-5:]} == {1}


def test_defense_drill_carries_the_numbers_and_needs_answers(tmp_path, capsys):
    run = tmp_path / "runs" / "gpt-small"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 500, "loss": 1.92, "val_loss": 2.05, "tokens_per_s": 8123.0},
        {"step": 1000, "loss": 1.61, "val_loss": 1.83, "tokens_per_s": 8201.0}]))
    (run / "config.toml").write_text("[model]\nn_layer = 4\nd_model = 128\n[train]\nseed = 7\n")
    (run / "environment.json").write_text(json.dumps({"torch": "2.13.0", "git_commit": "f00d", "git_dirty": True}))
    out = tmp_path / "defense.md"
    assert drill_cli(["defend", str(run), "--out", str(out)]) == 0
    text = out.read_text()
    for fact in ["val_loss (min) = 1.83", "tokens_per_s (median) = 8201", "config.model.d_model = 128",
                 "config.train.seed = 7", "git_dirty = True", "git_commit = f00d"]:
        assert fact in text, fact
    assert review_cli(["check", str(out)]) == 1
    out.write_text(text.replace("TODO", "An answer with a number: 1.83 today, and what would change."))
    assert review_cli(["check", str(out)]) == 0
    assert drill_cli(["defend", str(run), "--out", str(out)]) == 2  # never overwritten
    assert "already exists" in capsys.readouterr().err
    assert drill_cli(["defend", str(tmp_path / "nothing")]) == 2
