"""End-to-end inference timing from image files: gfr.models.classifier.predict_files, timed."""

from __future__ import annotations

import os
import statistics
import time

from gfr.models import backbones
from gfr.models.classifier import predict_files


def time_end_to_end(model, backbone: backbones.Backbone, paths, image_size, batch_size: int, warmup: int, repeats: int,
                    workers: int | None = None, prefetch: int = 2) -> dict:
    """Median wall time of `repeats` full `predict_files` passes over `paths`, after `warmup` passes over two batches.

    `workers` and `prefetch` are passed to `gfr.models.classifier.predict_files` (decode threads, batches ahead).
    """
    pipeline = dict(workers=workers, prefetch=prefetch)
    for _ in range(warmup):
        predict_files(model, backbone, paths[: 2 * batch_size], image_size, batch_size, **pipeline)
    runs, probs = [], None
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for _ in range(repeats):
        start = time.perf_counter()
        probs = predict_files(model, backbone, paths, image_size, batch_size, **pipeline)
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
