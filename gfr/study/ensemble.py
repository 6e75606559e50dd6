"""An ensemble of finished runs (mean P(male) of their heads, seed by seed), judged on validation by the study's rule."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from gfr.errors import GfrError
from gfr.study import artefacts, metrics
from gfr.study.analysis import MIN_SEEDS, settle

# The study's ensemble, fixed before any result: the augmented runs (iteration 5) whose ImageNet weights exist here.
MEMBERS = ["InceptionV3-it5", "ResNet50-it5"]


def name(members: list[str]) -> str:
    """The ensemble's name, e.g. Ensemble(InceptionV3-it5+ResNet50-it5)."""
    return f"Ensemble({'+'.join(members)})"


def _predictions(runs_dir: str | os.PathLike, run: str, part: str) -> pd.DataFrame:
    path = Path(runs_dir) / run
    try:
        return artefacts.test_predictions(path, part).set_index("image_id")
    except FileNotFoundError:
        raise GfrError(f"{path}: no saved {part} predictions (rerun it: `make reports/runs/{run}.ipynb`)") from None


def seed_accuracies(runs_dir: str | os.PathLike, members: list[str]) -> pd.DataFrame:
    """Per seed the members share: validation and test accuracy of each member and of the ensemble (the mean of
    the members' P(male) from their heads of that seed). Columns: model, seed, val_accuracy, test_accuracy."""
    if len(members) < 2:
        raise GfrError(f"an ensemble needs at least two runs, got {members}")
    rows, frames = [], {}
    for part in ("val", "test"):
        frames[part] = {m: _predictions(runs_dir, m, part) for m in members}
        first = frames[part][members[0]]
        for m, frame in frames[part].items():
            if not frame.index.equals(first.index):
                raise GfrError(f"{m}: its {part} images differ from {members[0]}'s (another split manifest?)")
    columns = [set(c for c in frames["val"][m].columns if c.startswith("prob_")) for m in members]
    shared = sorted(set.intersection(*columns), key=lambda c: int(c.removeprefix("prob_seed")))
    if len(shared) < MIN_SEEDS:
        raise GfrError(f"{', '.join(members)} share {len(shared)} seed(s); an ensemble needs {MIN_SEEDS}")
    for col in shared:
        acc = {}
        for part in ("val", "test"):
            y = frames[part][members[0]].label.to_numpy()
            probs = {m: frames[part][m][col].to_numpy() for m in members}
            probs[name(members)] = np.mean(list(probs.values()), axis=0)
            acc[part] = {model: float(metrics.is_correct(p, y).mean()) for model, p in probs.items()}
        rows += [{"model": model, "seed": int(col.removeprefix("prob_seed")), "val_accuracy": acc["val"][model],
                  "test_accuracy": acc["test"][model]} for model in acc["val"]]
    return pd.DataFrame(rows)


def verdict(seeds: pd.DataFrame) -> dict:
    """The study's choice rule (analysis.settle) between the best member and the ensemble, on validation only: the
    higher mean wins, but the ensemble (the costlier) only if the member is not within its noise (Welch, p >= ALPHA)."""
    means = seeds.groupby("model", sort=False).val_accuracy.mean()
    ensemble = means.index[-1]
    best_member = means.drop(ensemble).idxmax()
    settled = settle({m: seeds[seeds.model == m].val_accuracy.to_numpy() for m in (best_member, ensemble)},
                     cost={best_member: 0, ensemble: 1})
    return {"ensemble": ensemble, "best_member": best_member, "ensemble_val_mean": float(means[ensemble]),
            "best_member_val_mean": float(means[best_member]), "welch_p": settled["p_value"],
            "wins": settled["chosen"] == ensemble}


def summary(seeds: pd.DataFrame) -> pd.DataFrame:
    """Seed mean, spread and 95% CI of the mean of validation and test accuracy, per model."""
    rows = {}
    for model, group in seeds.groupby("model", sort=False):
        row = {"seeds": len(group)}
        for col in ("val_accuracy", "test_accuracy"):
            row[f"{col} mean"], row[f"{col} std"] = metrics.seed_summary(group[col])
            row[f"{col} CI low"], row[f"{col} CI high"] = metrics.seed_mean_ci(group[col])
        rows[model] = row
    table = pd.DataFrame(rows).T
    return table.astype({"seeds": int})


def wild_predictions(predictions: dict[str, pd.DataFrame], members: list[str]) -> pd.DataFrame:
    """The ensemble's in-the-wild predictions: the mean of its members' P(male) (their reported heads), same framing."""
    missing = [m for m in members if m not in predictions]
    if missing:
        raise GfrError(f"no in-the-wild predictions for {', '.join(missing)} (run `gfr wild --runs {' '.join(missing)}`)")
    frames = [predictions[m].sort_values("file").reset_index(drop=True) for m in members]
    for m, f in zip(members[1:], frames[1:]):
        if not f.file.equals(frames[0].file):
            raise GfrError(f"{m}: its in-the-wild images differ from {members[0]}'s")
    return frames[0].assign(p_male=np.mean([f.p_male.to_numpy() for f in frames], axis=0))
