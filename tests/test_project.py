"""`mlre new project`: the scaffold installs into a fresh virtual environment and its own `make test` passes; it
never writes over a folder; `--from` fills the memo from a run or a report."""
import json
import shutil
import sys
import sysconfig

import pytest

from mlre_lab.checks.reviews import document_problems
from mlre_lab.lab.project import new_project, new_project_cli

from .conftest import run


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_a_generated_project_installs_and_passes_its_make_test(tmp_path):
    project = new_project("demo", tmp_path / "demo")
    venv = project / ".venv"
    assert run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    # Offline and fast: the new environment sees this one's packages (torch, mlre_lab, pytest, pip), like
    # --system-site-packages would, and the project itself is installed into it for real.
    site = run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    lab_site = sysconfig.get_paths()["purelib"]  # addsitedir, so its own .pth files (the editable lab) count too
    (tmp_path / site.stdout.strip()).joinpath("lab.pth").write_text(f"import site; site.addsitedir({lab_site!r})\n")
    install = run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                   "--no-build-isolation", "-e", str(project)])
    assert install.returncode == 0, install.stderr
    (venv / ".installed").touch()  # what the Makefile's install rule leaves behind
    out = run(["make", "test"], cwd=project, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "9 passed" in out.stdout and "pip install" not in out.stdout, "make test reinstalled or ran other tests"


def test_an_existing_folder_is_never_written_over(tmp_path, capsys):
    target = tmp_path / "demo"
    target.mkdir()
    (target / "notes.md").write_text("mine")
    assert new_project_cli(["demo", "--dir", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["notes.md"] and (target / "notes.md").read_text() == "mine"


def test_the_readme_is_a_memo_whose_todos_the_review_check_lists(tmp_path):
    readme = (new_project("demo", tmp_path / "demo") / "README.md").read_text()
    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    assert headings == ["## Question", "## Result", "## How to reproduce", "## Limitations", "## Decision log"]
    assert document_problems(readme) == ["placeholder left: Question", "placeholder left: Result",
                                         "Result: row 1 has no answer under 'metric', 'mean', '95% CI', 'seeds'",
                                         "placeholder left: Limitations"]


def test_from_a_run_fills_the_result_with_its_numbers(tmp_path):
    run_dir = tmp_path / "runs" / "baseline"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 100, "loss": 2.5, "val_loss": 2.61}, {"step": 200, "loss": 1.25, "val_loss": 1.875}]) + '{"step": 3')
    (run_dir / "status.json").write_text(json.dumps({"status": "finished"}))
    (run_dir / "environment.json").write_text(json.dumps({"python": "3.11.7", "torch": "2.13.0"}))
    project = new_project("from-run", tmp_path / "p", source=run_dir)
    readme = (project / "README.md").read_text()
    for expected in ["| steps | 200 |", "| final training loss | 1.2500 |", "| best validation loss | 1.8750 |",
                     "| status | finished |", "torch 2.13.0", "Started from run `baseline`"]:
        assert expected in readme
    assert (project / "evidence" / "baseline" / "metrics.jsonl").is_file()


def test_from_a_report_fills_the_question_and_limitations(tmp_path):
    report = tmp_path / "report.md"
    report.write_text("# Grokking, reproduced\n## Claim\nWeight decay shortens the delay.\n"
                      "## What did not reproduce\nThe delay at 30% was 3x shorter than the paper's.\n")
    readme = (new_project("from-report", tmp_path / "p", source=report) / "README.md").read_text()
    assert "> Grokking, reproduced" in readme and "Weight decay shortens the delay." in readme
    assert "3x shorter" in readme and "placeholder left: Result" in document_problems(readme)


@pytest.mark.parametrize("argv,message", [
    (["9lives"], "must start with a letter"),
    (["ok", "--from", "nowhere"], "expected a run folder"),
])
def test_bad_input_gets_one_sentence_and_writes_nothing(tmp_path, capsys, argv, message):
    assert new_project_cli([*argv, "--dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err and not list(tmp_path.iterdir())
