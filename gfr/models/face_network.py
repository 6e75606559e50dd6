"""dlib's face descriptor network as a native Keras 3 model: 150x150 RGB face chips -> 128-d descriptors.

The topology is dlib's ResNet of dnn_face_recognition_ex.cpp (a 7x7/2 conv and 3x3/2 max pool, residual levels
of 32, 64, 128, 256 and 256 filters, global average pooling, a 128-unit fc without bias). It is built from the
layer records of dlib's own file (gfr.models.dlib_file), so the file decides every size, stride and padding:
- input: (pixel - channel mean) / 256, RGB, the means from the file;
- conv: cross-correlation, dlib's (out, in, kh, kw) filters transposed to Keras's (kh, kw, in, out); stride-2
  layers pad nothing, stride-1 3x3 layers pad 1 (Keras "same" only there);
- affine (dlib's saved batch norm: a fixed per-channel scale and shift) folded exactly into the conv before it;
- residual down blocks: the skip path is 2x2/2 average pooling; dlib's add_prev adds tensors of unequal shape by
  zero-filling the smaller one at the end of each axis (channels appended, rows and columns bottom/right).
The converted model is cached once per model file, keyed by its SHA-256 (`cached_model_path`), never committed.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np

from gfr import files
from gfr.errors import GfrError
from gfr.models import dlib_file

CHIP_SIZE = 150
FEATURE_DIM = 128
NAME = "dlib_face_descriptor"


def _keras():
    import keras

    return keras


@functools.lru_cache(maxsize=1)
def zero_fill_add_layer():
    """The Keras layer class of dlib's add_prev (defined, and registered for loading, on first use): zero-fill both
    inputs to the larger shape, then add."""
    keras = _keras()

    @keras.saving.register_keras_serializable(package="gfr")
    class ZeroFillAdd(keras.layers.Layer):
        """dlib's add_prev: (a, b) of unequal (h, w, c) -> sum, the smaller zero-filled at the end of each axis."""

        def compute_output_shape(self, shapes):
            a, b = shapes
            return (a[0], *(None if x is None or y is None else max(x, y) for x, y in zip(a[1:], b[1:])))

        def call(self, inputs):
            a, b = inputs
            target = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

            def fill(t):
                pads = [[0, 0]] + [[0, n - m] for n, m in zip(target, t.shape[1:])]
                return keras.ops.pad(t, pads) if any(p[1] for p in pads) else t

            return fill(a) + fill(b)

    return ZeroFillAdd


def _padding(layer: dlib_file.Layer) -> str:
    """Keras padding of a dlib conv/pool: "valid" where dlib pads nothing, "same" where it pads k//2 at stride 1."""
    (pad_y, pad_x), (kh, kw), stride = layer.settings["padding"], layer.settings["size"], layer.settings["stride"]
    if (pad_y, pad_x) == (0, 0):
        return "valid"
    if stride == (1, 1) and (pad_y, pad_x) == (kh // 2, kw // 2) and kh % 2 and kw % 2:
        return "same"
    raise GfrError(f"dlib layer with padding {(pad_y, pad_x)} at stride {stride}, size {(kh, kw)}: no Keras equivalent")


def build(layers: list[dlib_file.Layer], name: str = NAME):
    """The Keras model of a dlib residual network's layer records (input up), with the records' weights set.

    Returns (model, weights) where weights maps each Keras layer name to its [kernel(, bias)] arrays."""
    keras = _keras()
    if not layers or layers[0].kind != "input":
        raise GfrError("a dlib network file whose first layer record is not an input layer")
    means, size = layers[0].settings["means"], layers[0].settings["size"]
    inputs = keras.Input((*size, 3), name="chip")
    x = keras.layers.Rescaling(1 / 256, offset=[-m / 256 for m in means], name="dlib_input")(inputs)
    weights: dict[str, list[np.ndarray]] = {}
    counts: dict[str, int] = {}
    block_input, skip, previous = x, None, "input"

    def named(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return f"{kind}_{counts[kind]}"

    records = layers[1:]
    for i, layer in enumerate(records):
        kind = layer.kind
        if kind == "con":
            conv = keras.layers.Conv2D(layer.settings["filters"], layer.settings["size"], layer.settings["stride"],
                                       padding=_padding(layer), use_bias=True, name=named("conv"))
            kernel = np.transpose(layer.arrays["kernel"], (2, 3, 1, 0)).astype(np.float32)
            bias = layer.arrays["bias"] if layer.settings["use_bias"] else np.zeros(kernel.shape[-1], np.float32)
            following = records[i + 1] if i + 1 < len(records) else None
            if following is not None and following.kind == "affine":  # fold the fixed scale and shift
                gamma, beta = following.arrays["gamma"], following.arrays["beta"]
                kernel, bias = kernel * gamma, bias * gamma + beta
            weights[conv.name] = [kernel.astype(np.float32), np.asarray(bias, np.float32)]
            x = conv(x)
        elif kind == "affine":
            if previous != "con":
                raise GfrError("a dlib affine layer that does not follow a conv: not supported")
        elif kind == "relu":
            x = keras.layers.ReLU(name=named("relu"))(x)
            if previous == "add_prev":  # a residual block's output: the next block's input
                block_input = x
        elif kind == "max_pool":
            x = keras.layers.MaxPooling2D(layer.settings["size"], layer.settings["stride"], padding=_padding(layer),
                                          name=named("max_pool"))(x)
            block_input = x
        elif kind == "avg_pool" and layer.settings["size"] == (0, 0):  # avg_pool_everything
            x = keras.layers.GlobalAveragePooling2D(name="global_avg_pool")(x)
        elif kind == "avg_pool":  # the skip path of a down block: the block's input, pooled
            skip = keras.layers.AveragePooling2D(layer.settings["size"], layer.settings["stride"],
                                                 padding=_padding(layer), name=named("skip_pool"))(block_input)
        elif kind == "add_prev":
            x = zero_fill_add_layer()(name=named("add"))([x, skip if skip is not None else block_input])
            skip = None
        elif kind == "fc":
            if layer.settings["bias_mode"] != 1:
                raise GfrError("a dlib fc layer with a bias: gfr's port expects fc_no_bias")
            dense = keras.layers.Dense(layer.settings["outputs"], use_bias=False, name="descriptor")
            weights[dense.name] = [layer.arrays["weights"].astype(np.float32)]
            x = dense(x)
        else:
            raise GfrError(f"dlib layer record {kind!r} at position {i + 1}: not part of gfr's port")
        previous = kind
    model = keras.Model(inputs, x, name=name)
    for layer_name, arrays in weights.items():
        model.get_layer(layer_name).set_weights(arrays)
    return model


def weights_dir() -> Path:
    """Where the converted model is cached: $GFR_WEIGHTS_DIR, else ~/.cache/gfr/weights."""
    return Path(os.environ.get("GFR_WEIGHTS_DIR") or Path.home() / ".cache" / "gfr" / "weights").expanduser()


def cached_model_path(dat_path: str | os.PathLike, sha256: str | None = None) -> Path:
    """The Keras model file converted from dlib's `dat_path`: made once (atomically), kept under the file's hash."""
    sha256 = sha256 or files.file_sha256(dat_path)
    target = weights_dir() / f"{NAME}-{sha256[:16]}.keras"
    if not target.is_file():
        model = build(dlib_file.read_layers(dat_path)[1])
        with files.atomic_path(target, suffix=".keras") as tmp:
            model.save(tmp)
    return target


def load(dat_path: str | os.PathLike, sha256: str | None = None):
    """The descriptor network with the weights of dlib's `dat_path`: converted once, then loaded from the cache."""
    keras = _keras()
    zero_fill_add_layer()  # the custom layer class, registered for deserialization
    path = cached_model_path(dat_path, sha256)
    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, OSError, KeyError) as exc:  # a damaged cache file: convert again
        print(f"{path}: unreadable cached descriptor model ({type(exc).__name__}); converting again", file=sys.stderr)
        path.unlink(missing_ok=True)
        return keras.saving.load_model(cached_model_path(dat_path, sha256), compile=False)
