"""The end-to-end classifier: image files -> decode, resize, preprocess, forward -> P(male), batch by batch."""

from __future__ import annotations

import numpy as np

from gfr.data.images import iter_batches
from gfr.models import backbones


def predict_files(model, backbone: backbones.Backbone, paths, image_size, batch_size: int,
                  workers: int | None = None, prefetch: int = 2) -> np.ndarray:
    """P(male) for each image file, decoding the next batches in threads while the model runs.

    `workers` (decode threads) and `prefetch` (batches decoded ahead) go to `gfr.data.images.iter_batches`.
    """
    out = [np.asarray(model.predict_on_batch(backbones.preprocess(backbone, batch))).ravel()
           for batch in iter_batches(paths, image_size, batch_size, workers=workers, prefetch=prefetch)]
    return np.concatenate(out) if out else np.empty(0)
