"""The end-to-end classifier: image files -> P(male), batch by batch, with the decode pipeline's options."""

from __future__ import annotations

import numpy as np
import pytest

from gfr.data import celeba, images, split
from gfr.data.images import decode_batch
from gfr.models import backbones, classifier
from gfr.study import timing

SIZE = (32, 32)


class FakeModel:
    """Stands in for the full Keras model: P(male) is a fixed function of the preprocessed batch."""

    def __init__(self):
        self.batch_sizes = []

    def predict_on_batch(self, batch):
        self.batch_sizes.append(len(batch))
        return (np.asarray(batch).mean(axis=(1, 2, 3)) % 1.0)[:, None]


@pytest.fixture(scope="module")
def paths(synth_root, synth_manifest):
    frame = split.read_manifest(synth_manifest)
    return [celeba.image_path(synth_root, i) for i in frame.image_id[:11]]


def test_predict_files_is_the_model_on_the_decoded_images(paths):
    backbone = backbones.get("VGG16")
    model = FakeModel()
    p = classifier.predict_files(model, backbone, paths, SIZE, 4)
    expected = FakeModel().predict_on_batch(backbones.preprocess(backbone, decode_batch(paths, SIZE))).ravel()
    assert model.batch_sizes == [4, 4, 3]
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    assert classifier.predict_files(model, backbone, [], SIZE, 4).shape == (0,)


def test_workers_and_prefetch_reach_iter_batches(paths, monkeypatch):
    seen, real = [], images.iter_batches

    def recording(*args, **kwargs):
        seen.append((kwargs.get("workers"), kwargs.get("prefetch")))
        return real(*args, **kwargs)

    monkeypatch.setattr(classifier, "iter_batches", recording)
    backbone = backbones.get("VGG16")
    default = classifier.predict_files(FakeModel(), backbone, paths, SIZE, 4)
    tuned = classifier.predict_files(FakeModel(), backbone, paths, SIZE, 4, workers=1, prefetch=0)
    np.testing.assert_array_equal(tuned, default)
    timed = timing.time_end_to_end(FakeModel(), backbone, paths, SIZE, 4, warmup=1, repeats=1, workers=2, prefetch=5)
    np.testing.assert_array_equal(timed["probabilities"], default)
    assert seen == [(None, 2), (1, 0), (2, 5), (2, 5)]
