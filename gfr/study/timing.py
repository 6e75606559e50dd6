"""End-to-end inference timing from image files: gfr.models.classifier.predict_files, timed."""

from __future__ import annotations

import os
import statistics
import time

from gfr.models import backbones
from gfr.models.classifier import predict_files


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (other work on the machine slows a timing down), or None."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def warm_up(model, backbone: backbones.Backbone, paths, image_size, batch_size: int, passes: int,
            workers: int | None = None, prefetch: int = 2) -> None:
    """`passes` untimed predictions of two batches and of the short last batch of `paths` (every batch shape a
    timed pass meets is traced before it)."""
    tail = len(paths) % batch_size
    some = list(paths[: 2 * batch_size]) + (list(paths[len(paths) - tail:]) if tail and len(paths) > 2 * batch_size else [])
    for _ in range(passes):
        predict_files(model, backbone, some, image_size, batch_size, workers=workers, prefetch=prefetch)


def time_pass(model, backbone: backbones.Backbone, paths, image_size, batch_size: int,
              workers: int | None = None, prefetch: int = 2) -> dict:
    """One full `predict_files` pass over `paths`: wall and process CPU seconds, and its P(male)."""
    cpu, start = time.process_time(), time.perf_counter()
    probs = predict_files(model, backbone, paths, image_size, batch_size, workers=workers, prefetch=prefetch)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "probabilities": probs}


def spread(seconds: list[float], images: int) -> dict:
    """Median, min and max of repeated timings of `images` images, and the images/s of each."""
    median = statistics.median(seconds)
    per_s = (lambda s: images / s if s > 0 else float("inf"))
    return {"median_s": median, "min_s": min(seconds), "max_s": max(seconds), "images_per_s": per_s(median),
            "images_per_s_min": per_s(max(seconds)), "images_per_s_max": per_s(min(seconds))}


def time_end_to_end(model, backbone: backbones.Backbone, paths, image_size, batch_size: int, warmup: int, repeats: int,
                    workers: int | None = None, prefetch: int = 2) -> dict:
    """Median wall time of `repeats` full `predict_files` passes over `paths`, after `warmup` short passes.

    `workers` and `prefetch` are passed to `gfr.models.classifier.predict_files` (decode threads, batches ahead).
    """
    pipeline = dict(workers=workers, prefetch=prefetch)
    warm_up(model, backbone, paths, image_size, batch_size, warmup, **pipeline)
    load_before = load_average()
    passes = [time_pass(model, backbone, paths, image_size, batch_size, **pipeline) for _ in range(repeats)]
    runs = [p["seconds"] for p in passes]
    load_after = load_average()
    summary = spread(runs, len(paths))
    return {
        "images": len(paths),
        "batch_size": batch_size,
        "repeats": repeats,
        "runs_s": runs,
        "median_s": summary["median_s"],
        "images_per_s": summary["images_per_s"],
        "probabilities": passes[-1]["probabilities"],
        # other work on the machine slows a timing down: the 1-minute load average before and after
        "load_average": [load_before and load_before[0], load_after and load_after[0]],
    }
