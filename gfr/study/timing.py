"""End-to-end inference timing from image files: decode, resize, preprocess, forward."""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from gfr.models import backbones
from gfr.data.images import iter_batches


def predict_files(model, backbone: backbones.Backbone, paths, image_size, batch_size: int) -> np.ndarray:
    """P(male) for each image file, decoding the next batches in threads while the model runs."""
    out = [np.asarray(model.predict_on_batch(backbones.preprocess(backbone, batch))).ravel()
           for batch in iter_batches(paths, image_size, batch_size)]
    return np.concatenate(out) if out else np.empty(0)


def time_end_to_end(model, backbone: backbones.Backbone, paths, image_size, batch_size: int, warmup: int, repeats: int) -> dict:
    """Median wall time of `repeats` full passes over `paths`, after `warmup` passes over two batches."""
    for _ in range(warmup):
        predict_files(model, backbone, paths[: 2 * batch_size], image_size, batch_size)
    runs, probs = [], None
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for _ in range(repeats):
        start = time.perf_counter()
        probs = predict_files(model, backbone, paths, image_size, batch_size)
        runs.append(time.perf_counter() - start)
    median = statistics.median(runs)
    return {
        "images": len(paths),
        "batch_size": batch_size,
        "repeats": repeats,
        "runs_s": runs,
        "median_s": median,
        "images_per_s": len(paths) / median if median > 0 else float("inf"),
        "probabilities": probs,
        # other work on the machine slows a timing down: the 1-minute load average before and after
        "load_average": [load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else None],
    }
