"""Predict P(male) for image files with a saved run: rebuild backbone + head, hash-checked."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from gfr import files
from gfr.data.images import decode
from gfr.errors import GfrError
from gfr.models import backbones
from gfr.models.head import full_model, load_head
from gfr.study import artefacts, metrics

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def load_model(run_dir: str | os.PathLike, weights: str | None = None):
    """(model, backbone, record) of a saved run; refuses weights whose hash differs from the manifest's."""
    run_dir = Path(run_dir)
    record = artefacts.load_record(run_dir)
    if record.get("status") != "ok":
        raise GfrError(f"{run_dir}: run status is {record.get('status')!r}, not 'ok' ({record.get('reason', '')})")
    backbone = backbones.get(record["backbone"])
    if weights is None and record.get("weights_file") and Path(record["weights_file"]).is_file():
        weights = record["weights_file"]
    resolved = backbones.resolve_weights(backbone, weights or ("none" if record["weights_sha256"] == "random" else "imagenet"))
    if resolved.sha256 != record["weights_sha256"]:
        raise GfrError(
            f"weights {resolved.path or 'random'} (sha256 {resolved.sha256[:12]}) differ from the run's "
            f"{record['weights_sha256'][:12]} recorded in {run_dir / artefacts.MANIFEST}"
        )
    head = load_head(artefacts.inside(run_dir, record["head_file"]), record["feature_dim"], record["head_units"], record["head_sha256"])
    if record.get("finetuned_file"):
        from gfr.models import finetune

        weights_file = artefacts.inside(run_dir, record["finetuned_file"])
        if not weights_file.is_file():
            raise GfrError(f"{weights_file}: the fine-tuned weights are not here (about 60 MB, not committed); "
                           f"rebuild them with `make finetune` (needs GFR_DATA_DIR and the ImageNet weights)")
        return finetune.load_finetuned(backbone, record, resolved, weights_file), backbone, record
    extractor = backbones.build_extractor(backbone, tuple(record["input_size"]), record["native_input"], resolved,
                                          record["params"]["seed"])
    return full_model(extractor, head), backbone, record


def expand(inputs: list[str]) -> list[Path]:
    """Image files from files and folders (a folder's images in name order)."""
    out = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise GfrError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise GfrError(f"{path}: no such file or folder")
    return out


def predict_paths(run_dir, inputs: list[str], weights: str | None = None, detect_faces: bool = False, batch_size: int = 32) -> list[dict]:
    """One row per image (or per detected face): path, face, P(male), label."""
    model, backbone, record = load_model(run_dir, weights)
    size = tuple(record["input_size"])
    crops, rows = [], []
    for path in expand(inputs):
        if detect_faces:
            from gfr.data import faces

            found, detector = faces.crops_or_whole(decode(path, None), size)
            for k, crop in enumerate(found):  # no face found: the whole image, flagged as face "none"
                rows.append({"path": str(path), "face": k if detector != "none" else "none"})
                crops.append(crop)
        else:
            rows.append({"path": str(path), "face": None})
            crops.append(decode(path, size))
    probs = []
    for start in range(0, len(crops), batch_size):
        batch = np.stack(crops[start:start + batch_size])
        probs.append(np.asarray(model.predict_on_batch(backbones.preprocess(backbone, batch))).ravel())
    probs = iter(np.concatenate(probs)) if probs else iter(())
    for row in rows:
        if "p_male" not in row:
            row["p_male"] = float(next(probs))
            row["label"] = "male" if metrics.predicted_male(row["p_male"])[0] else "female"
    return rows


def print_rows(rows: list[dict]) -> None:
    """Print a prediction table."""
    for row in rows:
        face = {None: "", "none": " (no face found: whole image)"}.get(row["face"], f" face {row['face']}")
        p = "" if row["p_male"] is None else f"P(male)={row['p_male']:.3f}  "
        print(f"{row['path']}{face}: {p}{row['label']}")


def write_csv(rows: list[dict], path: str | os.PathLike) -> None:
    """Write predictions to CSV atomically."""
    files.write_csv(path, pd.DataFrame(rows, columns=["path", "face", "p_male", "label"]))
