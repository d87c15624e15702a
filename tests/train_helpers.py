"A tiny training setup shared by the training tests: a small corpus, a 1-layer model, a few steps."
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def tiny_config(tmp: Path, model: dict | None = None, **train) -> Path:
    "Write a corpus and a config that trains a tiny GPT on it in seconds; `model`, `train` override their keys."
    corpus = tmp / "corpus.txt"
    corpus.write_text("".join(f"{i} plus {i % 9} is {i + i % 9}; {i} times 3 is {3 * i}.\n" for i in range(2000)))
    settings = {"max_steps": 24, "batch_size": 4, "eval_interval": 8, "eval_iters": 2, "log_interval": 2,
                "ckpt_interval": 4, "keep_checkpoints": 2, "sample_tokens": 8, "device": "cpu", "progress": False,
                "num_threads": 1, **train}
    shape = {"n_layer": 1, "n_head": 2, "d_model": 32, "block_size": 16, **(model or {})}
    lines = ["[model]", *(f"{k} = {v}" for k, v in shape.items()), "",
             "[data]", f'corpus = "{corpus}"', "doc_chars = 4000", f'cache_dir = "{tmp / "cache"}"', "",
             "[optim]", "lr = 0.003", "min_lr = 0.0003", "warmup_steps = 4", "", "[train]"]
    lines += [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, str) else v}"
              .replace("'", '"') for k, v in settings.items()]
    path = tmp / "tiny.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def mlre(*args: str, **kwargs) -> subprocess.CompletedProcess:
    "Run the `mlre` command, capturing its output."
    return subprocess.run([str(BIN / "mlre"), *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)
