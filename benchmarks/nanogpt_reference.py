"""The lab's training loop side by side with nanoGPT's, alternating in one sitting.

nanoGPT (github.com/karpathy/nanoGPT, model.py and train.py) is re-implemented here minimally, in the lab's words but
step for step as it runs on a CPU: character-level tinyshakespeare split 90/10 by position, random windows drawn with
`torch.randint`, a GPT with fused attention (`F.scaled_dot_product_attention`), AdamW with weight decay on matrices
(not fused: nanoGPT fuses only on CUDA), warmup then cosine decay, gradient clipping at 1.0, float32 (nanoGPT uses
no autocast on a CPU), evaluation every 250 steps on 20 random batches per split.

Each round trains the reference, then the lab (`mlre_lab.train.train`, the loop of `mlre train`), on the same corpus
and budget; throughput is the median over 10-step windows of training steps (evaluation excluded) for both. The
rounds alternate so that a machine whose load changes during the sitting affects both sides alike.

    .venv/bin/python benchmarks/nanogpt_reference.py --corpus /path/to/tinyshakespeare.txt
    .venv/bin/python benchmarks/nanogpt_reference.py --corpus FILE --steps 400 --rounds 3 --set train.dtype=float32
"""
import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlre_lab.train.config import load_config  # noqa: E402
from mlre_lab.train.loop import Hook, train  # noqa: E402


@dataclass
class NanoConfig:
    vocab_size: int
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    bias: bool = False


class CausalSelfAttention(nn.Module):
    def __init__(self, c: NanoConfig):
        super().__init__()
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.n_head = c.n_head

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.c_proj(y)


class NanoBlock(nn.Module):
    def __init__(self, c: NanoConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.mlp_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class NanoGPT(nn.Module):
    def __init__(self, c: NanoConfig):
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.h = nn.ModuleList([NanoBlock(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight  # weight tying
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for name, p in self.named_parameters():
            if name.endswith(("c_proj.weight", "mlp_proj.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layer))

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def nanogpt_train(text: str, steps: int, seed: int = 1337, batch_size: int = 12, block_size: int = 64,
                  eval_interval: int = 250, eval_iters: int = 20, lr: float = 1e-3, min_lr: float = 1e-4,
                  warmup: int = 100) -> dict:
    "nanoGPT's train.py on a CPU, float32: the times of 10-step windows of training and the last validation loss."
    torch.manual_seed(seed)
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = torch.tensor([stoi[ch] for ch in text], dtype=torch.int64)
    n = int(0.9 * len(ids))
    splits = {"train": ids[:n], "val": ids[n:]}

    def get_batch(split):
        data = splits[split]
        ix = torch.randint(len(data) - block_size, (batch_size,))
        x = torch.stack([data[i:i + block_size] for i in ix])
        y = torch.stack([data[i + 1:i + 1 + block_size] for i in ix])
        return x, y

    model = NanoGPT(NanoConfig(vocab_size=len(chars), block_size=block_size))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                                   {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.99))

    def get_lr(it):
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        if it > steps:
            return min_lr
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * (it - warmup) / (steps - warmup))) * (lr - min_lr)

    @torch.no_grad()
    def estimate_loss():
        model.eval()
        out = {s: torch.stack([model(*get_batch(s)) for _ in range(eval_iters)]).mean().item() for s in splits}
        model.train()
        return out

    windows, val_loss = [], None
    x, y = get_batch("train")
    tick = time.perf_counter()
    for it in range(steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = get_lr(it)
        if it % eval_interval == 0 or it == steps:
            val_loss = estimate_loss()["val"]
            tick = time.perf_counter()
        if it == steps:
            break
        loss = model(x, y)
        x, y = get_batch("train")  # nanoGPT prefetches the next batch while the forward runs asynchronously
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # nanoGPT logs every step in its CPU quick-start (log_interval=1)
        if (it + 1) % 10 == 0 and (it + 1) % eval_interval != 0:
            now = time.perf_counter()
            windows.append((now - tick) / 10)
            tick = now
    return {"ms_per_step": 1000 * statistics.median(windows), "val_loss": val_loss}


class StepTimes(Hook):
    "The lab's own 10-step window times (its loop excludes evaluation and checkpoints from them)."

    def __init__(self):
        self.ms = []

    def on_metrics(self, step, metrics):
        if "ms_per_step" in metrics:
            self.ms.append(metrics["ms_per_step"])


def lab_train(corpus: str, steps: int, overrides: list[str], config_path: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(config_path, [f"data.corpus={corpus}", f"data.cache_dir={tmp}/cache",
                                           "train.progress=false", f"train.max_steps={steps}", "train.log_interval=10",
                                           *overrides])
        times = StepTimes()
        result = train(config, None, hooks=[times])
    # the first window holds torch.compile's work when compiling: the median is robust to it
    return {"ms_per_step": statistics.median(times.ms), "val_loss": result["best_val_loss"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="tinyshakespeare.txt")
    parser.add_argument("--config", default=str(ROOT / "configs" / "shakespeare_char.toml"))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1, help="reference, lab, reference, lab, ...")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override the lab's config, e.g. train.dtype=float32 (repeatable)")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE,KEY=VALUE",
                        help="a further setting of the lab to time in each round, on top of --set (repeatable)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for both loops (0: torch's default); "
                        "on a machine other jobs load, 1 avoids threads waiting for each other")
    parser.add_argument("--skip-reference", action="store_true", help="time the lab only")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    text = Path(args.corpus).read_text(encoding="utf-8")
    if args.threads:
        torch.set_num_threads(args.threads)
        args.overrides = [f"train.num_threads={args.threads}", *args.overrides]
    rows = []
    for r in range(args.rounds):
        if not args.skip_reference:
            rows.append({"round": r, "loop": "nanoGPT", **nanogpt_train(text, args.steps)})
            print(json.dumps(rows[-1]), flush=True)
        for variant in ["", *args.variant]:
            settings = [*args.overrides, *filter(None, variant.split(","))]
            rows.append({"round": r, "loop": f"lab {variant}".strip(),
                         **lab_train(args.corpus, args.steps, settings, args.config)})
            print(json.dumps(rows[-1]), flush=True)
    if not args.skip_reference:
        for loop in dict.fromkeys(row["loop"] for row in rows if row["loop"] != "nanoGPT"):
            ratios = [ref["ms_per_step"] / lab["ms_per_step"] for ref, lab in zip(
                [row for row in rows if row["loop"] == "nanoGPT"], [row for row in rows if row["loop"] == loop])]
            print(f"{loop} over nanoGPT per round: {', '.join(f'{x:.2f}x' for x in ratios)} "
                  f"(median {statistics.median(ratios):.2f}x); --set {args.overrides or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
