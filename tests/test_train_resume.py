"A run killed with SIGKILL at any point and resumed ends bitwise identical to one that was never interrupted."
import json
import signal
import subprocess
import time

import torch

from mlre_lab.train.checkpoint import load_checkpoint
from mlre_lab.train.loop import Run

from .train_helpers import BIN, mlre, tiny_config

MAX_STEPS = 48
TIMING = {"ms_per_step", "tokens_per_s"}


def last_step(run: Run) -> int:
    return max((r["step"] for r in run.metrics()), default=-1)


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "mlre"), "train", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, ready) -> bool:
    "SIGKILL `proc` as soon as `ready()` holds; False if it finished first."
    while proc.poll() is None:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    return False


def assert_same_tree(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_tree(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_sigkill_at_several_points_then_resume_is_bitwise_identical(tmp_path):
    config = tiny_config(tmp_path, model={"n_layer": 2, "d_model": 64, "block_size": 32}, max_steps=MAX_STEPS,
                         batch_size=8, log_interval=1, ckpt_interval=5, eval_interval=8, keep_checkpoints=2)
    runs = tmp_path / "runs"
    reference = mlre("train", config, "--runs-dir", runs, "--name", "reference")
    assert reference.returncode == 0, reference.stderr

    victim = Run(runs / "victim")
    # 1. killed while starting up, before any checkpoint exists: nothing to resume, and the name is free again
    proc = start(config, "--runs-dir", runs, "--name", "victim")
    assert kill_when(proc, lambda: (victim.path / "status.json").exists())
    refused = mlre("train", "--resume", "victim", "--runs-dir", runs)
    assert refused.returncode == 2 and "nothing to resume" in refused.stderr
    # 2.-4. killed at later and later steps: after the first checkpoint, between checkpoints, near the end
    kills = 0
    for target in (7, 17, 36):
        how = ("--resume", "victim") if target > 7 else (config, "--name", "victim")
        proc = start(*how, "--runs-dir", runs)
        kills += kill_when(proc, lambda t=target: last_step(victim) >= t)
        assert victim.status() in ("killed", "finished")
    assert kills >= 2, "the runs finished before they could be killed: make the test model slower"
    final = mlre("train", "--resume", "victim", "--runs-dir", runs)
    assert final.returncode == 0, final.stderr
    assert victim.status() == "finished"

    ref_run = Run(runs / "reference")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]
    rows = victim.metrics()
    assert strip(rows) == strip(ref_run.metrics())
    train_steps = [r["step"] for r in rows if "loss" in r]
    assert train_steps == list(range(1, MAX_STEPS + 1)), "steps missing or repeated in metrics.jsonl"

    mine = load_checkpoint(victim.checkpoints / f"ckpt_{MAX_STEPS:08d}.pt")
    theirs = load_checkpoint(ref_run.checkpoints / f"ckpt_{MAX_STEPS:08d}.pt")
    assert_same_tree(mine, theirs)  # weights, optimizer moments, schedule, data position and RNG states
    assert json.loads((victim.path / "status.json").read_text())["step"] == MAX_STEPS


def test_a_run_with_the_scratch_adamw_resumes_bitwise(tmp_path):
    # optim.impl names lesson 02's AdamW, a torch.optim.Optimizer: its moments live in its state_dict, so a run
    # killed mid-way and resumed from a checkpoint ends exactly where one that was never interrupted ends.
    config = tiny_config(tmp_path, max_steps=24, log_interval=1, ckpt_interval=4, eval_interval=8)
    config.write_text(config.read_text().replace("[optim]\n", '[optim]\nimpl = "mlre_lab.scratch.autograd:AdamW"\n'))
    runs = tmp_path / "runs"
    reference = mlre("train", config, "--runs-dir", runs, "--name", "reference")
    assert reference.returncode == 0, reference.stderr
    victim = Run(runs / "victim")
    proc = start(config, "--runs-dir", runs, "--name", "victim")
    killed = kill_when(proc, lambda: last_step(victim) >= 10)
    resumed = mlre("train", "--resume", "victim", "--runs-dir", runs)
    assert resumed.returncode == 0, resumed.stderr
    mine = load_checkpoint(victim.checkpoints / "ckpt_00000024.pt")
    theirs = load_checkpoint(Run(runs / "reference").checkpoints / "ckpt_00000024.pt")
    assert killed or mine["step"] == 24
    assert set(mine["optimizer"]["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}  # the scratch AdamW's state
    assert_same_tree(mine, theirs)


def test_an_optimizer_path_that_is_not_an_optimizer_is_refused(tmp_path):
    config = tiny_config(tmp_path)
    config.write_text(config.read_text().replace("[optim]\n", '[optim]\nimpl = "mlre_lab.train.loop:Run"\n'))
    out = mlre("train", config, "--runs-dir", tmp_path / "runs")
    assert out.returncode != 0 and "is not a torch.optim.Optimizer subclass" in out.stdout + out.stderr
