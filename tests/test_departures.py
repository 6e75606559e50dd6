"""Departures from the original: weights (file, origin, hash, Keras's md5 read from Keras), inputs, labels, hardware."""

import hashlib
import importlib
import inspect

import pytest

from gfr.models import backbones
from gfr.report import departures
from conftest import fake_manifest as manifest
from gfr.study import published

@pytest.fixture
def study(tmp_path):
    """Runs of every kind: InceptionV3 on Google's 2015 file, ResNet50 on a file under Keras's name that is not Keras's
    bytes, one on a file that has gone, the descriptor, and VGG16 skipped for want of weights."""
    runs = tmp_path / "runs"
    inception = tmp_path / backbones.INCEPTION_2015_FILE
    inception.write_bytes(b"inception 2015")
    resnet = tmp_path / backbones.get("ResNet50").weights_file
    resnet.write_bytes(b"not keras's bytes")
    manifest(runs, "InceptionV3-it1", weights_file=inception, sha="a" * 64, accuracy=0.85)
    manifest(runs, "InceptionV3-it3", weights_file=inception, sha="a" * 64, input_size=(218, 178), native=True,
             accuracy=0.95)
    manifest(runs, "ResNet50-it1", weights_file=resnet, sha=hashlib.sha256(resnet.read_bytes()).hexdigest())
    manifest(runs, "DlibFaceDescriptor-it3", weights_file=tmp_path / "dlib_face_recognition_resnet_model_v1.dat",
             sha="c" * 64, input_size=(218, 178), native=True)
    for it in (1, 2):
        manifest(runs, f"VGG16-it{it}", status="skipped")
    return runs


@pytest.mark.parametrize("name", [n for n, b in backbones.REGISTRY.items() if b.kind == "keras"])
def test_keras_download_is_what_keras_applications_asks_for(name):
    """The file name gfr looks for is Keras's, and the md5 and URL come from Keras's own source: the md5 string is
    in the keras.applications module that builds the network, beside its file name."""
    b = backbones.get(name)
    got = backbones.keras_download(b)
    assert got.file == b.weights_file and got.url.endswith(got.file) and len(got.md5) == 32
    source = inspect.getsource(importlib.import_module(b.constructor.__module__))
    assert got.md5 in source


def test_keras_download_refuses_a_backbone_keras_does_not_download():
    with pytest.raises(Exception, match="not a keras.applications network"):
        backbones.keras_download(backbones.get("DlibFaceDescriptor"))


def test_backbone_table_names_the_weights_each_run_used_and_what_its_network_sees(study):
    table = departures.backbone_table(study)
    assert list(table.index) == backbones.BACKBONES
    inception = table.loc["InceptionV3"]
    assert backbones.INCEPTION_2015_FILE in inception["weights used"] and inception.sha256 == "a" * 12
    assert "2015" in inception.origin and "another training run" in inception.origin
    assert inception["same bytes as Keras's download (md5)"] == "–"  # not a file under Keras's name
    assert inception["what the network sees"] == ("iteration 1: the image resized to 128x128; iteration 3: the "
                                                  "218x178 image at its own size (model input None x None)")
    resnet = table.loc["ResNet50"]
    assert resnet["same bytes as Keras's download (md5)"].startswith("no: another copy")
    assert backbones.keras_download(backbones.get("ResNet50")).md5 in resnet["same bytes as Keras's download (md5)"]
    dlib = table.loc["DlibFaceDescriptor"]
    assert "150x150 aligned face chip" in dlib["what the network sees"] and "identity" in dlib.origin
    assert table.loc["VGG16", "weights used"] == "none here (runs skipped)" and table.loc["VGG16", "runs"] == "0 finished, 2 not"
    assert table.loc["InceptionResNetV2", "runs"] == "none"


def test_the_md5_check_says_yes_for_keras_bytes_and_when_the_file_is_gone(tmp_path, monkeypatch):
    b = backbones.get("ResNet50")
    path = tmp_path / b.weights_file
    path.write_bytes(b"pretend these are keras's bytes")
    real = backbones.keras_download(b)
    monkeypatch.setattr(backbones, "keras_download", lambda _: backbones.KerasDownload(
        real.file, real.url, hashlib.md5(path.read_bytes()).hexdigest()))
    record = {"weights_file": str(path), "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert departures.keras_md5_check(b, record) == "yes"
    assert "no longer the run's file" in departures.keras_md5_check(b, {**record, "weights_sha256": "0" * 64})
    path.unlink()
    assert departures.keras_md5_check(b, record).startswith("not checked")


def test_missing_weights_give_keras_file_md5_and_the_runs_that_then_run(study):
    missing = departures.missing_weights(study)
    assert list(missing.index) == ["VGG16"]  # InceptionResNetV2 has no manifest: nothing was skipped
    vgg = missing.loc["VGG16"]
    expected = backbones.keras_download(backbones.get("VGG16"))
    assert vgg.file == f"`{expected.file}`" and vgg["md5 (as Keras checks it)"] == expected.md5
    assert backbones.WEIGHTS_ENV in vgg["put it in"] and vgg["runs that then run unchanged"] == "VGG16-it1, VGG16-it2"


def test_departures_table_sets_the_original_beside_this_study(study):
    table = departures.departures_table(study)
    assert table.loc["backbones", "the original"] == ", ".join(published.BACKBONES)
    assert "VGG16 skipped" in table.loc["backbones", "here"]
    assert published.INFERENCE_HARDWARE in table.loc["hardware", "the original"]
    assert table.loc["hardware", "here"] == "Test CPU (2 cores), tensorflow; no GPU"
    assert "`Male`" in table.loc["labels", "here"]
    assert "face descriptor: iteration 3: a 150x150" in table.loc["input the network sees", "here"]
    assert table.loc["preprocessing", "the original"] == departures.NOT_PUBLISHED


def test_departures_table_needs_runs(tmp_path):
    with pytest.raises(Exception, match="no run manifests"):
        departures.departures_table(tmp_path)


def test_against_original_says_whether_our_interval_holds_the_published_number(study):
    table = departures.against_original(study)
    assert list(table.index) == ["InceptionV3-it1", "InceptionV3-it3"]  # the published cells that finished here
    low = table.loc["InceptionV3-it1"]  # 85.0% (84.8-85.2) against 89.7%
    assert low["the original"] == f"{published.test_accuracy('InceptionV3', 1):.1f}%"
    assert low["original inside our CI"] == "no: ours lower"
    assert table.loc["InceptionV3-it3", "original inside our CI"] == "no: ours higher"  # 95.0% against 90.1%
    assert low["our weights"] == departures.WEIGHTS_KINDS["inception-2015"][0]


def test_weights_meaning_says_what_imagenet_means_per_backbone():
    assert "identity-trained" in backbones.weights_meaning(backbones.get("DlibFaceDescriptor"), "imagenet")
    inception = backbones.weights_meaning(backbones.get("InceptionV3"), "imagenet")
    assert backbones.INCEPTION_2015_FILE in inception and backbones.get("InceptionV3").weights_file in inception
    assert "random" in backbones.weights_meaning(backbones.get("ResNet50"), "none")


def test_network_input_follows_the_backbone_and_the_iteration():
    resnet, dlib = backbones.get("ResNet50"), backbones.get("DlibFaceDescriptor")
    assert resnet.network_input((128, 128), False) == "the image resized to 128x128"
    assert "own size" in resnet.network_input((218, 178), True)
    assert dlib.network_input((218, 178), True).startswith("a 150x150 aligned face chip")
    assert "150x150" in dlib.preprocessing
