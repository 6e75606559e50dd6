"""Fine-tuning a backbone's top block(s) with the head, on activations cached at the freeze boundary."""

from __future__ import annotations

import sys

import keras
import numpy as np

from gfr.models import backbones
from gfr.models.head import HEAD_NAME, build_head, fit_outcome, full_model, keep_best_epoch, seed_everything

TOP_BLOCKS_NAME = "top_blocks"


def boundary_of(backbone: backbones.Backbone, params) -> str:
    """The layer whose output is cached (the params' choice, else the registry's)."""
    return params.finetune.boundary or backbone.finetune_boundary


def upper_model(base, boundary: str, head, dropout: float = 0.0):
    """Boundary activations -> trainable top block(s) -> GAP (unless the top ends pooled) (-> dropout) -> head;
    BatchNorm stays in inference mode."""
    upper = keras.Model(base.get_layer(boundary).output, base.output, name=TOP_BLOCKS_NAME)
    upper.trainable = True
    for layer in upper.layers:  # each layer by name: a base frozen as a whole keeps its layers frozen otherwise
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    inputs = keras.Input(upper.input.shape[1:])
    pooled = upper(inputs)
    if len(pooled.shape) == 4:  # a convolutional top (the descriptor's ends in its own pooling and fc)
        pooled = keras.layers.GlobalAveragePooling2D(name="gap")(pooled)
    if dropout:
        pooled = keras.layers.Dropout(dropout, name="dropout")(pooled)
    return keras.Model(inputs, head(pooled), name="finetune")


def full_from_trained(backbone, image_size, native, weights, trained, seed: int):
    """The full image -> P(male) model carrying the fine-tuned top block(s) and head of `trained`."""
    extractor = backbones.build_extractor(backbone, image_size, native, weights, seed)
    base = backbones.base_of(extractor)
    for layer in trained.get_layer(TOP_BLOCKS_NAME).layers:
        if layer.weights:
            base.get_layer(layer.name).set_weights(layer.get_weights())
    return full_model(extractor, trained.get_layer(HEAD_NAME))


def save_trained(trained, path) -> None:
    """The fine-tuned model's weights at `path` (.weights.h5), without the optimizer's state (a third the size)."""
    keras.Model(trained.inputs, trained.outputs).save_weights(path)  # an uncompiled view of the same layers


def load_finetuned(backbone, record: dict, weights, weights_file):
    """Rebuild a saved fine-tuned run's full model from its manifest and weights file (used by `gfr predict`)."""
    seed_everything(record["params"]["seed"])
    base = backbones.build_base(backbone, (None, None, 3), weights)
    head = build_head(backbone.feature_dim, record["head_units"])
    trained = upper_model(base, record["finetune_boundary"], head)
    trained.load_weights(weights_file)
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


class Rows:
    """A lazy row selection of a (memory-mapped) array: rows are read only when a batch asks for them."""

    def __init__(self, array, rows):
        self.array, self.rows = array, np.asarray(rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.array[self.rows[index]]


def fit_top_blocks(trained, batches: Batches, val_x, val_y, epochs: int, progress: bool = True):
    """Fit the fine-tuning model; keep the epoch with the best validation accuracy (the study's rule, as for heads).

    Returns (per-epoch history dict, kept epoch, 1-based, the model's weights after the last epoch)."""
    keep_best = keep_best_epoch(epochs)
    callbacks = [keep_best]
    if progress:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(
            f"fine-tune epoch {epoch + 1}/{epochs}: val acc {logs['val_accuracy']:.4f}", file=sys.stderr)))
    fitted = trained.fit(batches, validation_data=(val_x, np.asarray(val_y, dtype=np.float32)), epochs=epochs,
                         verbose=0, callbacks=callbacks)
    return fit_outcome(fitted, keep_best)
