"""The classification head (GAP features -> Dense(relu) -> Dense(1, sigmoid)): build, train, save, load."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from gfr import files
from gfr.errors import GfrError
from gfr.files import file_sha256

HEAD_NAME = "head"
HIDDEN_NAME = "dense_relu"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow ops deterministic."""
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def build_head(feature_dim: int, units: int):
    """An untrained head on pooled features."""
    import keras

    return keras.Sequential(
        [
            keras.Input((feature_dim,)),
            keras.layers.Dense(units, activation="relu", name=HIDDEN_NAME),
            keras.layers.Dense(1, activation="sigmoid", name="male_probability"),
        ],
        name=HEAD_NAME,
    )


def compile_binary(model, learning_rate: float) -> None:
    """Adam + binary cross-entropy + accuracy, as in the original study."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"])


@functools.lru_cache(maxsize=1)
def keep_best_epoch_callback():
    """The Keras callback class of `keep_best_epoch` (defined on first use): EarlyStopping that, before it restores
    the best epoch's weights at the end of training, keeps the last epoch's in `last_weights`."""
    import keras

    class KeepBestEpoch(keras.callbacks.EarlyStopping):
        """Restore the best epoch's weights when training ends; `last_weights`: the weights the last epoch left."""

        last_weights = None

        def on_train_end(self, logs=None):
            self.last_weights = self.model.get_weights()  # read only: the fit's numbers are unchanged
            super().on_train_end(logs)

    return KeepBestEpoch


def keep_best_epoch(epochs: int):
    """The study's selection rule as a callback: after training, restore the weights of the epoch with the best
    validation accuracy (the first such epoch on a tie); `best_epoch` says which (0-based), `last_weights` holds the
    weights after the last epoch (the original study's protocol evaluated those). Never stops early."""
    return keep_best_epoch_callback()(monitor="val_accuracy", mode="max", patience=epochs, restore_best_weights=True)


def train_head(x_train, y_train, x_val, y_val, units: int, learning_rate: float, batch_size: int, epochs: int, seed: int):
    """Train one head on cached features, keeping its best-validation epoch; return (head, history dict, kept
    epoch, the weights after the last epoch)."""
    seed_everything(seed)
    head = build_head(x_train.shape[1], units)
    compile_binary(head, learning_rate)
    keep = keep_best_epoch(epochs)
    history = head.fit(
        np.asarray(x_train), np.asarray(y_train, dtype="float32"),
        validation_data=(np.asarray(x_val), np.asarray(y_val, dtype="float32")),
        batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[keep],
    )
    return head, *fit_outcome(history, keep)


def fit_outcome(history, keep) -> tuple[dict, int, list]:
    """What a finished `fit` with the `keep_best_epoch` callback gives the study: the per-epoch history (lists of
    floats), the epoch whose weights were kept (1-based) and the weights after the last epoch."""
    return ({k: [float(v) for v in vals] for k, vals in history.history.items()}, keep.best_epoch + 1,
            keep.last_weights)


def predict_proba(model, x, batch_size: int = 512) -> np.ndarray:
    """P(male) for each row of `x`."""
    return np.asarray(model.predict(np.asarray(x), batch_size=batch_size, verbose=0)).ravel()


def head_with_weights(weights: list):
    """An uncompiled head holding `weights` (as `get_weights` lists them): e.g. a head at its last epoch."""
    head = build_head(weights[0].shape[0], weights[0].shape[1])
    head.set_weights(weights)
    return head


def save_head(head, path: str | os.PathLike) -> str:
    """Save the head's weights atomically (Keras .weights.h5, no pickle, no optimizer state); return their SHA-256."""
    bare = head_with_weights(head.get_weights())  # uncompiled: leaves Adam's moments out
    with files.atomic_path(path, suffix=".weights.h5") as tmp:
        bare.save_weights(tmp)
        digest = file_sha256(tmp)
    return digest


def load_head(path: str | os.PathLike, feature_dim: int, units: int, sha256: str | None = None):
    """Rebuild a head and load its weights, refusing a file whose hash differs from `sha256`."""
    path = Path(path)
    if not path.is_file():
        raise GfrError(f"head weights not found: {path}")
    if sha256 and file_sha256(path) != sha256:
        raise GfrError(f"{path}: content hash differs from the run manifest (corrupt or replaced)")
    head = build_head(feature_dim, units)
    try:
        head.load_weights(path)
    except Exception as exc:
        raise GfrError(f"{path}: cannot load head weights ({str(exc).splitlines()[0][:160]})") from None
    return head


def full_model(extractor, head):
    """Frozen backbone + GAP + head as one model: preprocessed images -> P(male).

    A non-Keras extractor (dlib's descriptor) joins its head itself (`with_head`)."""
    if hasattr(extractor, "with_head"):
        return extractor.with_head(head)
    import keras

    return keras.Model(extractor.inputs, head(extractor.outputs[0]), name="gender_classifier")
