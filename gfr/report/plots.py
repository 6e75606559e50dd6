"""Figures of the report: sample faces, class balance, curves, confusion, ROC, calibration, attributes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from gfr.data import celeba
from gfr.data.images import decode

sns.set_theme(style="whitegrid", context="notebook")
LABELS = ("female", "male")


def sample_grid(data_root, frame: pd.DataFrame, n: int = 16, seed: int = 0, cols: int = 8, title: str = ""):
    """A grid of faces with their labels (and, if the frame has p_male, the predicted probability)."""
    sample = frame.sample(min(n, len(frame)), random_state=seed) if len(frame) > n else frame
    rows = int(np.ceil(len(sample) / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.4, rows * 1.9), squeeze=False, dpi=72)  # photos: keep PNGs small
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, r) in zip(axes.flat, sample.iterrows()):
        ax.imshow(decode(celeba.image_path(data_root, r.image_id), None))
        text = LABELS[int(r.label)]
        if "p_male" in r:
            text += f"\nP(male)={r.p_male:.2f}"
        ax.set_title(text, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_balance(frame: pd.DataFrame):
    """Images per split and label."""
    counts = frame.assign(gender=frame.label.map(dict(enumerate(LABELS)))).groupby(["split", "gender"]).size()
    counts = counts.unstack().reindex(["train", "val", "test"])
    ax = counts.plot.bar(figsize=(6, 3.2), rot=0, color=["#d95f02", "#1b9e77"])
    ax.set_ylabel("images")
    ax.set_title("Class balance per split")
    for container in ax.containers:
        ax.bar_label(container, fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def training_curves(history: pd.DataFrame, title: str = ""):
    """Accuracy and loss per epoch, train and validation, one thin line per head seed (primary bold)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    primary = history.seed.iloc[0]
    for metric, ax in zip(("accuracy", "loss"), axes):
        for seed, group in history.groupby("seed"):
            width, alpha = (2.0, 1.0) if seed == primary else (0.8, 0.35)
            ax.plot(group.epoch, group[metric], color="#1f77b4", lw=width, alpha=alpha,
                    label="train" if seed == primary else None)
            ax.plot(group.epoch, group[f"val_{metric}"], color="#ff7f0e", lw=width, alpha=alpha,
                    label="validation" if seed == primary else None)
        if "phase" in history and history.phase.nunique() > 1:
            ax.axvline(history[history.phase == history.phase.iloc[0]].epoch.max() + 0.5, color="grey", ls=":",
                       label=f"{history.phase.iloc[-1]} starts")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    fig.suptitle(title or "Training curves (bold: reported seed; thin: other seeds)")
    fig.tight_layout()
    return fig


def confusion(matrix, title: str = "Confusion matrix (test)"):
    """A labelled confusion matrix."""
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    sns.heatmap(np.asarray(matrix), annot=True, fmt="d", cmap="Blues", cbar=False,
                xticklabels=LABELS, yticklabels=LABELS, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def roc_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, float]]):
    """ROC curves: name -> (fpr, tpr, auc)."""
    fig, ax = plt.subplots(figsize=(5, 4.4))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC on the test split")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def reliability(bins: list[dict], ece: float, title: str):
    """Reliability diagram: mean predicted P(male) against the observed fraction of males per bin."""
    frame = pd.DataFrame(bins)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.plot(frame.mean_prob, frame.frac_male, marker="o")
    for _, r in frame.iterrows():
        ax.annotate(str(int(r["count"])), (r.mean_prob, r.frac_male), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set_xlabel("mean predicted P(male)")
    ax.set_ylabel("fraction male")
    ax.set_title(f"{title}\nECE = {ece:.3f} (counts per bin)")
    fig.tight_layout()
    return fig


def error_by_attribute(table: pd.DataFrame, title: str = "Test error rate by attribute value"):
    """Horizontal error bars (95% CI) of error rate per attribute value."""
    table = table.sort_values("error_rate")
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(table) + 1.2))
    y = np.arange(len(table))
    ax.errorbar(table.error_rate, y, xerr=[table.error_rate - table.ci_low, table.ci_high - table.error_rate],
                fmt="o", ms=4, capsize=2)
    ax.set_yticks(y, [f"{a} = {v} (n={n})" for a, v, n in zip(table.attribute, table.value, table["count"])], fontsize=8)
    ax.set_xlabel("error rate")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def accuracy_comparison(table: pd.DataFrame):
    """Test accuracy per run: ours (seed mean with its 95% CI; the reported head with its Wilson CI) and the original's.

    A run with one seed has no interval for its mean: it is drawn hollow, without a bar (never a zero-width bar)."""
    ok = table[table.status == "ok"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(ok))
    has_ci = ok.test_accuracy_seed_ci_low.notna().values
    mean = ok.test_accuracy_seed_mean * 100
    ax.errorbar(x[has_ci] - 0.1, mean[has_ci],
                yerr=[(ok.test_accuracy_seed_mean - ok.test_accuracy_seed_ci_low)[has_ci] * 100,
                      (ok.test_accuracy_seed_ci_high - ok.test_accuracy_seed_mean)[has_ci] * 100],
                fmt="o", capsize=3, label="ours: seed mean, 95% CI")
    if (~has_ci).any():
        ax.scatter(x[~has_ci] - 0.1, mean[~has_ci], marker="o", facecolors="none", edgecolors="C0",
                   label="ours: one seed (no interval)")
    ax.errorbar(x + 0.1, ok.test_accuracy * 100,
                yerr=[(ok.test_accuracy - ok.test_accuracy_ci_low) * 100, (ok.test_accuracy_ci_high - ok.test_accuracy) * 100],
                fmt="s", capsize=3, alpha=0.6, label="ours: reported head, Wilson 95% CI")
    orig = ok.original_test_accuracy
    if orig.notna().any():
        ax.scatter(x[orig.notna().values], orig.dropna(), marker="x", color="black", label="original write-up")
    ax.set_xticks(x, ok.run, rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
