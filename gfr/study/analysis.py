"""Cross-run analysis for the report: parameter tables, noise between runs, model choice, error analysis."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from gfr.data import celeba
from gfr.models import backbones
from gfr.params import PARAMS_DIR, known_iterations, load_params
from gfr.study import artefacts, metrics


def params_table(params_dir: str | os.PathLike = PARAMS_DIR, extra: list | None = None) -> pd.DataFrame:
    """One row per iteration, generated from params/ (never typed by hand)."""
    rows = []
    for it in known_iterations(params_dir):
        p = load_params(it, params_dir=params_dir, extra=extra)
        h, w = p.image_size
        rows.append({
            "iteration": it,
            "description": p.description,
            "image size fed (H x W)": f"{h} x {w}",
            "model input shape": "None x None x 3" if p.native_input else f"{h} x {w} x 3",
            "epochs": p.epochs,
            "batch size": p.head.batch_size,
            "optimizer": f"Adam (lr {p.head.learning_rate:g})",
            "loss": "binary cross-entropy",
            "head": f"GAP -> Dense({p.head.dense_units}, relu) -> Dense(1, sigmoid)",
            "head seeds": ", ".join(map(str, p.head.seeds)),
            "split seed": p.seed,
            "weights": p.weights,
        })
    return pd.DataFrame(rows).set_index("iteration")


def architecture_table() -> pd.DataFrame:
    """The backbones of the registry: default input, pooled feature size, preprocessing, Keras weights file."""
    return pd.DataFrame([
        {"backbone": b.name, "ImageNet default input": "x".join(map(str, b.default_input_size)),
         "pooled features": b.feature_dim, "preprocessing": f"keras.applications.{b.module}.preprocess_input",
         "Keras weights file": b.weights_file}
        for b in backbones.REGISTRY.values()
    ]).set_index("backbone")


def reported_predictions(runs_dir: str | os.PathLike, run: str) -> pd.DataFrame:
    """A run's test predictions by its reported head: image_id, label, p_male (the primary seed's P(male))."""
    run_dir = Path(runs_dir) / run
    preds = artefacts.test_predictions(run_dir)
    column = artefacts.prob_column(artefacts.load_record(run_dir)["primary_seed"])
    return preds[["image_id", "label"]].assign(p_male=preds[column].values)


def seed_accuracies(runs_dir, run: str) -> np.ndarray:
    """Test accuracy of each head seed of a run."""
    return artefacts.seeds_table(Path(runs_dir) / run).test_accuracy.to_numpy()


def noise_table(runs_dir, runs: list[str]) -> pd.DataFrame:
    """Every pair of runs: accuracy difference over seeds, Welch's t-test, and McNemar on the same test images."""
    rows = []
    for a, b in itertools.combinations(runs, 2):
        acc_a, acc_b = seed_accuracies(runs_dir, a), seed_accuracies(runs_dir, b)
        welch = stats.ttest_ind(acc_a, acc_b, equal_var=False).pvalue if len(acc_a) > 1 and len(acc_b) > 1 else np.nan
        pa = reported_predictions(runs_dir, a)
        pb = reported_predictions(runs_dir, b).set_index("image_id").loc[pa.image_id]
        mc = metrics.mcnemar(metrics.is_correct(pa.p_male, pa.label), metrics.is_correct(pb.p_male, pa.label))
        diff = acc_a.mean() - acc_b.mean()
        rows.append({
            "run A": a, "run B": b, "mean acc A - B (pp)": 100 * diff,
            "Welch p (5 seeds)": welch, "McNemar p (reported heads)": mc["p_value"],
            "larger than noise": bool(welch < 0.05 and mc["p_value"] < 0.05) if not np.isnan(welch) else mc["p_value"] < 0.05,
        })
    return pd.DataFrame(rows)


def peer_head_to_head(ours: pd.DataFrame, peer_predictions: pd.DataFrame) -> dict:
    """Our reported head vs the peer on the same images: who is right where, accuracies with CIs, McNemar."""
    theirs = peer_predictions.set_index("image_id").loc[ours.image_id]
    ours_right = metrics.is_correct(ours.p_male, ours.label)
    peer_right = theirs.pred.values == ours.label.values
    n = len(ours)
    return {"n": n, "ours_right": ours_right, "peer_right": peer_right,
            "ours_ci": metrics.wilson_ci(int(ours_right.sum()), n), "peer_ci": metrics.wilson_ci(int(peer_right.sum()), n),
            "mcnemar": metrics.mcnemar(ours_right, peer_right)}


def choose(results: pd.DataFrame) -> pd.Series:
    """The chosen run: highest mean validation accuracy over head seeds (the test split plays no part)."""
    ok = results[results.status == "ok"]
    if ok.empty:
        raise ValueError("no finished run to choose from")
    return ok.loc[ok.val_accuracy_seed_mean.astype(float).idxmax()]


def attribute_errors(predictions: pd.DataFrame, attributes: pd.DataFrame, prob_col: str, min_count: int = 10) -> pd.DataFrame:
    """Error rate (with 95% Wilson CI) by value of each CelebA attribute other than Male, on the test images."""
    attrs = attributes.loc[predictions.image_id].drop(columns=[celeba.LABEL])
    min_count = min(min_count, max(1, len(predictions) // 4))  # tiny test sets still get rows
    wrong = ~metrics.is_correct(predictions[prob_col], predictions.label)
    overall = wrong.mean()
    rows = []
    for name in attrs.columns:
        for value, label in ((1, "yes"), (-1, "no")):
            mask = attrs[name].values == value
            n = int(mask.sum())
            if n < min_count:
                continue
            errors = int(wrong[mask].sum())
            low, high = metrics.wilson_ci(errors, n)
            rows.append({"attribute": name, "value": label, "count": n, "errors": errors,
                         "error_rate": errors / n, "ci_low": low, "ci_high": high,
                         "vs overall": "higher" if low > overall else "lower" if high < overall else "within CI"})
    return pd.DataFrame(rows, columns=["attribute", "value", "count", "errors", "error_rate", "ci_low", "ci_high", "vs overall"])


def attribute_profile(image_ids, attributes: pd.DataFrame, reference_ids) -> pd.DataFrame:
    """Attributes over-represented in `image_ids` compared with `reference_ids` (share of 'yes' in each)."""
    a = (attributes.loc[list(image_ids)] == 1).mean()
    b = (attributes.loc[list(reference_ids)] == 1).mean()
    out = pd.DataFrame({"share in group": a, "share in test split": b, "difference": a - b})
    return out.drop(index=celeba.LABEL, errors="ignore").sort_values("difference", ascending=False)


LEVERS = {2: "more epochs (20 -> 50)", 3: "native 218x178 input instead of 128x128", 4: "fine-tuning the top block"}


def lever_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per backbone, mean validation/test accuracy change (percentage points) from iteration k-1 to k."""
    ok = results[results.status == "ok"].set_index(["backbone", "iteration"])
    rows = []
    for (backbone, it), r in ok.iterrows():
        before = it - 1
        if (backbone, before) not in ok.index or it not in LEVERS:
            continue
        p = ok.loc[(backbone, before)]
        rows.append({"backbone": backbone, "from": f"it{before}", "to": f"it{it}", "lever": LEVERS[it],
                     "val acc change (pp)": 100 * (r.val_accuracy_seed_mean - p.val_accuracy_seed_mean),
                     "test acc change (pp)": 100 * (r.test_accuracy_seed_mean - p.test_accuracy_seed_mean)})
    return pd.DataFrame(rows)
