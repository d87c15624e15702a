"`mlre new review` and `mlre review check`: a fresh review lists all seven questions; the worked examples pass."
import pytest

from mlre_lab.checks.reviews import QUESTIONS
from mlre_lab.lab.review import new_review_cli, review_cli

from .conftest import ROOT

EXAMPLES = sorted((ROOT / "examples" / "reviews").glob("*.ipynb"))


def test_a_fresh_review_lists_the_seven_questions_and_fails(tmp_path, capsys):
    assert new_review_cli(["Attention Is All You Need", "--arxiv", "1706.03762", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "attention-is-all-you-need.ipynb"
    capsys.readouterr()
    assert review_cli(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert all(question in out for question in QUESTIONS)
    assert "Claims: row 3" in out


def test_the_worked_examples_are_complete(capsys):
    assert len(EXAMPLES) == 2
    assert review_cli(["check", *map(str, EXAMPLES)]) == 0
    assert capsys.readouterr().out.count(": complete") == 2


def test_markdown_files_are_checked_like_notebooks(tmp_path, capsys):
    answers = tmp_path / "answers.md"
    answers.write_text("# Defense\n## Ten times more data?\n> prompt\nTODO\n## Latency down 70%?\nDistil it.\n")
    assert review_cli(["check", str(answers)]) == 1
    assert "placeholder left: Ten times more data?" in capsys.readouterr().out
    answers.write_text("# Defense\n## Ten times more data?\nScale the model with the data.\n")
    assert review_cli(["check", str(answers)]) == 0


def test_an_existing_review_is_never_overwritten(tmp_path, capsys):
    assert new_review_cli(["Grokking", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "grokking.ipynb"
    path.write_text(path.read_text().replace("TODO", "my answer"))
    before = path.read_text()
    assert new_review_cli(["Grokking", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err and path.read_text() == before


@pytest.mark.parametrize("argv,message", [
    (["Grokking", "--arxiv", "https://arxiv.org/abs/2201.02177"], "arXiv identifier such as"),
    (["!!!"], "no letters or digits"),
])
def test_bad_input_gets_one_sentence(tmp_path, capsys, argv, message):
    assert new_review_cli([*argv, "--dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_unreadable_files_exit_2(tmp_path, capsys):
    (tmp_path / "broken.ipynb").write_text("{not json")
    (tmp_path / "notes.txt").write_text("## A\nB\n")
    assert review_cli(["check", str(tmp_path / "broken.ipynb")]) == 2
    assert review_cli(["check", str(tmp_path / "notes.txt")]) == 2
    assert review_cli(["check", str(tmp_path / "missing.md")]) == 2
    out = capsys.readouterr().out
    assert "is not a notebook" in out and "neither a notebook" in out and "missing.md: cannot check it" in out


def test_the_console_script_checks_files(tmp_path):
    from .conftest import BIN, run
    out = run([str(BIN / "mlre"), "review", "check", *map(str, EXAMPLES)])
    assert out.returncode == 0 and out.stdout.count(": complete") == 2
    (tmp_path / "empty.md").write_text("# Notes\n## Question\nTODO\n")
    out = run([str(BIN / "mlre"), "review", "check", str(tmp_path / "empty.md")])
    assert out.returncode == 1 and "placeholder left: Question" in out.stdout
