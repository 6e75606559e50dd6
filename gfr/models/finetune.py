"""Iteration 4: fine-tune a backbone's top block(s) on activations cached at the freeze boundary."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from gfr.models import backbones, feature_cache
from gfr.study import run
from gfr.models.head import build_head, compile_binary, full_model, predict_proba, save_head, seed_everything, train_head
from gfr.params import Params

FINETUNED_FILE = "finetuned.weights.h5"  # top block(s) + head: ~60 MB for ResNet50, so not committed


def boundary_of(backbone: backbones.Backbone, params: Params) -> str:
    """The layer whose output is cached (the params' choice, else the registry's)."""
    return params.finetune.boundary or backbone.finetune_boundary


def upper_model(base, boundary: str, head, dropout: float = 0.0):
    """Boundary activations -> trainable top block(s) -> GAP (-> dropout) -> head; BatchNorm stays in inference mode."""
    upper = keras.Model(base.get_layer(boundary).output, base.output, name="top_blocks")
    upper.trainable = True
    for layer in upper.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    inputs = keras.Input(upper.input.shape[1:])
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(upper(inputs))
    if dropout:
        pooled = keras.layers.Dropout(dropout, name="dropout")(pooled)
    return keras.Model(inputs, head(pooled), name="finetune")


def full_from_trained(backbone, image_size, native, weights, trained, seed: int):
    """The full image -> P(male) model carrying the fine-tuned top block(s) and head of `trained`."""
    extractor = backbones.build_extractor(backbone, image_size, native, weights, seed)
    base = extractor.layers[1]
    top = trained.get_layer("top_blocks")
    for layer in top.layers:
        if layer.weights:
            base.get_layer(layer.name).set_weights(layer.get_weights())
    head = trained.layers[-1]
    return full_model(extractor, head)


def load_finetuned(backbone, record: dict, weights, run_dir: Path):
    """Rebuild a saved fine-tuned run's full model (used by `gfr predict`)."""
    seed_everything(record["params"]["seed"])
    base = backbones.build_base(backbone, (None, None, 3), weights)
    head = build_head(backbone.feature_dim, record["head_units"])
    trained = upper_model(base, record["finetune_boundary"], head)
    trained.load_weights(run_dir / record["finetuned_file"])
    return full_from_trained(backbone, tuple(record["input_size"]), record["native_input"], weights, trained,
                             record["params"]["seed"])


class Batches(keras.utils.PyDataset):
    """Shuffled training batches of cached activations; each image mirrored with probability 1/2 if augmenting."""

    def __init__(self, plain, mirrored, labels, batch_size: int, seed: int):
        super().__init__()
        self.plain, self.mirrored, self.labels, self.batch_size = plain, mirrored, labels, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(labels))
        self.on_epoch_end()

    def __len__(self):
        return int(np.ceil(len(self.labels) / self.batch_size))

    def on_epoch_end(self):
        self.rng.shuffle(self.order)
        self.flip = (self.rng.random(len(self.labels)) < 0.5) if self.mirrored is not None else np.zeros(len(self.labels), bool)

    def __getitem__(self, i):
        rows = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        x = np.asarray(self.plain[rows], dtype=np.float32)
        flip = self.flip[rows]
        if flip.any():
            x[flip] = np.asarray(self.mirrored[rows[flip]], dtype=np.float32)
        return x, self.labels[rows].astype(np.float32)


def execute(backbone, params: Params, weights, frame: pd.DataFrame, data_root, run_dir: Path, record: dict,
            cache, progress: bool) -> dict:
    """Warm up the head on frozen pooled features, then fine-tune the top block(s) with the head."""
    ft, seed = params.finetune, params.head.seeds[0]
    boundary = boundary_of(backbone, params)
    ids, sha = list(frame.image_id), record["split_manifest_sha256"]
    common = dict(batch_size=params.feature_batch_size, directory=cache, init_seed=params.seed, progress=progress)
    start = time.perf_counter()
    pooled, cache_info = feature_cache.extract(backbone.name, ids, data_root, params.image_size, params.native_input,
                                          weights, sha, **common)
    plain, _ = feature_cache.extract(backbone.name, ids, data_root, params.image_size, params.native_input, weights, sha,
                                layer=boundary, dtype="float16", **common)
    mirrored = (feature_cache.extract(backbone.name, ids, data_root, params.image_size, params.native_input, weights, sha,
                                 layer=boundary, dtype="float16", flip=True, **common)[0] if ft.augment else None)
    feature_s = time.perf_counter() - start

    rows = {s: np.flatnonzero(frame.split.values == s) for s in ("train", "val", "test")}
    y = {s: frame.label.values[r] for s, r in rows.items()}
    start = time.perf_counter()
    head, warm = train_head(np.asarray(pooled[rows["train"]]), y["train"], np.asarray(pooled[rows["val"]]), y["val"],
                            params.head.dense_units, params.head.learning_rate, params.head.batch_size, params.epochs, seed)
    seed_everything(params.seed)  # random (test) weights: the same draw as the cached activations'
    base = backbones.build_base(backbone, (None, None, 3), weights)
    seed_everything(seed)
    trained = upper_model(base, boundary, head, ft.dropout)
    compile_binary(trained, ft.learning_rate)
    val_x = np.asarray(plain[rows["val"]], dtype=np.float32)
    best = {"val_accuracy": -1.0}

    class KeepBest(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs["val_accuracy"] > best["val_accuracy"]:
                best.update(val_accuracy=logs["val_accuracy"], epoch=epoch, weights=trained.get_weights())
            if progress:
                print(f"fine-tune epoch {epoch + 1}/{ft.epochs}: val acc {logs['val_accuracy']:.4f}", file=sys.stderr)

    batches = Batches(_Rows(plain, rows["train"]),
                      _Rows(mirrored, rows["train"]) if mirrored is not None else None,
                      y["train"], ft.batch_size, seed)
    tuned = trained.fit(batches, validation_data=(val_x, y["val"].astype(np.float32)), epochs=ft.epochs,
                        verbose=0, callbacks=[KeepBest()])
    trained.set_weights(best["weights"])
    head_s = time.perf_counter() - start

    prob_test = predict_proba(trained, np.asarray(plain[rows["test"]], dtype=np.float32), batch_size=64)
    history = pd.concat([
        pd.DataFrame(warm).assign(phase="head warm-up"),
        pd.DataFrame({k: [float(v) for v in vals] for k, vals in tuned.history.items()}).assign(phase="fine-tune"),
    ], ignore_index=True).assign(seed=seed)
    history["epoch"] = np.arange(1, len(history) + 1)
    chosen_epoch = params.epochs + best["epoch"]  # 0-based row of the kept epoch
    seeds_rows = [run.seed_row(seed, history.to_dict("list"), y["test"], prob_test, epoch=chosen_epoch)]

    model = full_from_trained(backbone, params.image_size, params.native_input, weights, trained, params.seed)
    test_ids = frame.image_id.values[rows["test"]]
    timed, gap = run.time_and_check(model, backbone, params, data_root, test_ids, prob_test)
    run_dir.mkdir(parents=True, exist_ok=True)
    head_sha = save_head(trained.layers[-1], run_dir / run.HEAD_FILE)
    trained.save_weights(run_dir / FINETUNED_FILE)
    record.update(feature_dim=backbone.feature_dim, feature_cache=cache_info, head_file=run.HEAD_FILE,
                  head_units=params.head.dense_units, finetune_boundary=boundary, finetuned_file=FINETUNED_FILE,
                  finetune_kept_epoch=best["epoch"] + 1,
                  split_sizes={s: int(len(r)) for s, r in rows.items()})
    return run.save_run(run_dir, record, seeds_rows, [history], test_ids, y["test"], {f"prob_seed{seed}": prob_test},
                        head_sha, timed, gap, {"features": feature_s, "heads": head_s})


class _Rows:
    """A lazy row selection of a (memory-mapped) array: rows are read only when a batch asks for them."""

    def __init__(self, array, rows):
        self.array, self.rows = array, np.asarray(rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.array[self.rows[index]]
