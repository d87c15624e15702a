"""The package's three layers and their one-way imports (DESIGN.md, "Three layers, imports one way"):

    lab      mlre_lab.lab.*      may import anything
    checks   mlre_lab.checks.*   imports the library and the teaching references
    scratch  mlre_lab.scratch.*  teaching references, not API: imports the library only
    library  everything else     imports neither

Every import in every module is read from its syntax tree (those inside functions too), so a lazy import against the
direction is caught as well. Each rule is also shown to fail on a package with a planted violation."""
import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from .conftest import ROOT

PACKAGE = ROOT / "mlre_lab"
LAYERS = ("library", "scratch", "checks", "lab")  # each may import the layers before it, and itself
TEST_MACHINERY = ("pytest", "unittest", "hypothesis", "nbval", "nbclient", "jupyter_client", "nbformat")
# Import names of the packages `pip install mlre-lab` brings (declared in pyproject.toml, or what they pull in).
IMPORT_NAMES = {"scikit-learn": "sklearn", "ipykernel": "ipykernel", "tensorboard": "tensorboard"}
ALSO_INSTALLED = {"IPython", "jupyter_client"}  # brought in by ipykernel and nbclient


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("scratch", "checks", "lab") else "library"


def modules(package: Path, name: str) -> dict[str, Path]:
    "Dotted module name -> file, for every module of the package but nbdev's index."
    found = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).with_suffix("").parts
        if rel[-1] == "_modidx":
            continue
        found[".".join((name, *rel[:-1])) if rel[-1] == "__init__" else ".".join((name, *rel))] = path
    return found


def imports(module: str, path: Path, is_package: bool) -> list[tuple[int, str, bool]]:
    "(line, imported module, at module level) for every import in the file, relative ones resolved."
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(node) for node in tree.body}
    base = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append((node.lineno, target, id(node) in top))
            if node.module is None or node.level:  # `from . import x` may import submodule x
                found += [(node.lineno, f"{target}.{alias.name}", id(node) in top) for alias in node.names]
    return found


def import_violations(package: Path, name: str = "mlre_lab") -> list[str]:
    "Every import that points against the direction of the layers, as 'file:line: rule'."
    problems = []
    for module, path in modules(package, name).items():
        here = layer(module)
        for line, target, _ in imports(module, path, path.name == "__init__.py"):
            where = f"{path.relative_to(package.parent)}:{line}"
            if target == "tests" or target.startswith("tests."):
                problems.append(f"{where}: {module} imports the test suite ({target})")
            if not (target == name or target.startswith(name + ".")):
                if here == "library" and target.split(".")[0] in TEST_MACHINERY:
                    problems.append(f"{where}: library module {module} imports test machinery ({target})")
                continue
            there = layer(target)
            if LAYERS.index(there) > LAYERS.index(here):
                problems.append(f"{where}: {here} module {module} imports {there} module {target}: "
                                f"the {here} layer may import only {', '.join(LAYERS[:LAYERS.index(here) + 1])}")
    return problems


def public_definitions(package: Path, name: str = "mlre_lab") -> dict[str, list[str]]:
    "Public name -> the modules that define it (def, class or assignment at module level)."
    owners: dict[str, list[str]] = {}
    for module, path in modules(package, name).items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
            else:
                continue
            for n in names:
                if not n.startswith("_"):
                    owners.setdefault(n, []).append(module)
    return owners


def name_clashes(package: Path, name: str = "mlre_lab") -> list[str]:
    return [f"{n} is defined in {', '.join(mods)}: give each meaning its own name"
            for n, mods in sorted(public_definitions(package, name).items()) if len(mods) > 1]


def declared_imports() -> set[str]:
    "Import names of the runtime dependencies in pyproject.toml (not the extras)."
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].strip() for d in deps}
    return {IMPORT_NAMES.get(n, n.replace("-", "_")) for n in names} | ALSO_INSTALLED


def undeclared_imports(package: Path, name: str = "mlre_lab") -> list[str]:
    "Module-level imports of third-party packages that `pip install mlre-lab` does not bring."
    allowed = declared_imports() | set(sys.stdlib_module_names) | {name, "__future__"}
    problems = []
    for module, path in modules(package, name).items():
        for line, target, at_top in imports(module, path, path.name == "__init__.py"):
            if at_top and target.split(".")[0] not in allowed:
                problems.append(f"{path.relative_to(package.parent)}:{line}: {module} imports {target} at module "
                                f"level, but it is not a dependency: import it inside the function that needs it, "
                                f"with mlre_lab.core.require_extra")
    return problems


# ---- the real package -------------------------------------------------------------------------------------------

def test_the_package_has_all_four_layers():
    found = {layer(m) for m in modules(PACKAGE, "mlre_lab")}
    assert found == set(LAYERS), found


def test_imports_go_one_way():
    problems = import_violations(PACKAGE)
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_no_public_name_has_two_meanings():
    clashes = name_clashes(PACKAGE)
    assert not clashes, "\n".join(clashes)


def test_optional_dependencies_are_imported_where_they_are_used():
    problems = undeclared_imports(PACKAGE)
    assert not problems, "\n".join(problems)


def test_importing_the_library_loads_no_course_machinery():
    library = sorted(m for m in modules(PACKAGE, "mlre_lab") if layer(m) == "library" and m != "mlre_lab")
    code = textwrap.dedent(f"""
        import importlib, json, sys
        import torch  # torch itself loads unittest.mock: count only what the library adds
        before = set(sys.modules)
        for name in {library!r}:
            importlib.import_module(name)
        print(json.dumps(sorted(set(sys.modules) - before)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = __import__("json").loads(out.stdout.splitlines()[-1])
    course = [m for m in loaded if layer(m) != "library" and m.startswith("mlre_lab.")]
    machinery = [m for m in loaded if m.split(".")[0] in TEST_MACHINERY or m == "tests" or m.startswith("tests.")]
    assert not course, f"importing the library loaded {course}"
    assert not machinery, f"importing the library loaded test machinery: {machinery}"


def test_the_readme_command_lists_only_library_modules():
    # The layout's acceptance check, exactly as the README gives it.
    cmd = "import mlre_lab.train.data, sys; print(sorted(m for m in sys.modules if m.startswith('mlre_lab')))"
    out = subprocess.run([sys.executable, "-c", cmd], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    listed = ast.literal_eval(out.stdout.strip())
    assert "mlre_lab.train.data" in listed and all(layer(m) == "library" for m in listed), listed


# ---- each rule fails on a planted violation ---------------------------------------------------------------------

def plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "mlre_lab"
    for rel, text in {"__init__.py": "", "checks/__init__.py": "", "lab/__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize("files, expected", [
    ({"core.py": "from .checks.harness import Check\n"},
     r"mlre_lab/core.py:1: library module mlre_lab.core imports checks module mlre_lab.checks.harness"),
    ({"nn/attention.py": "def f():\n    from mlre_lab.lab import grader\n"},
     r"mlre_lab/nn/attention.py:2: library module mlre_lab.nn.attention imports lab module mlre_lab.lab"),
    ({"checks/tensors.py": "from ..lab.grader import grade\n"},
     r"mlre_lab/checks/tensors.py:1: checks module mlre_lab.checks.tensors imports lab module mlre_lab.lab.grader"),
    ({"scratch/autograd.py": "from mlre_lab.checks import harness\n"},
     r"scratch module mlre_lab.scratch.autograd imports checks module mlre_lab.checks"),
    ({"train/loop.py": "from unittest import mock\n"},
     r"mlre_lab/train/loop.py:1: library module mlre_lab.train.loop imports test machinery \(unittest\)"),
])
def test_a_planted_import_against_the_layers_is_named(tmp_path, files, expected):
    problems = import_violations(plant(tmp_path, files))
    assert any(re.search(expected, p) for p in problems), problems


def test_imports_with_the_direction_are_allowed(tmp_path):
    root = plant(tmp_path, {"core.py": "import torch\n", "checks/harness.py": "from ..core import x\n",
                            "lab/grader.py": "from mlre_lab.checks.harness import y\nfrom ..scratch import z\n"})
    assert import_violations(root) == []


def test_a_planted_name_clash_is_named(tmp_path):
    root = plant(tmp_path, {"scratch/tensors.py": "def causal_mask(seq): ...\n",
                            "nn/attention.py": "def causal_mask(seq_q, seq_k): ...\n_private = 1\n"})
    assert name_clashes(root) == ["causal_mask is defined in mlre_lab.nn.attention, mlre_lab.scratch.tensors: "
                                  "give each meaning its own name"]


def test_a_planted_module_level_optional_import_is_named(tmp_path):
    root = plant(tmp_path, {"sweep.py": "import ray\n\ndef run():\n    import ray  # inside a function: fine\n"})
    problems = undeclared_imports(root)
    assert len(problems) == 1 and problems[0].startswith("mlre_lab/sweep.py:1:") and "ray" in problems[0]
