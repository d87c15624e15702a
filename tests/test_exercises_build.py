"""The exercise generator: stubs keep hints and name their task, builds are byte-identical, drift is reported by
file name, and malformed markers or headers are errors naming the notebook and cell."""
import re

import nbformat
import pytest

from mlre_lab.lab.exercises import (
    BEGIN,
    END,
    ExerciseFormatError,
    build_all,
    build_exercise,
    exercises_cli,
    parse_tasks,
    read_tasks,
)

from .conftest import BIN, ROOT, run


def md(text):
    return nbformat.v4.new_markdown_cell(text)


def code(text):
    return nbformat.v4.new_code_cell(text)


HEADER = "## Task {n}: {title}\n\ndifficulty: 2 · importance: 3 · minutes: 15 · points: {points}\n\nSome prose."
SOLVED = '''import torch

def masked_mean(x, mask):
    "Mean of `x` over the positions where `mask` is True."
    ### BEGIN SOLUTION
    # HINT: count the True positions along the last dimension
    total = (x * mask).sum(-1)  # HINT
    return total / mask.sum(-1)
    ### END SOLUTION

print("defined")'''


def solution(cells=None):
    return nbformat.v4.new_notebook(cells=cells or [
        md("# Tensors\n\nIntro."),
        code("from mlre_lab.core import default_device"),
        md(HEADER.format(n=1, title="masked mean", points=2)),
        code(SOLVED),
        code("check_masked_mean(masked_mean)"),
        md(HEADER.format(n=2, title="a causal mask", points=1)),
        code("### BEGIN SOLUTION\ncausal = torch.ones(4, 4).tril().bool()\n### END SOLUTION"),
        code("check_causal(causal)"),
        md("## Summary\n\nThat was it."),
    ])


@pytest.fixture
def lab(tmp_path):
    (tmp_path / "solutions").mkdir()
    nbformat.write(solution(), tmp_path / "solutions" / "01_tensors.ipynb")
    return tmp_path


def test_stub_keeps_hints_indentation_and_names_the_task():
    ex = build_exercise(solution(), "01_tensors.ipynb")
    assert ex.cells[3].source == '''import torch

def masked_mean(x, mask):
    "Mean of `x` over the positions where `mask` is True."
    # Hint: count the True positions along the last dimension
    total = (x * mask).sum(-1)
    raise NotImplementedError("Task 1: implement masked_mean")

print("defined")'''
    assert ex.cells[6].source == 'raise NotImplementedError("Task 2: a causal mask")'
    assert "return total" not in nbformat.writes(ex) and "tril" not in nbformat.writes(ex)


def test_markdown_and_check_cells_are_kept_verbatim():
    sol, ex = solution(), build_exercise(solution(), "x")
    for i in (0, 1, 2, 4, 5, 7, 8):
        assert ex.cells[i].source == sol.cells[i].source and ex.cells[i].cell_type == sol.cells[i].cell_type


def test_the_stub_compiles_and_raises_naming_the_task():
    ex = build_exercise(solution(), "x")
    namespace = {}
    exec(ex.cells[3].source, namespace)
    with pytest.raises(NotImplementedError, match="Task 1: implement masked_mean"):
        namespace["masked_mean"](namespace["torch"].ones(3), namespace["torch"].ones(3))


def test_output_is_clean_and_deterministic(lab):
    dirty = solution()
    dirty.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="defined\n")]
    dirty.cells[3].execution_count = 7
    dirty.cells[3].metadata = {"tags": ["x"]}
    dirty.metadata["widgets"] = {"state": {}}
    nbformat.write(dirty, lab / "solutions" / "01_tensors.ipynb")
    assert exercises_cli(["build", "--solutions", str(lab / "solutions"), "--out", str(lab / "exercises")]) == 0
    path = lab / "exercises" / "01_tensors.ipynb"
    first = path.read_bytes()
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    # the solution's own cell metadata is dropped; task cells carry only the tag that keeps Run All going
    assert all(c.metadata in ({}, {"tags": ["raises-exception"]}) for c in nb.cells)
    assert nb.cells[3].metadata == {"tags": ["raises-exception"]}
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert set(nb.metadata) <= {"kernelspec", "language_info"}
    path.unlink()
    build_all(lab / "solutions", lab / "exercises")
    assert path.read_bytes() == first


def test_check_names_each_drifted_missing_and_extra_file(lab, capsys):
    nbformat.write(solution(), lab / "solutions" / "02_autograd.ipynb")
    args = ["--solutions", str(lab / "solutions"), "--out", str(lab / "exercises")]
    assert exercises_cli(["build", *args]) == 0
    assert exercises_cli(["build", "--check", *args]) == 0
    edited = lab / "exercises" / "01_tensors.ipynb"
    edited.write_text(edited.read_text().replace("Some prose.", "Edited prose."))
    (lab / "exercises" / "02_autograd.ipynb").unlink()
    (lab / "exercises" / "99_orphan.ipynb").write_text("{}")
    capsys.readouterr()
    assert exercises_cli(["build", "--check", *args]) == 1
    out = capsys.readouterr().out
    assert f"{edited} differs" in out
    assert "02_autograd.ipynb is missing" in out
    assert "99_orphan.ipynb has no solution notebook" in out
    assert "Edited prose." in edited.read_text()  # --check writes nothing


@pytest.mark.parametrize("cell_source, message", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1", "cell 3, line 2: '### BEGIN SOLUTION' is never closed"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### END SOLUTION", "cell 3, line 2: .*nest"),
    ("x = 1\n### END SOLUTION", "cell 3, line 2: '### END SOLUTION' without"),
])
def test_malformed_markers_name_notebook_and_cell(lab, cell_source, message):
    nb = solution()
    nb.cells[3] = code(cell_source)
    with pytest.raises(ExerciseFormatError, match=f"01_tensors.ipynb, {message}"):
        build_exercise(nb, "solutions/01_tensors.ipynb")


def test_markers_outside_code_or_outside_tasks_are_errors():
    nb = solution()
    nb.cells[2].source += "\n\n### BEGIN SOLUTION"
    with pytest.raises(ExerciseFormatError, match="s.ipynb, cell 2: solution markers in a markdown cell"):
        build_exercise(nb, "s.ipynb")
    nb = solution()
    nb.cells[1] = code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    with pytest.raises(ExerciseFormatError, match="s.ipynb, cell 1, line 1: a solution region outside any task"):
        build_exercise(nb, "s.ipynb")


@pytest.mark.parametrize("header, message", [
    ("## Task 1 masked mean\ndifficulty: 2 · importance: 3 · minutes: 15 · points: 2", "not of the form"),
    ("## Task 1: masked mean\n\nNo metadata.", "needs a line"),
    ("## Task 1: masked mean\ndifficulty: 0 · importance: 3 · minutes: 15 · points: 2", "difficulty 0"),
    ("## Task 1: masked mean\ndifficulty: 2 · importance: 9 · minutes: 15 · points: 2", "importance 9"),
    ("## Task 1: masked mean\ndifficulty: 2 · importance: 3 · minutes: 0 · points: 2", "minutes 0"),
    ("## Task 2: masked mean\ndifficulty: 2 · importance: 3 · minutes: 15 · points: 2", "should be Task 1"),
])
def test_bad_task_headers_name_notebook_and_cell(header, message):
    nb = solution()
    nb.cells[2] = md(header)
    with pytest.raises(ExerciseFormatError, match=f"s.ipynb, cell 2: .*{message}"):
        parse_tasks(nb, "s.ipynb")


def test_cli_reports_a_malformed_notebook_with_exit_2(lab, capsys):
    nb = solution()
    nb.cells[3] = code("### BEGIN SOLUTION")
    nbformat.write(nb, lab / "solutions" / "01_tensors.ipynb")
    assert exercises_cli(["build", "--solutions", str(lab / "solutions"), "--out", str(lab / "exercises")]) == 2
    assert "01_tensors.ipynb, cell 3, line 1" in capsys.readouterr().out
    assert exercises_cli(["build", "--solutions", str(lab / "nowhere")]) == 2


def test_parse_tasks_gives_metadata_and_cell_ranges():
    tasks = parse_tasks(solution(), "s.ipynb")
    assert [(t.number, t.title, t.difficulty, t.importance, t.minutes, t.points) for t in tasks] == [
        (1, "masked mean", 2, 3, 15, 2), (2, "a causal mask", 2, 3, 15, 1)]
    assert tasks[0].cells == range(2, 5) and tasks[1].cells == range(5, 8)  # the summary heading ends task 2


def test_the_mlre_command_defaults_to_solutions_and_exercises_in_the_current_folder(lab):
    out = run([str(BIN / "mlre"), "exercises", "build"], cwd=lab)
    assert out.returncode == 0 and "wrote exercises/01_tensors.ipynb" in out.stdout, out.stdout + out.stderr
    out = run([str(BIN / "mlre"), "exercises", "build", "--check"], cwd=lab)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_committed_exercises_are_what_the_generator_produces(capsys):
    # The suite's `mlre exercises build --check`: exercises/ must be regenerated whenever solutions/ change.
    code = exercises_cli(["build", "--check", "--solutions", str(ROOT / "solutions"), "--out", str(ROOT / "exercises")])
    assert code == 0, capsys.readouterr().out


HINTS = re.compile(r"<details><summary>(Hint \d: [^<]*)</summary>\n\n(.*?)\n</details>", re.S)


def solution_lines(source: str) -> list[str]:
    "The non-trivial lines inside the solution regions of a cell: the code a learner must write."
    inside, lines = False, []
    for line in source.splitlines():
        if line.strip() in (BEGIN, END):
            inside = line.strip() == BEGIN
        elif inside and len(line.strip()) >= 20 and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_task_has_collapsed_hints_that_leave_the_code_to_the_learner(path):
    nb = nbformat.read(path, as_version=4)
    for task in read_tasks(path):
        cells = nb.cells[task.start:task.stop]
        where = f"{path.relative_to(ROOT)}, Task {task.number}"
        hints = HINTS.findall("\n".join(c.source for c in cells if c.cell_type == "markdown"))
        assert [summary for summary, _ in hints] == ["Hint 1: the idea", "Hint 2: the approach"], (
            f"{where}: needs two collapsed hints, '<details><summary>Hint 1: the idea</summary>' then "
            f"'Hint 2: the approach', found {[summary for summary, _ in hints]}")
        code = "\n".join(c.source for c in cells if c.cell_type == "code")
        assert "# HINT:" not in code, f"{where}: a '# HINT:' comment in the stub; move it into the collapsed hints"
        given_away = [line for line in solution_lines(code) if any(line in text for _, text in hints)]
        assert not given_away, f"{where}: a hint gives the solution's code away: {given_away}"
