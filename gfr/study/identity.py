"""The identity question: test images whose person is (or is not) in training, and an identity-disjoint split."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from gfr.data import celeba
from gfr.errors import GfrError
from gfr.models.head import predict_proba, train_head
from gfr.study import artefacts, metrics


def identities(data_root: str | os.PathLike, image_ids) -> np.ndarray:
    """The person id of each image (identity_CelebA.txt); a clear error when the file or an image is missing."""
    root = celeba.data_dir(data_root)
    found = celeba.read_identities(root)
    if found is None:
        raise GfrError(f"{root / celeba.IDENTITY_FILE}: no identity file")
    missing = pd.Index(image_ids).difference(found.index)
    if len(missing):
        raise GfrError(f"{celeba.IDENTITY_FILE}: no identity for {len(missing)} images (e.g. {missing[0]})")
    return found.loc[list(image_ids)].to_numpy()


def shared_test_images(manifest: pd.DataFrame, people: np.ndarray) -> set[str]:
    """The test images whose person also has an image in the training split."""
    in_train = set(people[manifest.split.values == "train"])
    test = manifest.split.values == "test"
    return {i for i, p in zip(manifest.image_id.values[test], people[test]) if p in in_train}


def accuracy_by_sharing(test_predictions: pd.DataFrame, shared: set[str]) -> pd.DataFrame:
    """Test accuracy on the images whose person is / is not in training: the reported head (first seed) with its
    Wilson 95% CI, and the mean over seeds; `test_predictions` is a run's saved predictions file."""
    columns = [c for c in test_predictions.columns if c.startswith(artefacts.prob_column(0)[:-1])]
    is_shared = test_predictions.image_id.isin(shared).values
    rows = []
    for group, mask in (("person in training", is_shared), ("person not in training", ~is_shared)):
        y = test_predictions.label.values[mask]
        accs = [metrics.is_correct(test_predictions[c].values[mask], y).mean() for c in columns]
        right = int(metrics.is_correct(test_predictions[columns[0]].values[mask], y).sum())
        low, high = metrics.wilson_ci(right, int(mask.sum()))
        rows.append({"test images": group, "images": int(mask.sum()), "reported head": accs[0], "CI low": low,
                     "CI high": high, "seed mean": float(np.mean(accs)), "seeds": len(accs)})
    return pd.DataFrame(rows).set_index("test images")


def disjoint_split(manifest: pd.DataFrame, people: np.ndarray, seed: int, val_fraction: float,
                   test_fraction: float) -> np.ndarray:
    """A split by person (no person in two parts): people in seeded random order fill test, then validation, up to
    their fractions of the images; the rest is training. Returns the split of each manifest row."""
    order = np.random.default_rng(seed).permutation(np.unique(people))
    counts = pd.Series(people).value_counts()
    cumulative = np.cumsum(counts.loc[order].to_numpy())
    n = len(people)
    part = np.where(cumulative <= test_fraction * n, "test",
                    np.where(cumulative <= (test_fraction + val_fraction) * n, "val", "train"))
    return pd.Series(part, index=order).loc[people].to_numpy()


def disjoint_check(features: np.ndarray, labels: np.ndarray, split: np.ndarray, head, epochs: int) -> pd.DataFrame:
    """Heads (the study's, one per seed, best-validation epoch) trained on an identity-disjoint split's training
    images; their test accuracy with the reported head's Wilson 95% CI."""
    x = {s: np.asarray(features[split == s]) for s in ("train", "val", "test")}
    y = {s: labels[split == s] for s in ("train", "val", "test")}
    rows = []
    for seed in head.seeds:
        model, history, kept, _ = train_head(x["train"], y["train"], x["val"], y["val"], head.dense_units,
                                             head.learning_rate, head.batch_size, epochs, seed)
        right = metrics.is_correct(predict_proba(model, x["test"]), y["test"])
        low, high = metrics.wilson_ci(int(right.sum()), len(right))
        rows.append({"seed": seed, "kept epoch": kept, "val accuracy": history["val_accuracy"][kept - 1],
                     "test accuracy": right.mean(), "CI low": low, "CI high": high, "test images": len(right)})
    return pd.DataFrame(rows).set_index("seed")


def run_features(runs_dir, run_name: str, data_dir, manifest_path, cache_dir=None):
    """(prepared run, pooled features of every manifest row) of a saved run, with its own recorded parameters,
    from the feature cache (computed on a miss); the run's saved result is left alone."""
    from gfr.params import load_params
    from gfr.study import run

    record = artefacts.load_record(os.path.join(runs_dir, run_name))
    params = load_params(record["iteration"], {k: v for k, v in record["params"].items() if k != "finetune"})
    prepared = run.prepare_run(record["backbone"], record["iteration"], data_dir, manifest_path, runs_dir, params,
                               cache_dir, progress=False, forget_result=False)
    features, _ = prepared.extract()
    return prepared, np.asarray(features)
