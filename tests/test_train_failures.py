"""Training failures a user can cause are one sentence and exit code 2, leave no half-made run behind, and an
interrupted or damaged run resumes from a checkpoint that says where it is."""
import hashlib
import os
import resource
import signal
import threading
import time

import pytest
import torch

from mlre_lab.train.checkpoint import (
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from mlre_lab.train.loop import Run, train_cli

from .train_helpers import tiny_config


def fails_in_one_sentence(capsys, argv, *words):
    "train_cli(argv) exits 2 with one line naming `words`, and no traceback."
    assert train_cli(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.mark.parametrize("case", ["empty folder", "binary file", "missing device", "float16 on a CPU",
                                  "block_size longer than the validation split"])
def test_user_errors_are_one_sentence_and_leave_no_run(tmp_path, capsys, case):
    config, runs = tiny_config(tmp_path), tmp_path / "runs"
    argv = [str(config), "--runs-dir", str(runs), "--name", "broken"]
    if case == "empty folder":
        (tmp_path / "emptydir").mkdir()
        argv += ["--set", f"data.corpus={tmp_path / 'emptydir'}"]
        words = ["emptydir cannot be used", "holds no files"]
    elif case == "binary file":
        (tmp_path / "binary.bin").write_bytes(b"just text for a while, then" + bytes([0xd0, 0x00, 0xff]) * 10)
        argv += ["--set", f"data.corpus={tmp_path / 'binary.bin'}"]
        words = ["binary.bin: not UTF-8"]
    elif case == "missing device":
        argv += ["--set", "train.device=cuda:99"]
        words = ["train.device = 'cuda:99'"]
    elif case == "float16 on a CPU":
        argv += ["--set", "train.dtype=float16", "--set", "train.device=cpu"]
        words = ["train.dtype = 'float16' needs a CUDA device"]
    else:
        argv += ["--set", "model.block_size=20000"]
        words = ["model.block_size = 20000", "the val split"]
    fails_in_one_sentence(capsys, argv, *words)
    assert not (runs / "broken").exists(), "a run that never started keeps no folder"


def test_mlre_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("MLRE_DEBUG", "1")
    with pytest.raises(Exception, match="cuda:99"):
        train_cli([str(tiny_config(tmp_path)), "--runs-dir", str(tmp_path / "runs"), "--set", "train.device=cuda:99"])


def test_a_full_disk_is_one_sentence(tmp_path, capsys):
    config, runs = tiny_config(tmp_path), tmp_path / "runs"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))  # the first checkpoint is about 170 kB
    try:
        code = train_cli([str(config), "--runs-dir", str(runs), "--name", "full", "--set", "train.keep_checkpoints=1",
                          "--set", "train.ckpt_interval=4"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "ckpt_00000004.pt: File too large" in err, err
    assert not (runs / "full").exists()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    "A tiny run that finished, with checkpoints at steps 8 and 12 (ckpt_interval 4, keep 2)."
    tmp = tmp_path_factory.mktemp("finished")
    config, runs = tiny_config(tmp, max_steps=12), tmp / "runs"
    assert train_cli([str(config), "--runs-dir", str(runs), "--name", "done"]) == 0
    return Run(runs / "done"), config


def test_resuming_an_edited_config_is_one_sentence(finished, tmp_path, capsys):
    run, _ = finished
    edited = tmp_path / "edited"
    edited.mkdir()
    for name in ("config.toml", "tokenizer.json", "data.json"):
        (edited / name).write_bytes((run.path / name).read_bytes())
    (edited / "checkpoints").mkdir()
    for p in run.checkpoints.iterdir():
        (edited / "checkpoints" / p.name).write_bytes(p.read_bytes())
    (edited / "config.toml").write_text((edited / "config.toml").read_text().replace("d_model = 32", "d_model = 64"))
    err = fails_in_one_sentence(capsys, ["--resume", str(edited)], "does not fit the model", "config.toml",
                                "size mismatch")
    assert "ckpt_00000012.pt" in err


def test_resume_says_its_step_and_refuses_when_there_is_nothing(tmp_path, capsys):
    config, runs = tiny_config(tmp_path, max_steps=8, ckpt_interval=4), tmp_path / "runs"
    assert train_cli([str(config), "--runs-dir", str(runs), "--name", "r", "--set", "train.max_steps=6"]) == 0
    capsys.readouterr()
    run = Run(runs / "r")
    # keep only the step-4 checkpoint, and leave behind the temporary file of a write that was killed
    for p in run.checkpoints.glob("ckpt_00000006.pt*"):
        p.unlink()
    stale = run.checkpoints / f".ckpt_00000008.pt.{2**22 + 12345}.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert train_cli(["--resume", "r", "--runs-dir", str(runs)]) == 0
    err = capsys.readouterr().err
    assert f"resuming {run.path} from step 4 (ckpt_00000004.pt)" in err and not stale.exists()

    nothing = Run(runs / "nothing")
    nothing.path.mkdir()
    (nothing.path / "config.toml").write_text((run.path / "config.toml").read_text())
    err = fails_in_one_sentence(capsys, ["--resume", "nothing", "--runs-dir", str(runs)], "nothing to resume",
                                "no valid checkpoint")
    assert not nothing.checkpoints.exists() or not list(nothing.checkpoints.iterdir())
    # the name of a run that never reached a checkpoint is free again
    assert train_cli([str(config), "--runs-dir", str(runs), "--name", "nothing"]) == 0
    assert "stopped before its first checkpoint" in capsys.readouterr().err


def test_ctrl_c_saves_a_checkpoint_to_continue_from(tmp_path, capsys):
    config = tiny_config(tmp_path, max_steps=100_000, ckpt_interval=10_000, log_interval=1, eval_interval=10_000)
    runs = tmp_path / "runs"
    run = Run(runs / "c")

    def press_ctrl_c():  # as a terminal does: SIGINT to the process, here once it has trained three steps
        deadline = time.monotonic() + 120
        while not [r for r in run.metrics() if r.get("step", 0) >= 3] and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    assert train_cli([str(config), "--runs-dir", str(runs), "--name", "c"]) == 130
    err = capsys.readouterr().err
    assert f"continue with: mlre train --resume {run.path}" in err and "Traceback" not in err
    [saved] = run.checkpoints.glob("ckpt_*.pt")
    step = load_checkpoint(saved)["step"]
    assert step >= 3 and step == max(r["step"] for r in run.metrics())  # the step it stopped at, saved


def put(path, data: bytes) -> None:
    "Write checkpoint bytes with a checksum that matches them (the damage is in the file, not in transit)."
    path.write_bytes(data)
    path.with_name(path.name + ".sha256").write_text(hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("damage", ["checksum file byte 0xff", "truncated, checksum matches",
                                    "empty, checksum matches", "not a checkpoint, checksum matches"])
def test_every_damaged_checkpoint_is_a_checkpoint_error_and_falls_back(tmp_path, damage):
    for step in (1, 2):
        save_checkpoint(tmp_path, step, {"step": step, "w": torch.full((1000,), float(step))}, keep=2)
    newest = checkpoint_path(tmp_path, 2)
    data = newest.read_bytes()
    if damage == "checksum file byte 0xff":
        sidecar = newest.with_name(newest.name + ".sha256")
        raw = bytearray(sidecar.read_bytes())
        raw[5] = 0xFF
        sidecar.write_bytes(bytes(raw))
    elif damage == "truncated, checksum matches":
        put(newest, data[: len(data) // 2])
    elif damage == "empty, checksum matches":
        put(newest, b"")
    else:
        put(newest, b"PK\x03\x04 but nothing else")
    with pytest.raises(CheckpointError):
        load_checkpoint(newest)
    assert latest_checkpoint(tmp_path)[1]["step"] == 1


def test_keep_must_be_at_least_one(tmp_path):
    save_checkpoint(tmp_path, 1, {"step": 1})
    for keep in (-1, 0):
        with pytest.raises(ValueError, match="keep must be an int >= 1"):
            save_checkpoint(tmp_path, 2, {"step": 2}, keep=keep)
    assert [p.name for p in tmp_path.glob("*.pt")] == ["ckpt_00000001.pt"]
