"The training pipeline: configs, data validation, checkpoints, accumulation, the loop and the mlre commands."
import json
import os
import socket

import numpy as np
import pytest
import torch

from mlre_lab.nn.transformer import GPT, GPTConfig
from mlre_lab.text.tokenizer import CharTokenizer
from mlre_lab.train.checkpoint import (
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from mlre_lab.train.config import Config, ConfigError, DataConfig, load_config
from mlre_lab.train.data import DataError, Document, prepare_data, read_documents, validate_split
from mlre_lab.train.loop import Run, build_model, resolve_dtype, runs_cli, sample_cli, train, train_cli, train_step

from .conftest import ROOT
from .train_helpers import mlre, tiny_config

# --- configs -----------------------------------------------------------------------------------------------------

def test_bad_value_on_the_command_line_names_the_key_and_nothing_starts(tmp_path):
    result = mlre("train", "--set", "model.n_layer=abc", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert "model.n_layer must be int, got 'abc' (str)" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_unknown_keys_get_a_did_you_mean(tmp_path):
    (tmp_path / "c.toml").write_text("[model]\nn_layers = 2\n[train]\nmax_step = 10\nlr = 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "c.toml")
    message = str(e.value)
    assert "unknown key model.n_layers; did you mean 'model.n_layer'?" in message
    assert "unknown key train.max_step; did you mean 'train.max_steps'?" in message
    assert "unknown key train.lr; did you mean 'optim.lr'?" in message


@pytest.mark.parametrize("override, words", [
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("optim.lr=-1.0", "optim.lr must be >= 0.0, got -1.0"),
    ("train.dtype='fp8'", "train.dtype must be one of"),
    ("model.bias=1", "model.bias must be bool, got 1 (int)"),
    ("data.val_fraction=0.9", "data.val_fraction must be in [0.0, 0.5], got 0.9"),
])
def test_wrong_types_and_ranges_name_key_and_value(override, words):
    with pytest.raises(ConfigError) as e:
        load_config(overrides=[override])
    assert words in str(e.value)


def test_shipped_default_config_is_the_built_in_default():
    assert load_config(ROOT / "configs" / "default.toml") == Config()


def test_every_shipped_config_is_valid():
    for path in (ROOT / "configs").glob("*.toml"):
        load_config(path)


# --- data --------------------------------------------------------------------------------------------------------

def test_undecodable_and_empty_documents_are_named(tmp_path):
    (tmp_path / "ok.txt").write_text("fine\n")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError) as e:
        read_documents(tmp_path)
    assert "bad.txt: not UTF-8 (byte 0xe9 at offset 3)" in str(e.value)
    assert "empty.txt: empty document" in str(e.value)


def test_leakage_is_refused():
    train = [Document("a.py", "x = 1\n"), Document("b.py", "y = 2\n")]
    with pytest.raises(DataError, match="leakage: validation document 'copy.py' has the same content as training "
                                        "document 'b.py'"):
        validate_split(train, [Document("copy.py", "y = 2\n")])


def test_token_ids_outside_the_vocabulary_are_refused(tmp_path):
    (tmp_path / "t.txt").write_text("".join(f"abc {i}\n" for i in range(500)))

    class Broken(CharTokenizer):  # claims a smaller vocabulary than the ids it produces
        @property
        def vocab_size(self):
            return 2

        def decode(self, ids):
            return "".join(self.itos[i] for i in ids)

    with pytest.raises(DataError, match=r"outside the vocabulary \[0, 2\)"):
        prepare_data(DataConfig(corpus=str(tmp_path / "t.txt"), doc_chars=200, cache_dir=str(tmp_path / "c")),
                     Broken.train)


def test_stdlib_corpus_is_recorded_and_cached(tmp_path):
    config = DataConfig(max_chars=200_000, cache_dir=str(tmp_path))
    data = prepare_data(config, CharTokenizer.train)
    record = data.record
    assert record["corpus"] == "stdlib" and len(record["corpus_sha256"]) == 64
    assert set(record["train_documents"]).isdisjoint(record["val_documents"])
    assert all(name.endswith(".py") for name in record["train_documents"])
    files = sorted(tmp_path.iterdir())
    assert prepare_data(config, CharTokenizer.train).record == record and sorted(tmp_path.iterdir()) == files
    x, y = data.get_batch("val", 3, 32, "cpu", torch.Generator().manual_seed(0))
    assert x.shape == (3, 32) and torch.equal(x[:, 1:], y[:, :-1])


# --- checkpoints -------------------------------------------------------------------------------------------------

class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = save_checkpoint(tmp_path / "ckpts", 3, {"model": {"w": torch.zeros(2)}, "x": Payload(marker)})
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)
    assert not marker.exists()
    save_checkpoint(tmp_path / "ckpts", 1, {"model": {"w": torch.ones(2)}}, keep=5)
    found, state = latest_checkpoint(tmp_path / "ckpts")
    assert found.name == "ckpt_00000001.pt" and not marker.exists()


def test_truncated_or_incomplete_checkpoint_falls_back_to_the_previous(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"step": step, "w": torch.full((1000,), float(step))}, keep=3)
    newest = checkpoint_path(tmp_path, 3)
    newest.write_bytes(newest.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_checkpoint(newest)
    assert latest_checkpoint(tmp_path)[1]["step"] == 2
    checkpoint_path(tmp_path, 2).with_suffix(".pt.sha256").unlink()  # killed between the two writes
    assert latest_checkpoint(tmp_path)[1]["step"] == 1


# --- the loop ----------------------------------------------------------------------------------------------------

def test_accumulated_micro_batches_equal_one_big_batch():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=17, block_size=12, n_layer=2, n_head=2, d_model=32)
    a, b = GPT(config), GPT(config)
    b.load_state_dict(a.state_dict())
    # SGD, not Adam: Adam divides by the gradient's size, turning rounding noise in a parameter whose true
    # gradient is zero (the keys' bias: softmax ignores it) into a full step
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (a, b)]
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):  # several steps, so Adam's moments are compared too
        x, y = torch.randint(0, 17, (16, 12), generator=gen), torch.randint(0, 17, (16, 12), generator=gen)
        loss_a, _ = train_step(a, opts[0], [(x[i:i + 4], y[i:i + 4]) for i in range(0, 16, 4)], grad_clip=0.5)
        loss_b, _ = train_step(b, opts[1], [(x, y)], grad_clip=0.5)
        torch.testing.assert_close(loss_a, loss_b)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=name)


def test_bfloat16_autocast_trains_on_cpu(tmp_path):
    config = load_config(tiny_config(tmp_path, max_steps=8, dtype="bfloat16"))
    result = train(config, tmp_path / "run")
    rows = Run(tmp_path / "run").metrics()
    assert result["status"] == "finished" and all(np.isfinite(r["loss"]) for r in rows if "loss" in r)


def test_train_runs_and_sample_commands(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert train_cli([str(tiny_config(tmp_path)), "--runs-dir", str(runs), "--name", "tiny"]) == 0
    run = Run(runs / "tiny")
    names = {p.name for p in run.path.iterdir()}
    assert {"config.toml", "environment.json", "data.json", "tokenizer.json", "metrics.jsonl", "status.json",
            "tb", "checkpoints"} <= names
    assert any(p.name.startswith("events.out.tfevents") for p in (run.path / "tb").iterdir())
    assert sorted(p.name for p in run.checkpoints.glob("*.pt")) == ["ckpt_00000020.pt", "ckpt_00000024.pt"]
    # the config says dtype = "auto" (the default); the run records what it chose on this machine
    assert load_config(run.path / "config.toml").train.dtype == "auto"
    assert run.read_json("status.json")["dtype"] == resolve_dtype("auto", torch.device("cpu"))
    steps = [r["step"] for r in run.metrics() if "loss" in r]
    assert steps == list(range(2, 25, 2))
    env = json.loads((run.path / "environment.json").read_text())
    assert env["torch"] == torch.__version__

    # a second run, killed: its status says so although the process could not write it
    (runs / "dead").mkdir()
    (runs / "dead" / "config.toml").write_text((run.path / "config.toml").read_text())
    (runs / "dead" / "status.json").write_text(json.dumps({"status": "running", "pid": 2**22 + 12345,
                                                           "host": socket.gethostname()}))
    capsys.readouterr()
    assert runs_cli(["--runs-dir", str(runs)]) == 0
    table = capsys.readouterr().out.splitlines()
    best = min(r["val_loss"] for r in run.metrics() if "val_loss" in r)
    assert table[0].split() == ["run", "status", "steps", "best", "val", "loss"]
    assert table[1].split() == ["dead", "killed", "0/24", "-"]
    assert table[2].split() == ["tiny", "finished", "24/24", f"{best:.4f}"]

    assert sample_cli(["tiny", "--runs-dir", str(runs), "--prompt", "12 plus", "--max-new-tokens", "20",
                       "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("12 plus") and len(first.rstrip("\n")) >= len("12 plus") + 1
    sample_cli(["tiny", "--runs-dir", str(runs), "--prompt", "12 plus", "--max-new-tokens", "20", "--seed", "3"])
    assert capsys.readouterr().out == first
    assert sample_cli(["tiny", "--runs-dir", str(runs), "--prompt", "€"]) == 2

    assert train_cli([str(tiny_config(tmp_path)), "--runs-dir", str(runs), "--name", "tiny"]) == 2  # exists
    assert train_cli(["--resume", "tiny", "--runs-dir", str(runs), "--set", "train.max_steps=5"]) == 2


def test_build_model_follows_the_config(tmp_path):
    config = load_config(overrides=["model.n_layer=3", "model.d_model=48", "model.n_head=3"])
    model = build_model(config, vocab_size=40)
    assert model.config.n_layer == 3 and model.config.vocab_size == 40 and model.config.d_model == 48
