"Mutation tests for lesson 12's checks: each accepts the reference and rejects plausible mistakes and the stub."
import time

import numpy as np
import pytest
import torch

from mlre_lab.checks import profiling as P
from mlre_lab.checks.harness import CheckFailed
from mlre_lab.perf import scaling_exponent, time_fn

from .mutation import mutation_tests

# --- the timer ---------------------------------------------------------------------------------------------------

def _timer(f, device, warmup, repeats, sync_before=True, sync_after=True, skip_warmup=False, keep_warmup=False,
           averaged=False, always_cuda=False):
    def sync():
        if always_cuda or device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    for _ in range(0 if skip_warmup else warmup):
        start = time.perf_counter()
        f()
        if keep_warmup:
            times.append(time.perf_counter() - start)
    if averaged:
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            f()
        sync()
        return times + [(time.perf_counter() - start) / repeats] * repeats
    for _ in range(repeats):
        if sync_before:
            sync()
        start = time.perf_counter()
        f()
        if sync_after:
            sync()
        times.append(time.perf_counter() - start)
    return times


def _timer_reference(f, device, warmup, repeats):
    return list(time_fn(f, device=device, warmup=warmup, repeats=repeats).seconds)


# --- block FLOPs -------------------------------------------------------------------------------------------------

def _block(config, batch, seq, per_mac=2, causal_half=False, no_attention=False, mha_kv=False, swiglu_two=False,
           no_out_proj=False):
    c = config
    kv = c.n_head if mha_kv else c.kv_heads
    projections = c.d_model * (c.n_head + 2 * kv) * c.d_head + (0 if no_out_proj else c.d_model * c.d_model)
    attention = 0 if no_attention else 2 * seq * c.n_head * c.d_head // (2 if causal_half else 1)
    mlp = (3 if c.mlp == "swiglu" and not swiglu_two else 2) * c.d_model * c.ff_width
    return per_mac * batch * seq * (projections + attention + mlp)


# --- scaling exponent --------------------------------------------------------------------------------------------

def _endpoints(sizes, values):
    return float(np.log(values[-1] / values[0]) / np.log(sizes[-1] / sizes[0]))


def _no_logs(sizes, values):
    return float(np.polyfit(sizes, values, 1)[0])


def _log_values_only(sizes, values):
    return float(np.polyfit(sizes, np.log(values), 1)[0])


def _intercept(sizes, values):
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[1])


def _swapped(sizes, values):
    return float(np.polyfit(np.log(values), np.log(sizes), 1)[0])


CHECKS = {
    "timer": (P.check_timer, _timer_reference, {
        "no synchronisation: times the launch": lambda *a: _timer(*a, sync_before=False, sync_after=False),
        "no synchronisation before the clock starts": lambda *a: _timer(*a, sync_before=False),
        "no warm-up": lambda *a: _timer(*a, skip_warmup=True),
        "warm-up calls returned with the timed ones": lambda *a: _timer(*a, keep_warmup=True),
        "one total divided by the number of calls": lambda *a: _timer(*a, averaged=True),
        "synchronises CUDA on a CPU too": lambda *a: _timer(*a, always_cuda=True),
    }),
    "block_flops": (P.check_block_flops, _block, {
        "multiply-adds, not FLOPs": lambda c, b, s: _block(c, b, s, per_mac=1),
        "the causal mask halves attention": lambda c, b, s: _block(c, b, s, causal_half=True),
        "attention's products left out": lambda c, b, s: _block(c, b, s, no_attention=True),
        "keys and values with n_head heads (GQA ignored)": lambda c, b, s: _block(c, b, s, mha_kv=True),
        "SwiGLU with two matrices": lambda c, b, s: _block(c, b, s, swiglu_two=True),
        "no output projection": lambda c, b, s: _block(c, b, s, no_out_proj=True),
    }),
    "scaling_exponent": (P.check_scaling_exponent, scaling_exponent, {
        "slope between the first and last points": _endpoints,
        "a straight line without logarithms": _no_logs,
        "log of the values only": _log_values_only,
        "the intercept": _intercept,
        "sizes against values": _swapped,
    }),
}

(test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected,
 test_mutant_rejected) = mutation_tests(CHECKS, P)


def test_timer_failure_says_what_was_timed():
    with pytest.raises(CheckFailed, match="the clock stopped before the device finished"):
        P.check_timer(lambda *a: _timer(*a, sync_before=False, sync_after=False))
    with pytest.raises(CheckFailed, match="paid for the warm-up's queued work"):
        P.check_timer(lambda *a: _timer(*a, sync_before=False))
