"""Every day of the roadmap points at something that exists: its lesson notebook, its exercise set (generated and
answer key), the template or drill it names, and a deliverable. The failure names every missing target."""
import importlib
from collections import Counter

from mlre_lab.lab.roadmap import ROADMAP, TEMPLATES

from .conftest import ROOT


def missing_targets(root=ROOT) -> list[str]:
    "One line per target a day names that is not in the lab at `root`."
    missing = []
    for d in ROADMAP:
        targets = [f"nbs/{d.lesson}.ipynb"]
        if d.exercise:
            targets += [f"exercises/{d.exercise}.ipynb", f"solutions/{d.exercise}.ipynb"]
        missing += [f"day {d.day}: {t} does not exist" for t in targets if not (root / t).is_file()]
        if d.template is not None:
            if d.template not in TEMPLATES:
                missing.append(f"day {d.day}: unknown template {d.template!r}")
            else:
                module, _, func = TEMPLATES[d.template][1].partition(":")
                try:
                    callable(getattr(importlib.import_module(module), func))
                except (ImportError, AttributeError):
                    missing.append(f"day {d.day}: template {d.template!r} needs {TEMPLATES[d.template][1]}")
        if not d.deliverable.strip():
            missing.append(f"day {d.day}: no deliverable")
    return missing


def test_every_day_points_at_something_that_exists():
    missing = missing_targets()
    assert not missing, f"{len(missing)} missing roadmap target(s):\n" + "\n".join(missing)


def test_the_walk_fails_on_a_missing_target(tmp_path):
    (tmp_path / "nbs").mkdir()
    missing = missing_targets(tmp_path)
    assert "day 1: nbs/00_core.ipynb does not exist" in missing
    assert "day 5: exercises/01_tensors.ipynb does not exist" in missing


def test_every_day_has_a_lesson_and_the_counts_add_up():
    kinds = Counter()
    for d in ROADMAP:
        kinds["lesson"] += 1
        kinds["exercise set"] += d.exercise is not None
        kinds["template or drill"] += d.template is not None
    assert kinds["lesson"] == 90 and kinds["exercise set"] >= 40 and kinds["template or drill"] >= 10, kinds
