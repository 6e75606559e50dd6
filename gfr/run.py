"""One backbone x iteration end to end: features, heads over several seeds, metrics, timing, saved run."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gfr import atomic, backbones, celeba, features, hardware, metrics, split, timing
from gfr.errors import GfrError, WeightsUnavailable
from gfr.head import full_model, predict_proba, save_head, train_head
from gfr.params import Params, load_params

RUNS_DIR = Path(__file__).resolve().parent.parent / "reports" / "runs"
MANIFEST = "manifest.json"
HEAD_FILE = "head.weights.h5"


def run_name(backbone: str, iteration: int) -> str:
    """The run's name, e.g. ResNet50-it3."""
    return f"{backbone}-it{iteration}"


def _split_arrays(feats, frame: pd.DataFrame, name: str):
    rows = np.flatnonzero(frame.split.values == name)
    return np.asarray(feats[rows]), frame.label.values[rows], rows


def _record(run_dir: Path, record: dict) -> dict:
    atomic.write_json(run_dir / MANIFEST, record)
    return record


def execute(
    backbone_name: str,
    iteration: int,
    data_root: str | os.PathLike | None,
    manifest_path: str | os.PathLike,
    runs_dir: str | os.PathLike = RUNS_DIR,
    params: Params | None = None,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """Run one backbone x iteration and save it under runs_dir/<name>/; return its manifest.

    A backbone whose ImageNet weights cannot be had is recorded with status 'skipped' and the reason.
    """
    backbone = backbones.get(backbone_name)
    params = params or load_params(iteration)
    data_root = celeba.data_dir(data_root)
    frame = split.read_manifest(manifest_path)
    run_dir = Path(runs_dir) / run_name(backbone.name, iteration)
    record = {
        "run": run_name(backbone.name, iteration),
        "backbone": backbone.name,
        "iteration": iteration,
        "description": params.description,
        "params": params.as_dict(),
        "params_files": list(params.sources),
        "split_manifest": str(manifest_path),
        "split_manifest_sha256": split.manifest_hash(manifest_path),
        "input_size": list(params.image_size),
        "native_input": params.native_input,
        "preprocessing": f"keras.applications.{backbone.module}.preprocess_input",
        "hardware": hardware.describe(),
    }
    try:
        weights = backbones.resolve_weights(backbone, params.weights)
    except WeightsUnavailable as exc:
        print(f"skipped {record['run']}: {exc}", file=sys.stderr)
        return _record(run_dir, {**record, "status": "skipped", "reason": str(exc)})
    record.update(weights_file=weights.path, weights_sha256=weights.sha256, weights_origin=weights.origin)

    start = time.perf_counter()
    feats, cache_info = features.extract(
        backbone.name, list(frame.image_id), data_root, params.image_size, params.native_input, weights,
        record["split_manifest_sha256"], params.feature_batch_size, cache, params.seed, progress,
    )
    feature_s = time.perf_counter() - start
    x_train, y_train, _ = _split_arrays(feats, frame, "train")
    x_val, y_val, _ = _split_arrays(feats, frame, "val")
    x_test, y_test, test_rows = _split_arrays(feats, frame, "test")

    start = time.perf_counter()
    h = params.head
    per_seed, histories, test_probs, heads = [], [], {}, {}
    for seed in h.seeds:
        head, history = train_head(x_train, y_train, x_val, y_val, h.dense_units, h.learning_rate,
                                   h.batch_size, params.epochs, seed)
        prob_val, prob_test = predict_proba(head, x_val), predict_proba(head, x_test)
        val_m, test_m = metrics.classify(y_val, prob_val), metrics.classify(y_test, prob_test)
        per_seed.append({
            "seed": seed,
            "train_accuracy": history["accuracy"][-1], "train_loss": history["loss"][-1],
            "val_accuracy": history["val_accuracy"][-1], "val_loss": history["val_loss"][-1],
            "test_accuracy": test_m["accuracy"], "test_roc_auc": test_m["roc_auc"],
        })
        histories.append(pd.DataFrame(history).assign(seed=seed, epoch=np.arange(1, params.epochs + 1)))
        test_probs[f"prob_seed{seed}"] = prob_test
        heads[seed] = head
        if progress:
            print(f"{record['run']} seed {seed}: val {val_m['accuracy']:.4f} test {test_m['accuracy']:.4f}", file=sys.stderr)
    head_s = time.perf_counter() - start

    primary = h.seeds[0]
    head = heads[primary]
    test_metrics = metrics.classify(y_test, test_probs[f"prob_seed{primary}"])
    seeds_frame = pd.DataFrame(per_seed)
    summary = {f"{col}_mean": metrics.seed_summary(seeds_frame[col])[0] for col in seeds_frame if col != "seed"}
    summary.update({f"{col}_std": metrics.seed_summary(seeds_frame[col])[1] for col in seeds_frame if col != "seed"})

    # End-to-end inference from the JPEG files with the full model (backbone + head).
    extractor = backbones.build_extractor(backbone, params.image_size, params.native_input, weights)
    model = full_model(extractor, head)
    test_paths = [celeba.image_path(data_root, i) for i in frame.image_id.values[test_rows]]
    t = params.timing
    timed = timing.time_end_to_end(model, backbone, test_paths, params.image_size, t.batch_size, t.warmup, t.repeats)
    end_to_end_gap = float(np.max(np.abs(timed.pop("probabilities") - test_probs[f"prob_seed{primary}"])))

    run_dir.mkdir(parents=True, exist_ok=True)
    head_sha = save_head(head, run_dir / HEAD_FILE)
    atomic.write_csv(run_dir / "history.csv", pd.concat(histories, ignore_index=True))
    atomic.write_csv(run_dir / "seeds.csv", seeds_frame)
    atomic.write_csv(run_dir / "test_predictions.csv",
                     pd.DataFrame({"image_id": frame.image_id.values[test_rows], "label": y_test, **test_probs}))
    primary_row = seeds_frame.iloc[0]
    return _record(run_dir, {
        **record,
        "status": "ok",
        "feature_dim": backbone.feature_dim,
        "feature_cache": cache_info,
        "head_file": HEAD_FILE,
        "head_sha256": head_sha,
        "head_units": h.dense_units,
        "primary_seed": primary,
        "split_sizes": {s: int((frame.split == s).sum()) for s in split.SPLITS},
        "train_accuracy": float(primary_row.train_accuracy), "train_loss": float(primary_row.train_loss),
        "val_accuracy": float(primary_row.val_accuracy), "val_loss": float(primary_row.val_loss),
        "test": test_metrics,
        "seeds": summary,
        "inference": timed,
        "full_model_vs_cached_max_abs_diff": end_to_end_gap,
        "stage_seconds": {"features": feature_s, "heads": head_s, "inference_timing": sum(timed["runs_s"])},
    })


def load_record(run_dir: str | os.PathLike) -> dict:
    """A saved run's manifest."""
    import json

    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise GfrError(f"no run manifest at {path}")
    return json.loads(path.read_text())
