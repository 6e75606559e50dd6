"""Metrics against values worked out by hand (or published)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gfr.study import metrics


@pytest.mark.parametrize(
    "k, n, low, high",
    [
        (8, 10, 0.4901625, 0.9433178),  # statsmodels proportion_confint(8, 10, method="wilson")
        (0, 10, 0.0, 0.2775328),
        (10, 10, 0.7224672, 1.0),
        (50, 100, 0.4038315, 0.5961685),
        (950, 1000, 0.9346862, 0.9618697),  # (2k + z^2 -+ z sqrt(z^2 + 4k(n-k)/n)) / 2(n + z^2)
    ],
)
def test_wilson_ci_known_values(k, n, low, high):
    lo, hi = metrics.wilson_ci(k, n)
    assert lo == pytest.approx(low, abs=1e-6) and hi == pytest.approx(high, abs=1e-6)


def test_wilson_ci_empty_is_nan():
    assert all(math.isnan(v) for v in metrics.wilson_ci(0, 0))


def test_wilson_ci_brackets_the_proportion_and_narrows_with_n():
    small = metrics.wilson_ci(7, 10)
    large = metrics.wilson_ci(700, 1000)
    assert small[0] < 0.7 < small[1] and large[0] < 0.7 < large[1]
    assert large[1] - large[0] < small[1] - small[0]


def test_summarize_hand_made():
    y = [1, 1, 0, 0, 1]
    p = [0.9, 0.4, 0.2, 0.6, 0.5]  # predictions at threshold 0.5 (inclusive): 1 0 0 1 1
    m = metrics.summarize(y, p)
    assert m["n"] == 5 and m["accuracy"] == pytest.approx(0.6)
    assert m["confusion"] == [[1, 1], [1, 2]]  # rows: true female, true male; columns: predicted
    assert m["roc_auc"] == pytest.approx(4 / 6)  # 4 of the 6 (male, female) pairs are ranked right
    expected_loss = -np.mean(np.log([0.9, 0.4, 0.8, 0.4, 0.5]))
    assert m["loss"] == pytest.approx(expected_loss)
    assert (m["accuracy_ci_low"], m["accuracy_ci_high"]) == pytest.approx(metrics.wilson_ci(3, 5))


def test_summarize_threshold_and_single_class():
    m = metrics.summarize([1, 1, 1], [0.2, 0.6, 0.8], threshold=0.7)
    assert m["accuracy"] == pytest.approx(1 / 3) and math.isnan(m["roc_auc"])
    assert m["confusion"] == [[0, 0], [2, 1]]


def test_summarize_clips_log_loss():
    m = metrics.summarize([1, 0], [0.0, 1.0])
    assert math.isfinite(m["loss"]) and m["loss"] > 10


def test_calibration_perfect_toy_has_zero_ece():
    y, p = [], []
    for centre in np.arange(0.05, 1.0, 0.1):  # 100 samples per bin, round(100 * centre) of them male
        positives = int(round(100 * centre))
        y += [1] * positives + [0] * (100 - positives)
        p += [centre] * 100
    cal = metrics.calibration(y, p)
    assert cal["ece"] == pytest.approx(0.0, abs=1e-9)
    assert len(cal["bins"]) == 10 and all(b["count"] == 100 for b in cal["bins"])
    for b in cal["bins"]:
        assert b["mean_prob"] == pytest.approx(b["frac_male"])


def test_calibration_overconfident_toy():
    y = [1, 0] * 50
    cal = metrics.calibration(y, [0.9] * 100)
    assert cal["ece"] == pytest.approx(0.4)
    assert cal["bins"] == [{"bin": 9, "count": 100, "mean_prob": pytest.approx(0.9), "frac_male": 0.5}]


def test_calibration_edges_land_in_first_and_last_bin():
    cal = metrics.calibration([0, 1], [0.0, 1.0], bins=5)
    assert [b["bin"] for b in cal["bins"]] == [0, 4] and cal["ece"] == pytest.approx(0.0)


def test_mcnemar_counts():
    a = [1, 1, 0, 0, 1, 0, 1]
    b = [1, 0, 1, 0, 0, 0, 1]
    r = metrics.mcnemar(a, b)
    assert (r["only_a_right"], r["only_b_right"]) == (2, 1)
    assert r["p_value"] == pytest.approx(1.0)


def test_mcnemar_exact_p():
    r = metrics.mcnemar([1] * 10 + [1] * 5, [0] * 10 + [1] * 5)
    assert (r["only_a_right"], r["only_b_right"]) == (10, 0)
    assert r["p_value"] == pytest.approx(2 * 0.5**10)
    assert metrics.mcnemar([1, 0], [1, 0]) == {"only_a_right": 0, "only_b_right": 0, "p_value": 1.0}


def test_seed_summary():
    assert metrics.seed_summary([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    mean, std = metrics.seed_summary([0.9])
    assert mean == 0.9 and math.isnan(std)  # one seed has no spread: unknown, never 0.0


def test_roc_points():
    fpr, tpr = metrics.roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert fpr[0] == 0 and tpr[-1] == 1 and fpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


def test_predicted_male_and_is_correct_use_one_threshold():
    prob = [0.0, 0.49, 0.5, 0.51, 1.0]
    assert metrics.predicted_male(prob).tolist() == [0, 0, 1, 1, 1]  # 0.5 itself is male (inclusive)
    assert metrics.is_correct(prob, [0, 1, 1, 0, 1]).tolist() == [True, False, True, False, True]
    m = metrics.summarize([0, 1, 1, 0, 1], prob)
    assert m["accuracy"] == pytest.approx(metrics.is_correct(prob, [0, 1, 1, 0, 1]).mean())


# ---- the library-based intervals and tests against the formulas they replace ------------------------------------

def _hand_wilson(k, n, z=1.959964):
    """The Wilson score interval as it was written by hand (z rounded to 6 decimals)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _hand_mcnemar_p(only_a, only_b):
    """Exact McNemar as it was written by hand: a two-sided binomial test of the discordant pairs."""
    from scipy import stats

    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0


def _hand_t_interval(values, level=0.95):
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean() - half, values.mean() + half


def test_wilson_ci_matches_the_hand_written_formula_on_random_counts():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(1, 10_000))
        k = int(rng.integers(0, n + 1))
        # the old z (1.959964) was rounded; statsmodels uses the exact 1.959963984540054: at most ~4e-9 apart
        assert metrics.wilson_ci(k, n) == pytest.approx(_hand_wilson(k, n), abs=5e-9)


@pytest.mark.parametrize("only_a, only_b, p", [(10, 0, 2 * 0.5**10), (5, 5, 1.0), (0, 3, 0.25), (1, 9, 0.021484375),
                                                (7, 2, 0.1796875)])
def test_mcnemar_exact_textbook_values(only_a, only_b, p):
    a = [1] * only_a + [0] * only_b + [1] * 4 + [0] * 3  # 4 both right, 3 both wrong: not counted
    b = [0] * only_a + [1] * only_b + [1] * 4 + [0] * 3
    r = metrics.mcnemar(a, b)
    assert (r["only_a_right"], r["only_b_right"]) == (only_a, only_b)
    assert r["p_value"] == pytest.approx(p, rel=1e-12)


def test_mcnemar_matches_the_binomial_test_on_random_pairs():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 600))
        a, b = rng.random(n) < rng.random(), rng.random(n) < rng.random()
        r = metrics.mcnemar(a, b)
        assert r["p_value"] == pytest.approx(_hand_mcnemar_p(r["only_a_right"], r["only_b_right"]), rel=1e-12)


def test_seed_mean_ci_textbook_value_and_the_hand_written_t_interval():
    # mean 0.92, s = 0.02, n = 3: t(0.975, 2) = 4.302653; half-width 4.302653 * 0.02 / sqrt(3) = 0.049683
    assert metrics.seed_mean_ci([0.90, 0.92, 0.94]) == pytest.approx((0.92 - 0.0496827, 0.92 + 0.0496827), abs=1e-7)
    rng = np.random.default_rng(2)
    for _ in range(200):
        values = rng.uniform(0.8, 1.0, int(rng.integers(2, 9)))
        assert metrics.seed_mean_ci(values) == pytest.approx(_hand_t_interval(values), abs=1e-15)


def test_seed_mean_ci_of_identical_seeds_is_a_point_and_of_one_seed_unknown():
    assert metrics.seed_mean_ci([0.9, 0.9, 0.9]) == (0.9, 0.9)
    assert all(math.isnan(v) for v in metrics.seed_mean_ci([0.9]))


def test_welch_p_is_scipys_and_nan_below_two_values():
    from scipy import stats

    a, b = [0.95, 0.96, 0.955, 0.95], [0.94, 0.95, 0.93]
    assert metrics.welch_p(a, b) == stats.ttest_ind(a, b, equal_var=False).pvalue
    assert metrics.welch_p(a, b) == metrics.welch_p(b, a)
    assert math.isnan(metrics.welch_p([0.9], b))


def test_source_masks_each_sorted_source_then_all():
    masks = metrics.source_masks(["lfw", "utk", "lfw", "celeb"])
    assert list(masks) == ["celeb", "lfw", "utk", "all"]
    assert masks["lfw"].tolist() == [True, False, True, False] and masks["all"].all()
    assert list(metrics.source_masks([])) == ["all"]


def test_wilson_interval_at_the_edges_holds_its_estimate_exactly():
    """0 of n and n of n: the bound at the estimate is exactly 0 or 1 (error bars from it must not go negative)."""
    assert metrics.wilson_ci(0, 37)[0] == 0.0 and metrics.wilson_ci(37, 37)[1] == 1.0
    for k in range(0, 38):
        low, high = metrics.wilson_ci(k, 37)
        assert low <= k / 37 <= high
