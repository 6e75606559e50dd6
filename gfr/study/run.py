"""One backbone x iteration end to end: features, heads over several seeds, metrics, timing, saved run."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gfr import files
from gfr.models import backbones, feature_cache
from gfr.data import celeba, split
from gfr.study import hardware, metrics, timing
from gfr.errors import GfrError, WeightsUnavailable
from gfr.models.head import full_model, predict_proba, save_head, train_head
from gfr.params import Params, load_params
from gfr.paths import RUNS_DIR

MANIFEST = "manifest.json"
HEAD_FILE = "head.weights.h5"


def run_name(backbone: str, iteration: int) -> str:
    """The run's name, e.g. ResNet50-it3."""
    return f"{backbone}-it{iteration}"


def _split_arrays(feats, frame: pd.DataFrame, name: str):
    rows = np.flatnonzero(frame.split.values == name)
    return np.asarray(feats[rows]), frame.label.values[rows], rows


def _record(run_dir: Path, record: dict) -> dict:
    files.write_json(run_dir / MANIFEST, record)
    return record


def base_record(backbone: backbones.Backbone, iteration: int, params: Params, manifest_path) -> dict:
    """The fields every run manifest carries, whatever its outcome."""
    return {
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


def seed_row(seed: int, history: dict, y_test, prob_test, epoch: int = -1) -> dict:
    """One head seed's final (or chosen-epoch) train/val numbers and its test accuracy."""
    test_m = metrics.classify(y_test, prob_test)
    return {
        "seed": seed,
        "train_accuracy": history["accuracy"][epoch], "train_loss": history["loss"][epoch],
        "val_accuracy": history["val_accuracy"][epoch], "val_loss": history["val_loss"][epoch],
        "test_accuracy": test_m["accuracy"], "test_roc_auc": test_m["roc_auc"],
    }


def time_and_check(model, backbone, params: Params, data_root, test_ids, reference_prob) -> tuple[dict, float]:
    """End-to-end timing of the full model on the test JPEGs, and its largest gap to the cached-path P(male)."""
    paths = [celeba.image_path(data_root, i) for i in test_ids]
    t = params.timing
    timed = timing.time_end_to_end(model, backbone, paths, params.image_size, t.batch_size, t.warmup, t.repeats)
    gap = float(np.max(np.abs(timed.pop("probabilities") - reference_prob)))
    return timed, gap


def save_run(run_dir: Path, record: dict, seeds_rows: list[dict], histories: list[pd.DataFrame],
             test_ids, y_test, test_probs: dict, head_sha: str, timed: dict, gap: float, stages: dict) -> dict:
    """Write history, seeds, test predictions and the manifest (last, so its presence means 'finished')."""
    seeds_frame = pd.DataFrame(seeds_rows)
    primary = seeds_rows[0]["seed"]
    files.write_csv(run_dir / "history.csv", pd.concat(histories, ignore_index=True))
    files.write_csv(run_dir / "seeds.csv", seeds_frame)
    files.write_csv(run_dir / "test_predictions.csv", pd.DataFrame({"image_id": test_ids, "label": y_test, **test_probs}))
    summary = {}
    for col in seeds_frame.columns.drop("seed"):
        summary[f"{col}_mean"], summary[f"{col}_std"] = metrics.seed_summary(seeds_frame[col])
    first = seeds_rows[0]
    return _record(run_dir, {
        **record,
        "status": "ok",
        "head_sha256": head_sha,
        "primary_seed": primary,
        "train_accuracy": first["train_accuracy"], "train_loss": first["train_loss"],
        "val_accuracy": first["val_accuracy"], "val_loss": first["val_loss"],
        "test": metrics.classify(y_test, test_probs[f"prob_seed{primary}"]),
        "seeds": summary,
        "inference": timed,
        "full_model_vs_cached_max_abs_diff": gap,
        "stage_seconds": {**stages, "inference_timing": sum(timed["runs_s"])},
    })


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
    Parameters with a `finetune` section go to gfr.models.finetune (iteration 4).
    """
    backbone = backbones.get(backbone_name)
    params = params or load_params(iteration)
    data_root = celeba.data_dir(data_root)
    frame = split.read_manifest(manifest_path)
    run_dir = Path(runs_dir) / run_name(backbone.name, iteration)
    record = base_record(backbone, iteration, params, manifest_path)
    (run_dir / MANIFEST).unlink(missing_ok=True)  # a rerun killed midway must not leave the old numbers behind
    try:
        weights = backbones.resolve_weights(backbone, params.weights)
    except WeightsUnavailable as exc:
        print(f"skipped {record['run']}: {exc}", file=sys.stderr)
        return _record(run_dir, {**record, "status": "skipped", "reason": str(exc)})
    record.update(weights_file=weights.path, weights_sha256=weights.sha256, weights_origin=weights.origin)
    if params.finetune is not None:
        from gfr.models import finetune

        return finetune.execute(backbone, params, weights, frame, data_root, run_dir, record, cache, progress)

    start = time.perf_counter()
    feats, cache_info = feature_cache.extract(
        backbone.name, list(frame.image_id), data_root, params.image_size, params.native_input, weights,
        record["split_manifest_sha256"], params.feature_batch_size, cache, params.seed, progress,
    )
    feature_s = time.perf_counter() - start
    x_train, y_train, _ = _split_arrays(feats, frame, "train")
    x_val, y_val, _ = _split_arrays(feats, frame, "val")
    x_test, y_test, test_rows = _split_arrays(feats, frame, "test")

    start = time.perf_counter()
    h = params.head
    seeds_rows, histories, test_probs, heads = [], [], {}, {}
    for seed in h.seeds:
        head, history = train_head(x_train, y_train, x_val, y_val, h.dense_units, h.learning_rate,
                                   h.batch_size, params.epochs, seed)
        test_probs[f"prob_seed{seed}"] = predict_proba(head, x_test)
        seeds_rows.append(seed_row(seed, history, y_test, test_probs[f"prob_seed{seed}"]))
        histories.append(pd.DataFrame(history).assign(seed=seed, epoch=np.arange(1, params.epochs + 1)))
        heads[seed] = head
        if progress:
            print(f"{record['run']} seed {seed}: val {seeds_rows[-1]['val_accuracy']:.4f} "
                  f"test {seeds_rows[-1]['test_accuracy']:.4f}", file=sys.stderr)
    head_s = time.perf_counter() - start

    head = heads[h.seeds[0]]
    extractor = backbones.build_extractor(backbone, params.image_size, params.native_input, weights, params.seed)
    test_ids = frame.image_id.values[test_rows]
    timed, gap = time_and_check(full_model(extractor, head), backbone, params, data_root, test_ids,
                                test_probs[f"prob_seed{h.seeds[0]}"])
    run_dir.mkdir(parents=True, exist_ok=True)
    head_sha = save_head(head, run_dir / HEAD_FILE)
    record.update(feature_dim=backbone.feature_dim, feature_cache=cache_info, head_file=HEAD_FILE, head_units=h.dense_units,
                  split_sizes={s: int((frame.split == s).sum()) for s in split.SPLITS})
    return save_run(run_dir, record, seeds_rows, histories, test_ids, y_test, test_probs, head_sha, timed, gap,
                    {"features": feature_s, "heads": head_s})


def load_record(run_dir: str | os.PathLike) -> dict:
    """A saved run's manifest."""
    import json

    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise GfrError(f"no run manifest at {path}")
    return json.loads(path.read_text())
