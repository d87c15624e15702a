"mlre_lab.core: device choice, seeding and the environment capture."
import random

import numpy as np
import pytest
import torch

from mlre_lab.core import (
    DEVICE_ENV,
    DeviceError,
    available_devices,
    default_device,
    environment,
    environment_markdown,
    seed_everything,
)


def test_default_device_is_best_available(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert default_device().type == available_devices()[0]
    assert available_devices()[-1] == "cpu"


def test_env_var_wins(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert default_device() == torch.device("cpu")


@pytest.mark.parametrize("missing", [d for d in ["cuda", "mps"] if d not in available_devices()] or ["xla"])
def test_unavailable_device_names_the_variable_and_what_exists(monkeypatch, missing):
    monkeypatch.setenv(DEVICE_ENV, missing)
    with pytest.raises(DeviceError) as err:
        default_device()
    assert DEVICE_ENV in str(err.value) and "cpu" in str(err.value)


def test_nonsense_device_name(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "gpu0")
    with pytest.raises(DeviceError, match="not a device name"):
        default_device()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_index_out_of_range(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, f"cuda:{torch.cuda.device_count()}")
    with pytest.raises(DeviceError, match="only"):
        default_device()


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(2).tolist()
    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first


def test_seed_everything_reports_and_toggles_determinism():
    try:
        report = seed_everything(7, deterministic=True)
        assert report["seed"] == 7 and report["deterministic_algorithms"] is True
        assert torch.are_deterministic_algorithms_enabled()
        assert report["cublas_workspace_config"]
    finally:
        report = seed_everything(7)
    assert report["deterministic_algorithms"] is False and not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("bad", [-1, 2**32, 0.5, "1", None, True])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)


def test_environment_fields(root):
    env = environment(root)
    assert env["torch"] == torch.__version__
    assert env["cpu_count"] >= 1 and env["gpu_count"] == len(env["gpu_names"])
    assert env["packages"]["numpy"] == np.__version__
    assert env["packages"]["mlre-lab"] is not None
    assert env["git_commit"] is None or len(env["git_commit"]) == 40
    assert env["git_dirty"] in (True, False, None)


def test_environment_outside_git(tmp_path):
    env = environment(tmp_path)
    assert env["git_commit"] is None and env["git_dirty"] is None


def test_environment_sees_a_dirty_tree(tmp_path):
    import subprocess
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    assert environment(tmp_path)["git_dirty"] is False
    (tmp_path / "f.txt").write_text("b")
    env = environment(tmp_path)
    assert env["git_dirty"] is True and len(env["git_commit"]) == 40


def test_environment_markdown_is_a_table():
    env = {"python": "3.11", "gpu_names": [], "cudnn": None, "packages": {"numpy": "2.0", "einops": None}}
    lines = environment_markdown(env).splitlines()
    assert lines[:2] == ["| what | value |", "|---|---|"]
    assert lines[2:] == ["| python | 3.11 |", "| gpu_names | none |", "| cudnn | n/a |", "| numpy | 2.0 |",
                         "| einops | not installed |"]
