"Mutation tests for exercise set 11's checks: each accepts the reference and rejects the stub and plausible mistakes."
import math

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats
from scipy.special import softmax

from mlre_lab.checks import evaluation as E
from mlre_lab.evals import expected_calibration_error, fit_temperature, temperature_nll
from mlre_lab.stats import bootstrap_ci, mcnemar

from .mutation import mutation_tests


def ece_reference(confidence, correct, n_bins):
    return expected_calibration_error(confidence, correct, n_bins, "width")


def _bins(confidence, n_bins):
    return np.minimum((np.asarray(confidence) * n_bins).astype(int), n_bins - 1)


def _ece(weight=True, absolute=True, clip=True):
    def ece(confidence, correct, n_bins):
        confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
        which = _bins(confidence, n_bins) if clip else (confidence * n_bins).astype(int)
        total, gaps = 0.0, []
        for b in range(n_bins):
            inside = which == b
            if inside.any():
                gap = correct[inside].mean() - confidence[inside].mean()
                gap = abs(gap) if absolute else gap
                gaps.append(gap * (inside.sum() / len(confidence) if weight else 1))
                total += 1
        return sum(gaps) if weight else sum(gaps) / total
    return ece


ECE_MUTANTS = {
    "unweighted mean over bins": _ece(weight=False),
    "signed gap": _ece(absolute=False),
    "confidence 1.0 dropped (no last-bin clip)": _ece(clip=False),
    "equal-mass bins": lambda c, r, n: expected_calibration_error(c, r, n, "mass"),
}


def slice_reference(values, mask, confidence, n_resamples, seed):
    ci = bootstrap_ci(values[mask], confidence=confidence, n_resamples=n_resamples, seed=seed)
    return ci.low, ci.high


def _slice(pick, size=None, quantiles=lambda c: ((1 - c) / 2, (1 + c) / 2)):
    def ci(values, mask, confidence, n_resamples, seed):
        x = pick(np.asarray(values, float), np.asarray(mask))
        n = len(x) if size is None else size(values)
        means = x[np.random.default_rng(seed).integers(0, len(x), (n_resamples, n))].mean(axis=1)
        return tuple(np.quantile(means, quantiles(confidence)))
    return ci


SLICE_MUTANTS = {
    "resamples every item, not the slice": _slice(lambda v, m: v),
    "interval of the rest (~mask)": _slice(lambda v, m: v[~m]),
    "resamples as large as the whole data set": _slice(lambda v, m: v[m], size=len),
    "95% whatever the confidence": _slice(lambda v, m: v[m], quantiles=lambda c: (0.025, 0.975)),
}


def mcnemar_reference(a, b):
    return mcnemar(a, b).p_value


def _disagreements(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return int(np.sum(a & ~b)), int(np.sum(~a & b))


def _mcnemar(correction=1, doubled=True, exact_below=25):
    def test(a, b):
        only_a, only_b = _disagreements(a, b)
        n = only_a + only_b
        if n == 0:
            return 1.0
        if n < exact_below:
            return min(1.0, (2 if doubled else 1) * scipy_stats.binom.cdf(min(only_a, only_b), n, 0.5))
        return scipy_stats.chi2.sf(max(abs(only_a - only_b) - correction, 0) ** 2 / n, 1)
    return test


MCNEMAR_MUTANTS = {
    "no continuity correction": _mcnemar(correction=0),
    "one-sided exact test": _mcnemar(doubled=False),
    "chi-square even for few disagreements": _mcnemar(exact_below=0),
    "all items in the denominator": lambda a, b: scipy_stats.chi2.sf(
        (abs(np.subtract(*_disagreements(a, b))) - 1) ** 2 / len(a), 1),
}


def _minimise(loss):
    found = optimize.minimize_scalar(loss, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return math.exp(found.x)


def brier_temperature(logits, labels):
    onehot = np.eye(logits.shape[1])[labels]
    return _minimise(lambda log_t: ((softmax(logits / math.exp(log_t), axis=1) - onehot) ** 2).sum(1).mean())


TEMPERATURE_MUTANTS = {
    "minimises the Brier score, not the log-loss": brier_temperature,
    "multiplies the logits by T": lambda z, y: 1 / fit_temperature(z, y),
    "a grid in steps of 0.5": lambda z, y: min(np.arange(0.5, 10.01, 0.5), key=lambda t: temperature_nll(z, y, t)),
    "no fit: T = 1": lambda z, y: 1.0,
}

CHECKS = {
    "ece": (E.check_ece, ece_reference, ECE_MUTANTS),
    "slice_ci": (E.check_slice_ci, slice_reference, SLICE_MUTANTS),
    "mcnemar": (E.check_mcnemar, mcnemar_reference, MCNEMAR_MUTANTS),
    "fit_temperature": (E.check_fit_temperature, fit_temperature, TEMPERATURE_MUTANTS),
}
test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected, test_mutant_rejected = \
    mutation_tests(CHECKS, E)
