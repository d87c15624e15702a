"Shared fixtures: the repository root and a way to run the project's own executables."
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path = ROOT, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    "Run a command, capturing text output; `env` entries are added to the current environment."
    return subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def copy_project(dest: Path) -> None:
    "Copy what nbdev works from (config, notebooks, package) into `dest`, so its commands cannot touch this tree."
    for name in ("pyproject.toml", "nbs", "mlre_lab"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else:
            shutil.copy(src, dest / name)


@pytest.fixture
def root() -> Path:
    return ROOT
