"mlre_lab.stats against scipy.stats where scipy has the same function, and properties where it has not."
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from mlre_lab.stats import (
    bootstrap_ci,
    bootstrap_distribution,
    cohens_d,
    holm_bonferroni,
    mcnemar,
    mean_ci,
    paired_bootstrap,
    permutation_test,
    seeds_needed,
)

RNG = np.random.default_rng(0)
SKEWED = RNG.exponential(1.0, size=40)


@pytest.mark.parametrize("n, confidence", [(2, 0.95), (3, 0.95), (10, 0.9), (50, 0.99)])
def test_mean_ci_matches_scipy_t_interval(n, confidence):
    x = RNG.normal(size=n)
    low, high = scipy_stats.t.interval(confidence, df=n - 1, loc=x.mean(), scale=scipy_stats.sem(x))
    ci = mean_ci(x, confidence)
    assert math.isclose(ci.low, low, rel_tol=1e-12) and math.isclose(ci.high, high, rel_tol=1e-12)


@pytest.mark.parametrize("statistic", [np.mean, np.median, np.std])
def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap(statistic):
    ours = bootstrap_ci(SKEWED, statistic, n_resamples=20_000, seed=1)
    theirs = scipy_stats.bootstrap((SKEWED,), statistic, n_resamples=20_000, method="percentile",
                                   random_state=2).confidence_interval
    width = ours.high - ours.low
    assert abs(ours.low - theirs.low) < 0.05 * width and abs(ours.high - theirs.high) < 0.05 * width
    assert math.isclose(ours.estimate, statistic(SKEWED))


def test_bootstrap_resamples_rows_of_two_column_data_together():
    pairs = np.stack([SKEWED, SKEWED], axis=1)  # (items, 2): identical columns stay identical in every resample
    diffs = bootstrap_distribution(pairs, lambda s, axis: s[..., 0].mean(axis) - s[..., 1].mean(axis), 500)
    assert diffs.shape == (500,) and np.all(diffs == 0)


def test_bootstrap_blocks_give_the_same_draws_as_one_block():
    # the resamples come in blocks sized to memory; 3,000 items x 2,000 resamples spans several blocks
    x = RNG.normal(size=3000)
    draws = bootstrap_distribution(x, n_resamples=2000, seed=5)
    rng = np.random.default_rng(5)
    block = 2**22 // 3000
    first = x[rng.integers(0, 3000, size=(block, 3000))].mean(axis=1)
    assert np.array_equal(draws[:block], first) and len(draws) == 2000


def test_paired_bootstrap_is_narrower_than_unpaired_for_correlated_pairs():
    base = RNG.normal(size=200)
    a, b = base + 0.1 + 0.1 * RNG.normal(size=200), base + 0.1 * RNG.normal(size=200)
    paired = paired_bootstrap(a, b)
    unpaired_half = math.hypot(mean_ci(a).half_width, mean_ci(b).half_width)
    assert 0 < paired.low < 0.1 < paired.high and paired.half_width < unpaired_half / 3


@pytest.mark.parametrize("paired", [True, False])
def test_permutation_test_agrees_with_scipy(paired):
    a, b = RNG.normal(0.3, 1, size=30), RNG.normal(0, 1, size=30)
    statistic = (lambda x, y, axis: np.mean(x - y, axis=axis)) if paired else \
        (lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis))
    theirs = scipy_stats.permutation_test((a, b), statistic, permutation_type="samples" if paired else "independent",
                                          n_resamples=19_999, random_state=1).pvalue
    ours = permutation_test(a, b, paired=paired, n_resamples=19_999, seed=2)
    assert abs(ours - theirs) < 0.01 + 0.1 * theirs


def test_permutation_p_value_is_never_zero():
    assert permutation_test(np.arange(20.0) + 10, np.arange(20.0), n_resamples=999) == pytest.approx(1 / 1000)


@pytest.mark.parametrize("only_a, only_b", [(0, 3), (5, 12), (20, 4), (10, 10)])
def test_exact_mcnemar_is_scipy_binomtest(only_a, only_b):
    both = 30
    a = np.array([True] * only_a + [False] * only_b + [True] * both)
    b = np.array([False] * only_a + [True] * only_b + [True] * both)
    result = mcnemar(a, b, exact=True)
    assert (result.only_a, result.only_b) == (only_a, only_b)
    assert math.isclose(result.p_value, scipy_stats.binomtest(only_a, only_a + only_b).pvalue, rel_tol=1e-9)


def test_chi_square_mcnemar_by_hand_and_close_to_exact_for_many_disagreements():
    a = np.array([True] * 60 + [False] * 40)
    b = np.array([False] * 60 + [True] * 40)
    result = mcnemar(a, b)
    assert result.method.startswith("chi-square") and math.isclose(result.statistic, 19**2 / 100)
    assert math.isclose(result.p_value, scipy_stats.chi2.sf(3.61, 1))
    assert abs(result.p_value - mcnemar(a, b, exact=True).p_value) < 0.01


def _holm_by_hand(p, alpha):
    "Holm's procedure as its definition reads: step down through the sorted p-values, stop at the first failure."
    order = sorted(range(len(p)), key=lambda i: p[i])
    reject = [False] * len(p)
    for j, i in enumerate(order):
        if p[i] > alpha / (len(p) - j):
            break
        reject[i] = True
    return reject


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12), st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_rejects_what_the_step_down_definition_rejects(p, alpha):
    reject, adjusted = holm_bonferroni(p, alpha)
    assert reject.tolist() == _holm_by_hand(p, alpha)
    assert np.all(adjusted >= np.asarray(p)) and np.all(adjusted <= 1)
    bonferroni = np.minimum(1, np.asarray(p) * len(p))
    assert np.all(adjusted <= bonferroni + 1e-15)  # never more conservative than Bonferroni


def test_cohens_d_by_hand():
    a, b = [1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 1.0, 2.0]
    pooled = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    assert math.isclose(cohens_d(a, b), 1.5 / pooled)
    d = np.subtract(a, b)
    assert math.isclose(cohens_d(a, b, paired=True), d.mean() / d.std(ddof=1))


@settings(max_examples=50, deadline=None)
@given(st.floats(0.001, 1.0), st.floats(0.05, 2.0))
def test_seeds_needed_is_the_smallest_sufficient_count(std, ratio):
    half_width = ratio * std
    n = seeds_needed(std, half_width)
    half = lambda k: scipy_stats.t.ppf(0.975, k - 1) * std / math.sqrt(k)
    assert half(n) <= half_width and (n == 2 or half(n - 1) > half_width)


@pytest.mark.parametrize("call, message", [
    (lambda: mean_ci([1.0]), "at least 2 values"),
    (lambda: mean_ci([1.0, 2.0], confidence=95), "between 0 and 1"),
    (lambda: bootstrap_ci([1.0, float("inf")]), "NaN or infinite"),
    (lambda: paired_bootstrap([1.0, 2.0], [1.0, 2.0, 3.0]), "one value of each per item"),
    (lambda: mcnemar([True, False], [True]), "one right/wrong per item"),
    (lambda: holm_bonferroni([0.2, -0.1]), r"in \[0, 1\]"),
    (lambda: seeds_needed(1.0, 0.0), "half_width > 0"),
    (lambda: seeds_needed(1.0, 0.001), "more than 10000 seeds"),
])
def test_bad_input_gets_one_sentence(call, message):
    with pytest.raises(ValueError, match=message):
        call()
