"""Classification metrics with uncertainty: accuracy with Wilson CI, ROC AUC, calibration, McNemar."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from sklearn.metrics import confusion_matrix, log_loss, roc_auc_score, roc_curve


def wilson_ci(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


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
    """Exact McNemar test on paired correctness (same images): discordant counts and two-sided p."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = float(stats.binomtest(only_a, n, 0.5).pvalue) if n else 1.0
    return {"only_a_right": only_a, "only_b_right": only_b, "p_value": p}


def seed_summary(values) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds; the spread of a single seed is unknown (NaN), never 0."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def seed_mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean over seeds (NaN with fewer than 2 seeds)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels' multipletests); NaN entries stay NaN and are not counted."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out
