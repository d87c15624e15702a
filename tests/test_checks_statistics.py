"Mutation tests for exercise set 10's checks: each accepts the reference and rejects the stub and plausible mistakes."
import math

import numpy as np
from scipy import stats as scipy_stats

from mlre_lab.checks import statistics as S
from mlre_lab.stats import bootstrap_ci, holm_bonferroni, mean_ci, permutation_test

from .mutation import mutation_tests


def ci_reference(values, confidence):
    ci = mean_ci(values, confidence)
    return ci.low, ci.high


def _t_like(multiplier, ddof=1, sem=True):
    def ci(values, confidence):
        x = np.asarray(values, dtype=float)
        spread = x.std(ddof=ddof) / (math.sqrt(len(x)) if sem else 1)
        half = multiplier(confidence, len(x)) * spread
        return x.mean() - half, x.mean() + half
    return ci


t_quantile = lambda c, n: scipy_stats.t.ppf((1 + c) / 2, n - 1)
CI_MUTANTS = {
    "normal 1.96 instead of t": _t_like(lambda c, n: scipy_stats.norm.ppf((1 + c) / 2)),
    "std with ddof=0": _t_like(t_quantile, ddof=0),
    "std instead of standard error": _t_like(t_quantile, sem=False),
    "t with n degrees of freedom": _t_like(lambda c, n: scipy_stats.t.ppf((1 + c) / 2, n)),
}


def boot_reference(values, confidence, n_resamples, seed):
    ci = bootstrap_ci(values, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return ci.low, ci.high


def _boot(draw, quantiles=lambda c: ((1 - c) / 2, (1 + c) / 2)):
    def ci(values, confidence, n_resamples, seed):
        x = np.asarray(values, dtype=float)
        means = draw(np.random.default_rng(seed), x, n_resamples)
        return tuple(np.quantile(means, quantiles(confidence)))
    return ci


with_replacement = lambda rng, x, r: x[rng.integers(0, len(x), (r, len(x)))].mean(axis=1)
BOOT_MUTANTS = {
    "90% quantiles whatever the confidence": _boot(with_replacement, lambda c: (0.05, 0.95)),
    "resampling without replacement": _boot(lambda rng, x, r: np.stack([rng.permutation(x) for _ in range(r)]).mean(1)),
    "quantiles of the values, not of resampled means": _boot(lambda rng, x, r: x[rng.integers(0, len(x), r)]),
    "unseeded generator": lambda v, c, r, seed: _boot(with_replacement)(v, c, r, None),
}


def perm_reference(a, b, n_resamples, seed):
    return permutation_test(a, b, paired=True, n_resamples=n_resamples, seed=seed)


def _perm(null_of, compare=np.greater_equal, plus_one=1, two_sided=True):
    def test(a, b, n_resamples, seed):
        a, b = np.asarray(a, float), np.asarray(b, float)
        rng = np.random.default_rng(seed)
        observed, null = (a - b).mean(), null_of(rng, a, b, n_resamples)
        if two_sided:
            observed, null = abs(observed), np.abs(null)
        hits = np.sum(compare(null, observed * (1 - 1e-12)))
        return (hits + plus_one) / (n_resamples + plus_one)
    return test


sign_flips = lambda rng, a, b, r: (rng.choice([-1.0, 1.0], (r, len(a))) * (a - b)).mean(axis=1)


def shuffled_pool(rng, a, b, r):
    pooled = np.concatenate([a, b])
    out = np.empty(r)
    for i in range(r):
        p = rng.permutation(pooled)
        out[i] = p[:len(a)].mean() - p[len(a):].mean()
    return out


PERM_MUTANTS = {
    "one-sided": _perm(sign_flips, two_sided=False),
    "no +1 (a p-value of 0 is possible)": _perm(sign_flips, plus_one=0),
    "unpaired shuffle of the pooled values": _perm(shuffled_pool),
    "strict > (ties not counted)": _perm(sign_flips, compare=lambda null, obs: null > obs / (1 - 1e-12) + 1e-12),
}


def holm_reference(p):
    return holm_bonferroni(p)[1]


def _holm(multiplier, monotone=True, restore_order=True):
    def adjust(p):
        p = np.asarray(p, float)
        m, order = len(p), np.argsort(p, kind="stable")
        adjusted = np.minimum(1.0, multiplier(m, np.arange(m)) * p[order])
        if monotone:
            adjusted = np.maximum.accumulate(adjusted)
        if not restore_order:
            return adjusted
        out = np.empty(m)
        out[order] = adjusted
        return out
    return adjust


HOLM_MUTANTS = {
    "plain Bonferroni": _holm(lambda m, j: m, monotone=False),
    "no running maximum": _holm(lambda m, j: m - j, monotone=False),
    "off by one: m - j - 1": _holm(lambda m, j: np.maximum(m - j - 1, 1)),
    "left in sorted order": _holm(lambda m, j: m - j, restore_order=False),
}

CHECKS = {
    "mean_ci": (S.check_mean_ci, ci_reference, CI_MUTANTS),
    "bootstrap_ci": (S.check_bootstrap_ci, boot_reference, BOOT_MUTANTS),
    "permutation_test": (S.check_permutation_test, perm_reference, PERM_MUTANTS),
    "holm_bonferroni": (S.check_holm_bonferroni, holm_reference, HOLM_MUTANTS),
}
test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected, test_mutant_rejected = \
    mutation_tests(CHECKS, S)
