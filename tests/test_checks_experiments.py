"Mutation tests for lesson 07's checks: each accepts the reference and rejects plausible mistakes and the stub."
import difflib
import math
import os
import tempfile
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from mlre_lab.checks import experiments as T
from mlre_lab.checks.harness import CheckFailed
from mlre_lab.train import loop as L

from .mutation import mutation_tests

# --- the schedule ------------------------------------------------------------------------------------------------

def _cosine(step, lr, min_lr, warmup, max_steps, progress):
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)


def _warmup_from_zero(step, lr, min_lr, warmup, max_steps):
    return lr * step / warmup if step < warmup else L.lr_at(step, lr, min_lr, warmup, max_steps)


def _cosine_from_step_zero(step, lr, min_lr, warmup, max_steps):
    if step < warmup:
        return lr * (step + 1) / warmup
    return min_lr if step >= max_steps else _cosine(step, lr, min_lr, warmup, max_steps, step / max_steps)


def _no_clamp(step, lr, min_lr, warmup, max_steps):
    if step < warmup:
        return lr * (step + 1) / warmup
    return _cosine(step, lr, min_lr, warmup, max_steps, (step - warmup) / max(1, max_steps - warmup))


def _decay_to_zero(step, lr, min_lr, warmup, max_steps):
    return L.lr_at(step, lr, 0.0, warmup, max_steps)


def _warmup_inclusive(step, lr, min_lr, warmup, max_steps):
    if warmup and step <= warmup:
        return lr * (step + 1) / warmup
    return L.lr_at(step, lr, min_lr, warmup, max_steps)


# --- accumulation ------------------------------------------------------------------------------------------------

def _no_division(model, x, y, k):
    losses = [L.lm_loss(model(xb), yb) for xb, yb in zip(x.chunk(k), y.chunk(k))]
    for loss in losses:
        loss.backward()
    return sum(loss.item() for loss in losses) / k


def _zero_each_time(model, x, y, k):
    total = 0.0
    for xb, yb in zip(x.chunk(k), y.chunk(k)):
        model.zero_grad()
        loss = L.lm_loss(model(xb), yb) / k
        loss.backward()
        total += loss.item()
    return total


def _divide_by_batch(model, x, y, k):
    total = 0.0
    for xb, yb in zip(x.chunk(k), y.chunk(k)):
        loss = L.lm_loss(model(xb), yb) / x.shape[0]
        loss.backward()
        total += loss.item()
    return total


def _last_loss(model, x, y, k):
    for xb, yb in zip(x.chunk(k), y.chunk(k)):
        loss = L.lm_loss(model(xb), yb)
        (loss / k).backward()
    return loss.item()


def _accumulate_reference(model, x, y, k):
    total = 0.0
    for xb, yb in zip(x.chunk(k), y.chunk(k)):
        loss = L.lm_loss(model(xb), yb) / k
        loss.backward()
        total += loss.item()
    return total


# --- atomic writes -----------------------------------------------------------------------------------------------

def _in_place(path, data):
    Path(path).write_bytes(data)


def _tmp_elsewhere(path, data):
    fd, tmp = tempfile.mkstemp()  # in /tmp, not beside the target
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _no_fsync(path, data):
    tmp = Path(str(path) + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _no_cleanup(path, data):
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --- config sections ---------------------------------------------------------------------------------------------

def _problems(values, cls, bool_is_int=False, suggest=True, first_only=False, always_first=False, strict_float=False):
    names = [f.name for f in fields(cls)]
    types = typing.get_type_hints(cls)
    out = []
    for key, value in values.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            if always_first:
                close = [names[0]]
            out.append(f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close and suggest else ""))
        else:
            expected = types[key]
            if expected is float and not strict_float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            elif bool_is_int or expected is bool:
                ok = isinstance(value, expected)
            else:
                ok = isinstance(value, expected) and not isinstance(value, bool)
            if not ok:
                out.append(f"{key} must be {expected.__name__}, got {value!r}")
        if first_only and out:
            return out
    return out


CHECKS = {
    "lr_schedule": (T.check_lr_schedule, L.lr_at, {
        "warmup starts at zero (step / warmup)": _warmup_from_zero,
        "cosine measured from step 0, not from the end of warmup": _cosine_from_step_zero,
        "no clamp after max_steps (the cosine rises again)": _no_clamp,
        "decays to zero instead of min_lr": _decay_to_zero,
        "warmup includes step == warmup_steps": _warmup_inclusive,
    }),
    "accumulate": (T.check_accumulate, _accumulate_reference, {
        "loss not divided by k": _no_division,
        "gradients zeroed before each micro-batch": _zero_each_time,
        "divided by the batch size instead of k": _divide_by_batch,
        "returns the last micro-batch's loss": _last_loss,
    }),
    "atomic_write": (T.check_atomic_write, L.atomic_write_bytes, {
        "writes the target in place": _in_place,
        "temporary file in another directory": _tmp_elsewhere,
        "no fsync before the rename": _no_fsync,
        "temporary file left behind after a failure": _no_cleanup,
    }),
    "section_problems": (T.check_section_problems, T.section_problems, {
        "a bool passes as an int": lambda v, c: _problems(v, c, bool_is_int=True),
        "no did-you-mean": lambda v, c: _problems(v, c, suggest=False),
        "stops at the first problem": lambda v, c: _problems(v, c, first_only=True),
        "always suggests the first field": lambda v, c: _problems(v, c, always_first=True),
        "an int is refused for a float": lambda v, c: _problems(v, c, strict_float=True),
    }),
}


(test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected,
 test_mutant_rejected) = mutation_tests(CHECKS, T)


def test_atomic_write_failures_explain_the_danger():
    with pytest.raises(CheckFailed, match="not in the target's directory; a rename across filesystems is a copy"):
        T.check_atomic_write(_tmp_elsewhere)
    with pytest.raises(CheckFailed, match="not fsynced before the rename"):
        T.check_atomic_write(_no_fsync)


def test_schedule_failure_names_the_step_and_phase():
    with pytest.raises(CheckFailed, match=r"at step 0 \(warmup\) the rate is 0.0, expected 0.1"):
        T.check_lr_schedule(_warmup_from_zero)
