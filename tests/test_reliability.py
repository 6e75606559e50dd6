"""Reliability: kill and rerun, determinism across processes, weights errors and resolution, predict safety."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import PYTHON, REPO, edit_record, gfr_cli, predict_rows, run_args, small_params
from gfr.models import backbones
from gfr.data import celeba, split
from gfr import cli, predict
from gfr.study import artefacts, run, saved
from gfr.errors import GfrError, WeightsUnavailable
from gfr.files import file_sha256

VGG_FILE = backbones.get("VGG16").weights_file


def final_entries(directory: Path) -> list[Path]:
    """Files under final (non-temporary) names: temporaries are dot-files named '.<target>.<random>.tmp*'."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))


# ---- (a) killed mid-way, then rerun; (b) determinism across fresh processes ----------------------

@pytest.fixture(scope="module")
def killed_then_rerun(cli_run, synth_root, tmp_path_factory) -> dict:
    """`gfr run ResNet50 1` SIGKILLed while writing the feature cache, then run again to the end.

    The last image of the split is replaced by a named pipe, so the extraction stalls on it after the
    first batches are written: the kill lands mid-way every time, without racing the clock. The same
    configuration as `cli_run` (its manifest, the same image bytes), so the rerun is also the second
    fresh-process run of the determinism check.
    """
    work = tmp_path_factory.mktemp("kill")
    data = work / "data"
    shutil.copytree(synth_root, data)
    frame = split.read_manifest(cli_run["manifest"])
    victim = data / celeba.IMAGES_DIR / frame.image_id.iloc[-1]
    victim.unlink()
    os.mkfifo(victim)
    runs, cache = work / "runs", work / "cache"
    args = [str(a) for a in run_args(data, cli_run["manifest"], runs, cache)]
    log = work / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([PYTHON, "-m", "gfr", *args], cwd=work, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 300
            while True:  # the progress meter prints as soon as the first batch is written
                done = re.findall(r"ResNet50 features: (\d+)/(\d+)", log.read_text(errors="replace"))
                if done and int(done[-1][0]) < int(done[-1][1]):
                    break
                assert proc.poll() is None, f"the run ended before it could be killed:\n{log.read_text()}"
                assert time.monotonic() < deadline, "feature extraction never started"
                time.sleep(0.02)
            time.sleep(0.5)  # let it write the batches before the stalled one
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    after_kill = {
        "returncode": proc.returncode,
        "cache_final": final_entries(cache) if cache.exists() else [],
        "cache_temporary": sorted(cache.glob(".*.tmp.npy")),
        "runs_final": final_entries(runs) if runs.exists() else [],
    }
    victim.unlink()
    shutil.copy(synth_root / celeba.IMAGES_DIR / victim.name, victim)
    rerun = gfr_cli(*args, cwd=work)
    return {"after_kill": after_kill, "rerun": rerun, "run_dir": runs / "ResNet50-it1", "cache": cache}


def test_kill_leaves_nothing_half_written(killed_then_rerun):
    after = killed_then_rerun["after_kill"]
    assert after["returncode"] == -signal.SIGKILL
    # Nothing under a final name: no feature array, no sidecar, no run manifest or other run file.
    assert after["cache_final"] == [] and after["runs_final"] == []
    # The kill did land while the features were being written (only the temporary file holds them).
    (temporary,) = after["cache_temporary"]
    assert temporary.name.startswith(".ResNet50-48x48-") and temporary.stat().st_size > 0


def test_rerun_after_kill_completes(killed_then_rerun):
    rerun = killed_then_rerun["rerun"]
    assert rerun.returncode == 0, rerun.stderr
    assert "test acc" in rerun.stdout
    record = json.loads((killed_then_rerun["run_dir"] / "manifest.json").read_text())
    assert record["status"] == "ok" and record["split_sizes"] == {"train": 24, "val": 8, "test": 8}
    assert record["feature_cache"]["cache"] == "miss"
    (npy,) = [f for f in final_entries(killed_then_rerun["cache"]) if f.suffix == ".npy"]
    sidecar = json.loads(npy.with_suffix(".json").read_text())
    assert sidecar["sha256"] == file_sha256(npy) and sidecar["rows"] == 40
    assert np.load(npy, allow_pickle=False).shape == (40, 2048)


def test_same_configuration_twice_gives_identical_predictions(cli_run, killed_then_rerun):
    assert killed_then_rerun["rerun"].returncode == 0
    first = pd.read_csv(cli_run["run_dir"] / "test_predictions.csv")
    second = pd.read_csv(killed_then_rerun["run_dir"] / "test_predictions.csv")
    assert list(first.columns) == list(second.columns) and list(first.image_id) == list(second.image_id)
    for col in [c for c in first.columns if c.startswith("prob_seed")]:
        assert np.max(np.abs(first[col].values - second[col].values)) <= 1e-7, col
    a = json.loads((cli_run["run_dir"] / "manifest.json").read_text())
    b = json.loads((killed_then_rerun["run_dir"] / "manifest.json").read_text())
    assert a["test"] == b["test"] and a["seeds"] == b["seeds"]
    # The features, computed afresh in each process from a seeded random backbone, are bitwise equal.
    assert a["feature_cache"]["path"] != b["feature_cache"]["path"]
    sha = [json.loads(Path(r["feature_cache"]["path"]).with_suffix(".json").read_text())["sha256"] for r in (a, b)]
    assert sha[0] == sha[1]


# ---- (c) weights errors --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg_h5(tmp_path_factory) -> Path:
    """A random-weight VGG16 (no top) saved as a legacy Keras .h5 file."""
    import keras

    path = tmp_path_factory.mktemp("weights") / "vgg16_random.h5"
    model = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    return path


def test_missing_weights_file(tmp_path):
    with pytest.raises(GfrError, match="weights file not found") as info:
        backbones.resolve_weights(backbones.get("ResNet50"), str(tmp_path / "nope.h5"))
    assert str(tmp_path / "nope.h5") in str(info.value)


def test_weights_folder_without_the_file(tmp_path):
    with pytest.raises(GfrError) as info:
        backbones.resolve_weights(backbones.get("ResNet50"), str(tmp_path))
    assert str(tmp_path) in str(info.value) and backbones.get("ResNet50").weights_file in str(info.value)


def test_weights_of_another_architecture(vgg_h5):
    w = backbones.resolve_weights(backbones.get("ResNet50"), str(vgg_h5))
    assert w.path == str(vgg_h5.resolve()) and w.sha256 == file_sha256(vgg_h5)
    with pytest.raises(GfrError, match="does not fit ResNet50") as info:
        backbones.build_extractor(backbones.get("ResNet50"), (48, 48), False, w)
    assert str(vgg_h5.resolve()) in str(info.value)


def test_weights_file_that_is_not_hdf5(tmp_path):
    bad = tmp_path / "weights.h5"
    bad.write_text("not HDF5")
    w = backbones.resolve_weights(backbones.get("VGG16"), str(bad))
    with pytest.raises(GfrError, match="does not fit VGG16") as info:
        backbones.build_extractor(backbones.get("VGG16"), (32, 32), False, w)
    assert str(bad) in str(info.value)


def test_matching_weights_file_loads(vgg_h5):
    w = backbones.resolve_weights(backbones.get("VGG16"), str(vgg_h5))
    extractor = backbones.build_extractor(backbones.get("VGG16"), (32, 32), False, w)
    assert extractor.output_shape == (None, 512) and not extractor.layers[1].trainable


def test_real_resnet_weights_do_not_fit_vgg(real_weights):
    w = backbones.resolve_weights(backbones.get("VGG16"), str(real_weights / backbones.get("ResNet50").weights_file))
    with pytest.raises(GfrError, match="does not fit VGG16"):
        backbones.build_extractor(backbones.get("VGG16"), (32, 32), False, w)


@pytest.mark.parametrize("name", ["ResNet51", "resnet50", "", "../VGG16"])
def test_unknown_backbone(name, synth_root, synth_manifest, tmp_path):
    with pytest.raises(GfrError, match="unknown backbone") as info:
        backbones.get(name)
    assert repr(name) in str(info.value) and "ResNet50" in str(info.value)
    with pytest.raises(GfrError, match="unknown backbone"):
        run.run_one(name, 1, synth_root, synth_manifest, tmp_path / "runs", small_params(1), tmp_path / "c", progress=False)
    assert not (tmp_path / "runs").exists()


# ---- (d) weights resolution ----------------------------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    """No name resolution, as on a machine without network: every DNS look-up fails at once."""
    lookups = []

    def no_dns(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    return lookups


def test_imagenet_weights_unavailable_offline(tmp_path, monkeypatch, offline):
    empty = tmp_path / "weights"
    empty.mkdir()
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(empty))
    with pytest.raises(WeightsUnavailable) as info:
        backbones.resolve_weights(backbones.get("VGG16"), "imagenet")
    msg = str(info.value)
    assert msg.startswith("VGG16: ") and VGG_FILE in msg and str(empty) in msg and "download failed" in msg
    assert offline == ["storage.googleapis.com"]  # it did try Keras's download, once


def test_unavailable_weights_make_a_skipped_run(tmp_path, monkeypatch, offline, synth_root, synth_manifest):
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path))
    params = small_params(1, {"weights": "imagenet"})
    record = run.run_one("VGG16", 1, synth_root, synth_manifest, tmp_path / "runs", params, tmp_path / "cache", progress=False)
    assert record["status"] == "skipped" and VGG_FILE in record["reason"]
    written = json.loads((tmp_path / "runs" / "VGG16-it1" / "manifest.json").read_text())
    assert written["status"] == "skipped" and written["reason"] == record["reason"] and written["backbone"] == "VGG16"
    assert not (tmp_path / "cache").exists() or final_entries(tmp_path / "cache") == []  # nothing computed
    with pytest.raises(GfrError, match="not 'ok'"):
        saved.load_model(tmp_path / "runs" / "VGG16-it1")


def test_weights_command_reports_unavailable_as_json(tmp_path, monkeypatch, offline, capsys):
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path))
    assert cli.main(["weights", "VGG16"]) == 0
    status = json.loads(capsys.readouterr().out)  # stdout is pure JSON (download chatter goes to stderr)
    assert status["VGG16"]["available"] is False and VGG_FILE in status["VGG16"]["reason"]


def test_file_under_keras_name_is_picked_up(tmp_path, monkeypatch, offline):
    (tmp_path / VGG_FILE).write_bytes(b"stand-in weights")
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path))
    w = backbones.resolve_weights(backbones.get("VGG16"), "imagenet")
    assert w.path == str((tmp_path / VGG_FILE).resolve()) and w.sha256 == file_sha256(tmp_path / VGG_FILE)
    assert "ImageNet" in w.origin and not w.is_random
    assert offline == []  # no download was attempted
    # The same folder given directly as the weights spec.
    assert backbones.resolve_weights(backbones.get("VGG16"), str(tmp_path)).sha256 == w.sha256


def test_inception_2015_file_is_an_alternate(tmp_path, monkeypatch, offline):
    (tmp_path / backbones.INCEPTION_2015_FILE).write_bytes(b"x")
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path))
    w = backbones.resolve_weights(backbones.get("InceptionV3"), "imagenet")
    assert Path(w.path).name == backbones.INCEPTION_2015_FILE and offline == []


def test_keras_cache_is_used_when_the_folder_lacks_the_file(tmp_path, monkeypatch, offline):
    home = tmp_path / "keras-home"
    (home / "models").mkdir(parents=True)
    (home / "models" / VGG_FILE).write_bytes(b"cached")
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path / "empty"))
    w = backbones.resolve_weights(backbones.get("VGG16"), "imagenet")
    assert w.path == str((home / "models" / VGG_FILE).resolve()) and offline == []


@pytest.mark.parametrize("spec", [None, "none", "None", "random"])
def test_random_weights_by_name(spec):
    w = backbones.resolve_weights(backbones.get("ResNet50"), spec)
    assert w.is_random and w.sha256 == "random" and w.path is None


def test_real_weights_resolve(real_weights, monkeypatch, offline):
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(real_weights))
    w = backbones.resolve_weights(backbones.get("ResNet50"), "imagenet")
    assert Path(w.path).name == backbones.get("ResNet50").weights_file and len(w.sha256) == 64 and offline == []


# ---- (e) predict safety --------------------------------------------------------------------------



def test_saved_run_is_complete(saved_run):
    record = artefacts.load_record(saved_run)
    assert record["head_sha256"] == file_sha256(saved_run / record["head_file"])
    assert record["full_model_vs_cached_max_abs_diff"] < 1e-5
    for name in ("history.csv", "seeds.csv", "test_predictions.csv"):
        assert (saved_run / name).is_file()


def test_predict_reproduces_the_runs_test_predictions(saved_run, synth_root, capsys):
    expected = pd.read_csv(saved_run / "test_predictions.csv")
    rows = predict_rows(saved_run, [str(synth_root / celeba.IMAGES_DIR)], weights="none",
                        no_face="whole-image")  # synthetic faces: not real face crops
    assert len(rows) == 40 and [Path(r["path"]).name for r in rows] == sorted(Path(r["path"]).name for r in rows)
    got = {Path(r["path"]).name: r["p_male"] for r in rows}
    np.testing.assert_allclose([got[i] for i in expected.image_id], expected.prob_seed1024, atol=1e-5, rtol=0)
    assert all(r["label"] == ("male" if r["p_male"] >= 0.5 else "female") for r in rows)


def test_predict_command_writes_csv(saved_run, synth_root, tmp_path, capsys):
    image = synth_root / celeba.IMAGES_DIR / "000001.jpg"
    out = tmp_path / "pred.csv"
    assert cli.main(["predict", "--run", str(saved_run), "--weights", "none", "--no-face", "whole-image", str(image),
                     "--csv", str(out)]) == 0
    assert f"{image}: P(male)=" in capsys.readouterr().out
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["path", "face", "p_male", "label", "error"] and frame.path[0] == str(image)


def test_predict_rejects_a_non_image_file(saved_run, tmp_path):
    """An unreadable image is a row labelled 'error' naming why (the job goes on; tests/test_predict.py)."""
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    [row] = predict_rows(saved_run, [str(text)], weights="none")
    assert row["path"] == str(text) and row["label"] == "error" and row["p_male"] is None
    assert "not a readable image" in row["error"]


def test_predict_refuses_a_decompression_bomb(saved_run, tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (8000, 6000)).save(bomb)  # 48 megapixels in a few kilobytes
    assert bomb.stat().st_size < 100_000
    [row] = predict_rows(saved_run, [str(bomb)], weights="none")
    assert row["label"] == "error" and "pixel cap" in row["error"] and row["p_male"] is None


def test_predict_missing_input(saved_run, tmp_path):
    with pytest.raises(GfrError, match="no such file or folder"):
        predict_rows(saved_run, [str(tmp_path / "nope.jpg")], weights="none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GfrError, match="holds no images"):
        predict_rows(saved_run, [str(tmp_path / "empty")], weights="none")


@pytest.mark.parametrize("head_file", ["../../etc/passwd", "/etc/passwd", "../VGG16-it1-other/head.weights.h5"])
def test_head_path_escaping_the_run_folder_is_refused(run_copy, head_file):
    edit_record(run_copy, head_file=head_file)
    with pytest.raises(GfrError, match="escapes the run folder") as info:
        saved.load_model(run_copy, weights="none")
    assert repr(head_file) in str(info.value)


def test_head_file_with_other_bytes_is_refused(run_copy):
    head = run_copy / artefacts.HEAD_FILE
    data = bytearray(head.read_bytes())
    data[-1] ^= 0x01
    head.write_bytes(bytes(data))
    with pytest.raises(GfrError, match="content hash differs") as info:
        saved.load_model(run_copy, weights="none")
    assert str(head) in str(info.value)


def test_missing_head_file_is_refused(run_copy):
    (run_copy / artefacts.HEAD_FILE).unlink()
    with pytest.raises(GfrError, match="head weights not found"):
        saved.load_model(run_copy, weights="none")


def test_weights_with_another_hash_are_refused(saved_run, vgg_h5):
    with pytest.raises(GfrError, match="differ from the run's") as info:
        saved.load_model(saved_run, weights=str(vgg_h5))
    assert str(saved_run / artefacts.MANIFEST) in str(info.value)


def test_weights_recorded_file_replaced_is_refused(run_copy, vgg_h5, tmp_path):
    """A run made with a weights file: a different file put at that path is caught by its hash."""
    fake = tmp_path / "w.h5"
    shutil.copy(vgg_h5, fake)
    edit_record(run_copy, weights_file=str(fake), weights_sha256="0" * 64)
    with pytest.raises(GfrError, match="differ from the run's"):
        saved.load_model(run_copy)
