"The mlre console script: help, doctor, and its failures."
import os

import pytest

from mlre_lab.core import available_devices
from mlre_lab.lab.cli import COMMANDS, main

from .conftest import BIN, run

MLRE = str(BIN / "mlre")


def test_help_lists_every_command():
    out = run([MLRE, "--help"])
    assert out.returncode == 0
    for name in COMMANDS:
        assert f"  {name}" in out.stdout


def test_version():
    from mlre_lab import __version__
    out = run([MLRE, "--version"])
    assert out.returncode == 0 and __version__ in out.stdout


def test_unknown_command_lists_the_real_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["doctr"])
    assert exit_.value.code == 2
    assert "unknown command 'doctr'" in capsys.readouterr().err


def test_registry_targets_are_well_formed():
    for name, (target, summary) in COMMANDS.items():
        module, _, func = target.partition(":")
        assert module.startswith("mlre_lab.") and func and summary, name


def test_doctor_passes_on_this_install():
    out = run([MLRE, "doctor"], env={"MLRE_DEVICE": ""})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "| torch |" in out.stdout and "3 of 3 checks passed" in out.stdout


@pytest.mark.parametrize("missing", [d for d in ["cuda", "mps"] if d not in available_devices()] or ["xla"])
def test_doctor_fails_on_a_missing_device(missing):
    out = run([MLRE, "doctor"], env={"MLRE_DEVICE": missing})
    assert out.returncode == 1
    assert "FAIL  MLRE_DEVICE" in out.stdout


def test_doctor_fails_without_the_kernel(tmp_path):
    # An empty home and data dir: the per-user kernel registration is not visible.
    env = {"HOME": str(tmp_path), "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"), "XDG_DATA_HOME": str(tmp_path),
           "MLRE_DEVICE": ""}
    out = run([MLRE, "doctor"], env=env)
    assert out.returncode == 1
    assert "FAIL  Jupyter kernel 'mlre-lab' is not registered" in out.stdout


def test_doctor_json():
    import json
    out = run([MLRE, "doctor", "--json"], env={"MLRE_DEVICE": ""})
    env = json.loads(out.stdout.split("\n\n")[0])
    assert env["python"] and "packages" in env


def test_doctor_rejects_unknown_flags():
    out = run([MLRE, "doctor", "--frobnicate"])
    assert out.returncode == 2 and "unrecognized arguments" in out.stderr


def test_help_does_not_import_torch():
    out = run([str(BIN / "python"), "-c",
               "import sys; from mlre_lab.lab.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n"
               "print('torch' in sys.modules)"], env={"PYTHONWARNINGS": "ignore"})
    assert out.stdout.strip().endswith("False"), out.stdout + out.stderr
    assert os.path.exists(MLRE)
