"""Classification metrics with uncertainty: accuracy with Wilson CI, ROC AUC, calibration, McNemar."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import confusion_matrix, log_loss, roc_auc_score, roc_curve


def wilson_ci(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (statsmodels' proportion_confint); NaN for no trials."""
    from statsmodels.stats.proportion import proportion_confint

    if n == 0:
        return (float("nan"), float("nan"))
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    share = successes / n  # the interval holds its estimate: at 0 of n (n of n) its bound is 0 (1) exactly, not
    return (float(min(low, share)), float(max(high, share)))  # statsmodels' 7e-18 (1 - 2e-16)


THRESHOLD = 0.5  # P(male) at or above it is called male


def predicted_male(prob, threshold: float = THRESHOLD) -> np.ndarray:
    """The predicted label (1 = male) of each P(male)."""
    return (np.asarray(prob).ravel() >= threshold).astype(int)


def is_correct(prob, y_true, threshold: float = THRESHOLD) -> np.ndarray:
    """Whether each prediction is right (boolean per image)."""
    return predicted_male(prob, threshold) == np.asarray(y_true).astype(int).ravel()


def summarize(y_true, prob, threshold: float = THRESHOLD) -> dict:
    """Accuracy (with 95% CI), ROC AUC, log loss and confusion matrix of P(male) against labels."""
    y_true = np.asarray(y_true).astype(int)
    prob = np.asarray(prob).ravel()
    pred = predicted_male(prob, threshold)
    correct = int((pred == y_true).sum())
    low, high = wilson_ci(correct, len(y_true))
    auc = float(roc_auc_score(y_true, prob)) if len(set(y_true)) == 2 else float("nan")
    return {
        "n": int(len(y_true)),
        "accuracy": correct / len(y_true),
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "loss": float(log_loss(y_true, prob, labels=[0, 1])),  # clipped at the probabilities' dtype epsilon
        "roc_auc": auc,
        "confusion": confusion_matrix(y_true, pred, labels=[0, 1]).tolist(),
    }


def roc_points(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of the ROC curve."""
    fpr, tpr, _ = roc_curve(np.asarray(y_true).astype(int), np.asarray(prob).ravel())
    return fpr, tpr


def calibration(y_true, prob, bins: int = 10) -> dict:
    """Reliability bins (mean confidence vs frequency of male) and expected calibration error."""
    y_true = np.asarray(y_true).astype(int)
    prob = np.asarray(prob, dtype=np.float64).ravel()
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        if not mask.any():
            continue
        mean_p, freq = float(prob[mask].mean()), float(y_true[mask].mean())
        ece += mask.mean() * abs(mean_p - freq)
        rows.append({"bin": b, "count": int(mask.sum()), "mean_prob": mean_p, "frac_male": freq})
    return {"ece": float(ece), "bins": rows}


def mcnemar(correct_a, correct_b) -> dict:
    """Exact McNemar test on paired correctness (same images; statsmodels): discordant counts and two-sided p."""
    from statsmodels.stats.contingency_tables import mcnemar as exact_mcnemar

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    table = [[int((a & b).sum()), only_a], [only_b, int((~a & ~b).sum())]]
    p = float(exact_mcnemar(table, exact=True).pvalue) if only_a + only_b else 1.0
    return {"only_a_right": only_a, "only_b_right": only_b, "p_value": p}


def welch_p(values_a, values_b) -> float:
    """Two-sided p of Welch's t-test (unequal variances) between two sets of per-seed values; NaN when either
    has fewer than 2 values."""
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def source_masks(sources) -> dict[str, np.ndarray]:
    """A boolean mask of the images of each source (sorted), then of all of them ("all", last)."""
    sources = np.asarray(sources)
    return {**{s: sources == s for s in sorted(set(sources.tolist()))}, "all": np.ones(len(sources), bool)}


def seed_summary(values) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds; the spread of a single seed is unknown (NaN), never 0."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def seed_mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean over seeds (scipy's t.interval; NaN with fewer than 2 seeds)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float("nan"), float("nan")
    mean, sem = values.mean(), stats.sem(values)
    if sem == 0:  # every seed alike: a zero-width interval (scipy's t.interval is NaN for scale 0)
        return float(mean), float(mean)
    low, high = stats.t.interval(level, len(values) - 1, loc=mean, scale=sem)
    return float(low), float(high)


SAMPLING_RESAMPLES = 10_000
SAMPLING_SEED = 0  # the bootstrap's own seed: the same interval on every rerun


def test_sampling_ci(correct, level: float = 0.95) -> tuple[float, float]:
    """Bootstrap (BCa, scipy) interval of the seed-mean accuracy over the test images: rows of `correct` are images,
    columns seeds; the images are resampled, the training seeds held fixed (what another test draw could give)."""
    correct = np.asarray(correct, dtype=np.float64)
    per_image = correct.reshape(len(correct), -1).mean(axis=1)
    if len(per_image) < 2 or per_image.min() == per_image.max():  # no spread to resample: the estimate itself
        return float(per_image.mean()), float(per_image.mean())
    res = stats.bootstrap((per_image,), np.mean, confidence_level=level, n_resamples=SAMPLING_RESAMPLES,
                          random_state=np.random.default_rng(SAMPLING_SEED), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels' multipletests); NaN entries stay NaN and are not counted."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out
