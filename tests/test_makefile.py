"The two README commands: clear messages for a missing prerequisite, and no reinstall when nothing changed."
import shutil

import pytest

from .conftest import ROOT, run

MAKE = shutil.which("make")


@pytest.fixture
def project(tmp_path):
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def fake_python(folder, version: str):
    script = folder / "python-old"
    script.write_text(f'#!/bin/sh\n[ "$1" = "-V" ] && echo "Python {version}" && exit 0\nexit 1\n')
    script.chmod(0o755)
    return script


def test_old_python_gets_one_clear_sentence(project):
    out = run([MAKE, "install", f"PYTHON={fake_python(project, '3.9.18')}"], cwd=project)
    assert out.returncode != 0
    assert "needs Python 3.10 or newer" in out.stdout + out.stderr and "3.9.18" in out.stdout + out.stderr
    assert not (project / ".venv").exists()


def test_missing_python_is_named(project):
    out = run([MAKE, "install", "PYTHON=python-does-not-exist"], cwd=project)
    assert out.returncode != 0 and "'python-does-not-exist' was not found" in out.stdout + out.stderr


def test_missing_git_is_named(project, tmp_path_factory):
    bare = tmp_path_factory.mktemp("bin")  # a PATH with a shell but no git
    for tool in ("sh", "bash", "cut"):
        (bare / tool).symlink_to(shutil.which(tool))
    out = run([MAKE, "install"], cwd=project, env={"PATH": str(bare)})
    assert out.returncode != 0 and "mlre-lab needs git" in out.stdout + out.stderr


def test_install_is_skipped_when_nothing_changed():
    # make test installs first, so by now the stamp is newer than the requirements.
    out = run([MAKE, "--question", "install"])
    assert out.returncode == 0, "make install would run again although pyproject.toml and constraints.txt are unchanged"


def test_lab_binds_localhost_with_a_token():
    out = run([MAKE, "--dry-run", "lab", "TOKEN=abc123"])
    assert out.returncode == 0
    assert "--ServerApp.ip=127.0.0.1" in out.stdout and 'token="abc123"' in out.stdout
    assert '--IdentityProvider.token="$token"' in out.stdout and "--ServerApp.port_retries=0" in out.stdout
    assert "nbs/index.ipynb" in out.stdout


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
