"""One run of the study (a backbone x an iteration): features, heads over seeds, evaluation, timing, saved run.

The steps are separate functions: the train notebook calls them for the data and the bookkeeping and fits the
heads on the page (as `train_heads` does); `run_one` chains them for the command line, with the same numbers. Head-only iterations train a head on
the frozen backbone's cached pooled features; an iteration with a `finetune` section also trains the
backbone's top block(s), on activations cached at the freeze boundary.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gfr import files
from gfr.data import celeba, split
from gfr.errors import WeightsUnavailable
from gfr.models import backbones, feature_cache, finetune
from gfr.models.head import (HEAD_NAME, compile_binary, full_model, predict_proba, save_head, seed_everything,
                             train_head)
from gfr.params import Params, load_params
from gfr.paths import RUNS_DIR
from gfr.study import artefacts, hardware, timing
from gfr.study.inputs import RECORDED_AT_RUN, images_part, run_inputs, weights_part
from gfr.study.registry import RunId


@dataclass
class PreparedRun:
    """Everything a run needs before any computation: backbone, parameters, weights, data, split, run folder."""

    run: RunId
    backbone: backbones.Backbone
    params: Params
    data_root: Path
    frame: pd.DataFrame
    run_dir: Path
    record: dict
    weights: backbones.Weights | None = None
    skipped_reason: str = ""
    cache_dir: str | os.PathLike | None = None
    progress: bool = True

    @property
    def skipped(self) -> bool:
        return self.weights is None

    @property
    def name(self) -> str:
        return self.run.name

    def rows(self, part: str) -> np.ndarray:
        """Row numbers of one split (train, val, test) in the manifest order."""
        return np.flatnonzero(self.frame.split.values == part)

    def labels(self, part: str) -> np.ndarray:
        return self.frame.label.values[self.rows(part)]

    def extract(self, part: str | None = None, compute=feature_cache.extract, **options) -> tuple[np.ndarray, dict]:
        """Backbone outputs of every image of the split manifest (or of one `part` of it), from the feature cache
        (computed on a miss by `compute`: here, or gfr.pipeline.sharded_extraction's shards on Ray, same result)."""
        p = self.params
        ids = self.frame.image_id.values if part is None else self.frame.image_id.values[self.rows(part)]
        return compute(self.backbone.name, list(ids), self.data_root, image_size=p.image_size, native=p.native_input,
                       weights=self.weights, manifest_sha=self.record["split_manifest_sha256"],
                       batch_size=p.feature_batch_size, directory=self.cache_dir, init_seed=p.seed,
                       progress=self.progress, **options)

    def build_extractor(self):
        """The frozen backbone + global average pooling, as every feature of this run was computed."""
        p = self.params
        return backbones.build_extractor(self.backbone, p.image_size, p.native_input, self.weights, p.seed)


def base_record(run: RunId, backbone: backbones.Backbone, params: Params, manifest_path) -> dict:
    """The fields every run manifest carries, whatever its outcome (and `inputs`, added as it is saved)."""
    return {
        "run": run.name,
        "backbone": backbone.name,
        "iteration": run.iteration,
        "description": params.description,
        "params": params.as_dict(),
        "params_files": list(params.sources),
        "split_manifest": str(manifest_path),
        "split_manifest_sha256": split.manifest_hash(manifest_path),
        "input_size": list(params.image_size),
        "native_input": params.native_input,
        "preprocessing": backbone.preprocessing,
        "hardware": hardware.describe(),
    }


def with_inputs(prepared: PreparedRun) -> dict:
    """The run's record with its inputs by content (gfr.study.inputs: params files, code, split, weights, images),
    hashed as the run is saved, not before it starts (its images are read for its features first)."""
    images = images_part(prepared.data_root / celeba.IMAGES_DIR, list(prepared.frame.image_id))
    inputs = run_inputs(prepared.params, prepared.record["split_manifest_sha256"], images,
                        weights_part(prepared.weights, prepared.skipped_reason))
    return {**prepared.record, "inputs": inputs, "inputs_recorded": RECORDED_AT_RUN}


def notebook_params(iteration: int, weights: str | None = None, params_extra=()) -> Params:
    """An iteration's parameters as the train notebook's parameters give them: a weights override, extra files."""
    return load_params(iteration, {"weights": weights} if weights else None, extra=list(params_extra))


def prepare_run(backbone_name: str, iteration: int, data_dir: str | os.PathLike | None, manifest_path,
                runs_dir: str | os.PathLike = RUNS_DIR, params: Params | None = None,
                cache_dir: str | os.PathLike | None = None, progress: bool = True, forget_result: bool = True) -> PreparedRun:
    """Resolve the backbone, parameters, weights and split of a run; forget its previous result (unless only
    its features are wanted: `forget_result=False`).

    A backbone whose ImageNet weights cannot be had gives a run with `skipped_reason` (see `save_skipped`)."""
    backbone = backbones.get(backbone_name)
    params = params or load_params(iteration)
    run = RunId(backbone.name, iteration)
    prepared = PreparedRun(run, backbone, params, celeba.data_dir(data_dir), split.read_manifest(manifest_path),
                           Path(runs_dir) / run.name, base_record(run, backbone, params, manifest_path),
                           cache_dir=cache_dir, progress=progress)
    if forget_result:
        (prepared.run_dir / artefacts.MANIFEST).unlink(missing_ok=True)  # a rerun killed midway leaves no old numbers
    try:
        prepared.weights = backbones.resolve_weights(backbone, params.weights)
    except WeightsUnavailable as exc:
        prepared.skipped_reason = str(exc)
        return prepared
    prepared.record.update(weights_file=prepared.weights.path, weights_sha256=prepared.weights.sha256,
                           weights_origin=prepared.weights.origin)
    return prepared


def save_skipped(prepared: PreparedRun) -> dict:
    """Record a run that cannot be done here (no weights), with the reason."""
    print(f"skipped {prepared.name}: {prepared.skipped_reason}", file=sys.stderr)
    return artefacts.write_manifest(prepared.run_dir, {**with_inputs(prepared), "status": "skipped",
                                                       "reason": prepared.skipped_reason})


@dataclass
class SplitFeatures:
    """Pooled backbone features and labels per split, with where they came from."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    cache_info: dict
    seconds: float
    boundary: dict[str, object] = field(default_factory=dict)  # fine-tuning: cached boundary activations


def feature_requests(prepared: PreparedRun) -> dict[str, dict]:
    """The feature-cache entries a run reads, as `PreparedRun.extract` options: pooled features; with `augment`,
    the pooled features of each augmented copy of the training images; for fine-tuning the activations at the
    freeze boundary (plain, and mirrored when it augments)."""
    requests = {"pooled": {}}
    aug = prepared.params.augment
    for copy in range(1, aug.copies + 1) if aug is not None else ():
        requests[f"augmented {copy}"] = {"part": "train",
                                         "augment": feature_cache.Augment(aug, prepared.params.seed, copy)}
    ft = prepared.params.finetune
    if ft is not None:
        boundary = finetune.boundary_of(prepared.backbone, prepared.params)
        requests["plain"] = {"layer": boundary, "dtype": "float16"}
        if ft.augment:
            requests["mirrored"] = {"layer": boundary, "dtype": "float16", "flip": True}
    return requests


def load_features(prepared: PreparedRun) -> SplitFeatures:
    """The run's pooled features per split (and, for fine-tuning, the activations at the freeze boundary)."""
    start = time.perf_counter()
    arrays, infos, requests = {}, {}, feature_requests(prepared)
    for name, options in requests.items():
        arrays[name], infos[name] = prepared.extract(**options)
    parts = {s: prepared.rows(s) for s in split.SPLITS}
    feats = SplitFeatures({s: np.asarray(arrays["pooled"][r]) for s, r in parts.items()},
                          {s: prepared.labels(s) for s in split.SPLITS}, infos["pooled"], 0.0)
    augmented = [name for name in requests if name.startswith("augmented")]
    if augmented:  # the head trains on the plain training features and every augmented copy's
        feats.x["train"] = np.concatenate([feats.x["train"], *(np.asarray(arrays[n]) for n in augmented)])
        feats.y["train"] = np.tile(feats.y["train"], 1 + len(augmented))
        feats.cache_info = {**infos["pooled"], "augmented": [infos[n] for n in augmented]}
    if "plain" in arrays:
        feats.boundary = {"layer": requests["plain"]["layer"], "plain": arrays["plain"],
                          "mirrored": arrays.get("mirrored")}
    feats.seconds = time.perf_counter() - start
    return feats


@dataclass
class HeadFit:
    """One trained head: its seed, the model (at its kept epoch), its per-epoch history, the kept epoch and the
    weights after its last epoch (what the original study evaluated; gfr.study.last_epoch)."""

    seed: int
    head: object
    history: dict
    kept_epoch: int
    last_weights: list


def train_heads(prepared: PreparedRun, feats: SplitFeatures) -> list[HeadFit]:
    """Train one head per seed on the cached training features, each kept at its best-validation epoch (the train
    notebook writes this fit out on the page; a test holds the two to the same heads).

    (Fine-tuning warms up these heads before training each with the top block(s).)"""
    h = prepared.params.head
    fits = []
    for seed in h.seeds:
        fit = HeadFit(seed, *train_head(feats.x["train"], feats.y["train"], feats.x["val"], feats.y["val"],
                                        h.dense_units, h.learning_rate, h.batch_size, prepared.params.epochs, seed))
        fits.append(fit)
        if prepared.progress:
            print(f"{prepared.name} seed {seed}: kept epoch {fit.kept_epoch}, "
                  f"val {fit.history['val_accuracy'][fit.kept_epoch - 1]:.4f}", file=sys.stderr)
    return fits


def history_frame(prepared: PreparedRun, fits: list[HeadFit]) -> pd.DataFrame:
    """Per-epoch train/validation accuracy and loss of every head, with its seed and epoch number."""
    return pd.concat([pd.DataFrame(f.history).assign(seed=f.seed, epoch=np.arange(1, prepared.params.epochs + 1))
                      for f in fits], ignore_index=True)


@dataclass
class TunedModel:
    """The fine-tuned model (top block(s) + head on boundary activations), its history, kept epoch and the model's
    weights after the last fine-tuning epoch."""

    model: object
    seed: int
    history: pd.DataFrame
    kept_epoch: int
    last_weights: list


def build_finetune_model(prepared: PreparedRun, feats: SplitFeatures, warm: HeadFit):
    """Boundary activations -> top block(s) of the backbone -> GAP -> the warmed-up head, compiled."""
    seed_everything(prepared.params.seed)  # random (test) weights: the same draw as the cached activations'
    base = backbones.build_base(prepared.backbone, (None, None, 3), prepared.weights)
    seed_everything(warm.seed)
    model = finetune.upper_model(base, feats.boundary["layer"], warm.head, prepared.params.finetune.dropout)
    compile_binary(model, prepared.params.finetune.learning_rate)
    return model


def fine_tune(prepared: PreparedRun, feats: SplitFeatures, warm: HeadFit, model) -> TunedModel:
    """Train the top block(s) with the head; keep the epoch with the best validation accuracy."""
    ft, rows = prepared.params.finetune, {s: prepared.rows(s) for s in ("train", "val")}
    plain, mirrored = feats.boundary["plain"], feats.boundary["mirrored"]
    batches = finetune.Batches(finetune.Rows(plain, rows["train"]),
                               finetune.Rows(mirrored, rows["train"]) if mirrored is not None else None,
                               feats.y["train"], ft.batch_size, warm.seed)
    val_x = np.asarray(plain[rows["val"]], dtype=np.float32)
    tuned, kept, last_weights = finetune.fit_top_blocks(model, batches, val_x, feats.y["val"], ft.epochs,
                                                        prepared.progress)
    history = pd.concat([
        pd.DataFrame(warm.history).assign(phase="head warm-up"),
        pd.DataFrame(tuned).assign(phase="fine-tune"),
    ], ignore_index=True).assign(seed=warm.seed)
    history["epoch"] = np.arange(1, len(history) + 1)
    return TunedModel(model, warm.seed, history, kept, last_weights)


def time_and_check(model, prepared: PreparedRun, reference_prob) -> tuple[dict, float]:
    """End-to-end timing of the full model on the test JPEGs, and its largest gap to the cached-path P(male)."""
    paths = [celeba.image_path(prepared.data_root, i) for i in prepared.frame.image_id.values[prepared.rows("test")]]
    p, t = prepared.params, prepared.params.timing
    timed = timing.time_end_to_end(model, prepared.backbone, paths, p.image_size, t.batch_size, t.warmup, t.repeats)
    gap = float(np.max(np.abs(timed.pop("probabilities") - reference_prob)))
    return timed, gap


def finish_head_run(prepared: PreparedRun, feats: SplitFeatures, fits: list[HeadFit], extractor=None,
                    train_seconds: float = 0.0) -> dict:
    """Evaluate every head on the test split, time the reported one end to end, save the run; return its manifest."""
    y_test = feats.y["test"]
    test_probs = {artefacts.prob_column(f.seed): predict_proba(f.head, feats.x["test"]) for f in fits}
    val_predictions = pd.DataFrame({"image_id": prepared.frame.image_id.values[prepared.rows("val")],
                                    "label": feats.y["val"],
                                    **{artefacts.prob_column(f.seed): predict_proba(f.head, feats.x["val"]) for f in fits}})
    seeds_rows = [artefacts.seed_row(f.seed, f.history, y_test, test_probs[artefacts.prob_column(f.seed)],
                                     f.kept_epoch) for f in fits]
    reported = fits[0]
    extractor = extractor or prepared.build_extractor()
    timed, gap = time_and_check(full_model(extractor, reported.head), prepared,
                                test_probs[artefacts.prob_column(reported.seed)])
    prepared.run_dir.mkdir(parents=True, exist_ok=True)
    head_sha = save_head(reported.head, prepared.run_dir / artefacts.HEAD_FILE)
    record = {**with_inputs(prepared), "feature_dim": prepared.backbone.feature_dim,
              "feature_cache": feats.cache_info,
              "head_file": artefacts.HEAD_FILE, "head_units": prepared.params.head.dense_units,
              "split_sizes": {s: int(len(prepared.rows(s))) for s in split.SPLITS}}
    return artefacts.save_run(prepared.run_dir, record, seeds_rows, [history_frame(prepared, fits)],
                              prepared.frame.image_id.values[prepared.rows("test")], y_test, test_probs, head_sha,
                              timed, gap, {"features": feats.seconds, "heads": train_seconds}, val_predictions)


def finish_finetune_run(prepared: PreparedRun, feats: SplitFeatures, tuned: list[TunedModel],
                        train_seconds: float = 0.0) -> dict:
    """Evaluate every fine-tuned seed on the test split, time the reported one end to end, save the run."""
    p, test_rows = prepared.params, prepared.rows("test")
    test_x = np.asarray(feats.boundary["plain"][test_rows], dtype=np.float32)
    test_probs = {artefacts.prob_column(t.seed): predict_proba(t.model, test_x, batch_size=64) for t in tuned}
    seeds_rows = [artefacts.seed_row(t.seed, t.history.to_dict("list"), feats.y["test"],
                                     test_probs[artefacts.prob_column(t.seed)], t.kept_epoch,
                                     row=p.epochs + t.kept_epoch - 1)  # history rows: warm-up epochs first
                  for t in tuned]
    reported = tuned[0]
    model = finetune.full_from_trained(prepared.backbone, p.image_size, p.native_input, prepared.weights,
                                       reported.model, p.seed)
    timed, gap = time_and_check(model, prepared, test_probs[artefacts.prob_column(reported.seed)])
    prepared.run_dir.mkdir(parents=True, exist_ok=True)
    head_sha = save_head(reported.model.get_layer(HEAD_NAME), prepared.run_dir / artefacts.HEAD_FILE)
    with files.atomic_path(prepared.run_dir / artefacts.FINETUNED_FILE, suffix=".weights.h5") as tmp:
        finetune.save_trained(reported.model, tmp)
    record = {**with_inputs(prepared), "feature_dim": prepared.backbone.feature_dim,
              "feature_cache": feats.cache_info,
              "head_file": artefacts.HEAD_FILE, "head_units": p.head.dense_units,
              "finetune_boundary": feats.boundary["layer"], "finetuned_file": artefacts.FINETUNED_FILE,
              "finetune_kept_epoch": reported.kept_epoch,
              "split_sizes": {s: int(len(prepared.rows(s))) for s in split.SPLITS}}
    return artefacts.save_run(prepared.run_dir, record, seeds_rows, [t.history for t in tuned],
                              prepared.frame.image_id.values[test_rows], feats.y["test"], test_probs, head_sha,
                              timed, gap, {"features": feats.seconds, "heads": train_seconds})


def fine_tune_seeds(prepared: PreparedRun, feats: SplitFeatures, fits: list[HeadFit]) -> list[TunedModel]:
    """Fine-tune the top block(s) once per seed, each starting from that seed's warmed-up head."""
    return [fine_tune(prepared, feats, warm, build_finetune_model(prepared, feats, warm)) for warm in fits]


def run_one(backbone_name: str, iteration: int, data_dir: str | os.PathLike | None, manifest_path,
            runs_dir: str | os.PathLike = RUNS_DIR, params: Params | None = None,
            cache_dir: str | os.PathLike | None = None, progress: bool = True) -> dict:
    """Run one backbone x iteration end to end and save it under runs_dir/<name>/; return its manifest."""
    prepared = prepare_run(backbone_name, iteration, data_dir, manifest_path, runs_dir, params, cache_dir, progress)
    if prepared.skipped:
        return save_skipped(prepared)
    feats = load_features(prepared)
    start = time.perf_counter()
    fits = train_heads(prepared, feats)
    if prepared.params.finetune is None:
        return finish_head_run(prepared, feats, fits, train_seconds=time.perf_counter() - start)
    tuned = fine_tune_seeds(prepared, feats, fits)
    return finish_finetune_run(prepared, feats, tuned, train_seconds=time.perf_counter() - start)
