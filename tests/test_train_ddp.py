"The training loop on 2 processes under torchrun (gloo, CPU) matches 1 process with the same global batch."
import subprocess
import sys

import torch

from mlre_lab.train.checkpoint import load_checkpoint
from mlre_lab.train.loop import Run

from .train_helpers import BIN, mlre, tiny_config

STEPS = 12


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    # No biases: the keys' bias has a true gradient of zero (softmax ignores it), and Adam, which divides by the
    # gradient's size, would turn the two runs' different rounding noise there into full, different steps.
    config = tiny_config(tmp_path, model={"bias": "false"}, max_steps=STEPS, log_interval=1, eval_interval=6,
                         ckpt_interval=STEPS)
    runs = tmp_path / "runs"
    single = mlre("train", config, "--set", "train.batch_size=8", "--runs-dir", runs, "--name", "single")
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(BIN / "mlre"), "train", str(config), "--set", "train.batch_size=4",
                          "--runs-dir", str(runs), "--name", "ddp"], capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    one, two = Run(runs / "single"), Run(runs / "ddp")
    assert two.config().train.batch_size == 4 and two.status() == "finished"
    rows_one, rows_two = one.metrics(), two.metrics()
    assert [r["step"] for r in rows_one] == [r["step"] for r in rows_two]
    for a, b in zip(rows_one, rows_two):
        for key in ("loss", "grad_norm", "train_loss", "val_loss"):
            if key in a:
                assert abs(a[key] - b[key]) < 1e-4, (a["step"], key, a[key], b[key])
    w_one = load_checkpoint(one.checkpoints / f"ckpt_{STEPS:08d}.pt")["model"]
    w_two = load_checkpoint(two.checkpoints / f"ckpt_{STEPS:08d}.pt")["model"]
    for name in w_one:
        torch.testing.assert_close(w_two[name], w_one[name], rtol=1e-4, atol=1e-5, msg=name)
    assert not list(two.path.glob("*rank*")), "only rank 0 writes the run directory"
