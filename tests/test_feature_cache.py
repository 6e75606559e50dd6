"""The feature cache: cached features + head == the full frozen model; hits, corruption, keys, disk, no pickle."""

from __future__ import annotations

import collections
import io
import json
import mmap
import shutil

import numpy as np
import pytest

from conftest import small_params
from gfr.models import backbones, feature_cache
from gfr.data import celeba, split
from gfr.errors import GfrError
from gfr.models.head import full_model, predict_proba, train_head
from gfr.data.images import decode_batch
from gfr.params import load_params

SIZE = (48, 48)
VGG_SIZE = (32, 32)


class LoadRecorder:
    """Wraps np.load to record the keyword arguments of each call made by gfr.models.feature_cache."""

    def __init__(self):
        self.calls = []
        self.real = np.load

    def __call__(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self.real(*args, **kwargs)


def do_extract(name, frame, root, manifest_sha, directory, size, seed=1024, **options):
    return feature_cache.extract(name, list(frame.image_id), root, size, False, backbones.RANDOM, manifest_sha,
                                 batch_size=8, directory=directory, init_seed=seed, progress=False, **options)


@pytest.fixture(scope="module")
def frame(synth_manifest):
    return split.read_manifest(synth_manifest)


@pytest.fixture(scope="module")
def resnet(frame, synth_root, synth_manifest, tmp_path_factory):
    """ResNet50 (random, 48x48) features of the synthetic set, computed through the cache."""
    directory = tmp_path_factory.mktemp("resnet-cache")
    feats, info = do_extract("ResNet50", frame, synth_root, split.manifest_hash(synth_manifest), directory, SIZE)
    return np.array(feats), info, directory


@pytest.fixture(scope="module")
def vgg(frame, synth_root, synth_manifest, tmp_path_factory):
    """VGG16 (random, 32x32) features through the cache, recording how np.load was called."""
    directory = tmp_path_factory.mktemp("vgg-cache")
    recorder = LoadRecorder()
    rows = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(feature_cache.np, "load", recorder)
        feats, info = do_extract("VGG16", frame, synth_root, split.manifest_hash(synth_manifest), directory, VGG_SIZE,
                                 on_batch=rows.append)
    assert rows == [min(k, len(frame)) for k in range(8, len(frame) + 8, 8)]  # rows written after each batch of 8
    return np.array(feats), info, directory, recorder.calls


@pytest.fixture
def vgg_copy(vgg, tmp_path):
    """A private copy of the VGG16 cache folder that a test may damage."""
    out = tmp_path / "cache"
    shutil.copytree(vgg[2], out)
    return out


def test_features_computed_once_per_image(resnet, frame):
    feats, info, directory = resnet
    assert info["cache"] == "miss"
    assert feats.shape == (len(frame), 2048) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and feats.std(axis=0).mean() > 0  # images give different features
    npy, meta = sorted(directory.glob("*.npy")), sorted(directory.glob("*.json"))
    assert len(npy) == 1 and len(meta) == 1 and npy[0].name.startswith("ResNet50-48x48-")
    sidecar = json.loads(meta[0].read_text())
    assert sidecar["rows"] == len(frame) and sidecar["key"]["init_seed"] == 1024


def test_head_on_cached_features_equals_full_frozen_model(resnet, frame, synth_root):
    """The central equivalence: cached features -> head gives what the full model gives from the images."""
    feats, _, _ = resnet
    train, test = frame.split.values == "train", frame.split.values == "test"
    head, *_ = train_head(feats[train], frame.label.values[train], feats[~train & ~test], frame.label.values[~train & ~test],
                       units=64, learning_rate=1e-3, batch_size=16, epochs=2, seed=1024)
    p_cached = predict_proba(head, feats[test])

    backbone = backbones.get("ResNet50")
    extractor = backbones.build_extractor(backbone, SIZE, False, backbones.RANDOM, init_seed=1024)
    paths = [celeba.image_path(synth_root, i) for i in frame.image_id[test]]
    images = backbones.preprocess(backbone, decode_batch(paths, SIZE))
    model = full_model(extractor, head)
    p_full = np.asarray(model.predict_on_batch(images)).ravel()

    np.testing.assert_allclose(np.asarray(extractor(images, training=False)), feats[test], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p_full, p_cached, rtol=0, atol=1e-5)
    assert np.ptp(p_full) > 1e-4  # the probabilities are not all the same (the check has teeth)


def test_random_backbone_is_drawn_from_the_init_seed():
    backbone = backbones.get("VGG16")
    a = backbones.build_extractor(backbone, VGG_SIZE, False, backbones.RANDOM, init_seed=5)
    b = backbones.build_extractor(backbone, VGG_SIZE, False, backbones.RANDOM, init_seed=5)
    c = backbones.build_extractor(backbone, VGG_SIZE, False, backbones.RANDOM, init_seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    assert not all(np.array_equal(x, y) for x, y in zip(a.get_weights(), c.get_weights()))
    assert a.get_layer(backbones.BASE_NAME) is a.layers[1] and a.get_layer(backbones.GAP_NAME) is a.layers[2]


def test_second_call_is_a_hit_and_does_not_rebuild(vgg, frame, synth_root, synth_manifest, monkeypatch):
    feats, info, directory, _ = vgg
    assert info["cache"] == "miss"

    def no_build(*args, **kwargs):
        raise AssertionError("the backbone was rebuilt on a cache hit")

    monkeypatch.setattr(backbones, "build_extractor", no_build)
    again, info2 = do_extract("VGG16", frame, synth_root, split.manifest_hash(synth_manifest), directory, VGG_SIZE)
    assert info2 == {"cache": "hit", "path": info["path"]}
    np.testing.assert_array_equal(np.asarray(again), feats)
    assert not again.flags.writeable  # a read-only memory map


def test_corrupt_cache_file_is_reported_once_and_rebuilt(vgg, vgg_copy, frame, synth_root, synth_manifest, capsys):
    feats = vgg[0]
    (npy,) = vgg_copy.glob("*.npy")
    data = bytearray(npy.read_bytes())
    for offset in (len(data) - 100, len(data) // 2):  # flip bytes in the array data, keep the header valid
        data[offset] ^= 0xFF
    npy.write_bytes(bytes(data))
    capsys.readouterr()
    rebuilt, info = do_extract("VGG16", frame, synth_root, split.manifest_hash(synth_manifest), vgg_copy, VGG_SIZE)
    err = capsys.readouterr().err
    assert info["cache"] == "miss"
    assert len(err.strip().splitlines()) == 1 and str(npy) in err and "corrupt" in err
    np.testing.assert_allclose(np.asarray(rebuilt), feats, rtol=1e-6, atol=1e-6)
    # The rebuilt entry is intact: the next call is a silent hit.
    _, info3 = do_extract("VGG16", frame, synth_root, split.manifest_hash(synth_manifest), vgg_copy, VGG_SIZE)
    assert info3["cache"] == "hit" and capsys.readouterr().err == ""


@pytest.mark.parametrize("damage", ["garbage-json", "other-key", "wrong-sha", "npy-not-an-array"])
def test_bad_entries_are_not_loaded(vgg, vgg_copy, frame, synth_manifest, damage, capsys):
    (npy,), (meta,) = vgg_copy.glob("*.npy"), vgg_copy.glob("*.json")
    sidecar = json.loads(meta.read_text())
    if damage == "garbage-json":
        meta.write_text("{not json")
    elif damage == "other-key":
        sidecar["key"]["manifest_sha256"] = "0" * 64
        meta.write_text(json.dumps(sidecar))
    elif damage == "wrong-sha":
        sidecar["sha256"] = "0" * 64
        meta.write_text(json.dumps(sidecar))
    else:
        npy.write_bytes(b"not an npy file")
        sidecar["sha256"] = feature_cache.file_sha256(npy)
        meta.write_text(json.dumps(sidecar))
    key = feature_cache.cache_key("VGG16", VGG_SIZE, False, backbones.RANDOM, split.manifest_hash(synth_manifest), 1024)
    assert feature_cache.entry_paths(vgg_copy, key) == (npy, meta)
    assert feature_cache.load_entry(npy, meta, key, len(frame)) is None
    assert "corrupt or stale" in capsys.readouterr().err


def test_intact_entry_with_wrong_row_count_is_not_loaded(vgg, frame, synth_manifest, capsys):
    directory = vgg[2]
    key = feature_cache.cache_key("VGG16", VGG_SIZE, False, backbones.RANDOM, split.manifest_hash(synth_manifest), 1024)
    npy, meta = feature_cache.entry_paths(directory, key)
    assert feature_cache.load_entry(npy, meta, key, len(frame)) is not None
    assert feature_cache.load_entry(npy, meta, key, len(frame) + 1) is None


def test_cache_files_are_loaded_without_pickle(vgg, frame, synth_root, synth_manifest, monkeypatch):
    miss_calls = vgg[3]
    recorder = LoadRecorder()
    monkeypatch.setattr(feature_cache.np, "load", recorder)
    do_extract("VGG16", frame, synth_root, split.manifest_hash(synth_manifest), vgg[2], VGG_SIZE)
    assert miss_calls and recorder.calls
    for kwargs in miss_calls + recorder.calls:
        assert kwargs.get("allow_pickle") is False


def test_stale_keys_are_different_entries(tmp_path):
    w1 = backbones.Weights("/w/a.h5", "a" * 64, "file a.h5")
    w2 = backbones.Weights("/w/b.h5", "b" * 64, "file b.h5")
    base = dict(backbone="ResNet50", image_size=(128, 128), native=False, weights=w1, manifest_sha="m" * 64, init_seed=1)

    def path(**change):
        return feature_cache.entry_paths(tmp_path, feature_cache.cache_key(**{**base, **change}))

    same = path()
    assert path() == same
    assert path(manifest_sha="n" * 64) != same
    assert path(weights=w2) != same
    assert path(image_size=(218, 178), native=True) != same
    assert path(native=True) != same
    assert path(backbone="VGG16") != same
    assert path(init_seed=2) == same  # the init seed only matters for random weights
    random = dict(weights=backbones.RANDOM)
    assert path(**random, init_seed=1) != path(**random, init_seed=2)


def test_iterations_1_and_2_share_one_cache_entry(tmp_path):
    weights = backbones.Weights("/w/resnet.h5", "c" * 64, "ImageNet")

    def entry(iteration):
        p = load_params(iteration)
        key = feature_cache.cache_key("ResNet50", p.image_size, p.native_input, weights, "m" * 64, p.seed)
        return feature_cache.entry_paths(tmp_path, key)

    assert entry(1) == entry(2)
    assert entry(3) != entry(1)
    assert entry(3)[0].name.startswith("ResNet50-218x178-")


def test_not_enough_disk_stops_before_any_computation(frame, synth_root, synth_manifest, tmp_path, monkeypatch):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(feature_cache.shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 10**6, 10**6))

    def no_compute(*args, **kwargs):
        raise AssertionError("features were computed despite the full disk")

    monkeypatch.setattr(feature_cache, "compute", no_compute)
    with pytest.raises(GfrError) as info:
        do_extract("VGG16", frame, synth_root, split.manifest_hash(synth_manifest), tmp_path / "c", VGG_SIZE)
    assert str(tmp_path / "c") in str(info.value) and "GFR_CACHE_DIR" in str(info.value)
    assert list((tmp_path / "c").iterdir()) == []


def test_failed_extraction_leaves_no_entry(frame, synth_root, synth_manifest, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    victim = frame.image_id.iloc[-1]
    (root / celeba.IMAGES_DIR / victim).unlink()  # the last batch fails
    with pytest.raises(GfrError, match=victim):
        do_extract("VGG16", frame, root, split.manifest_hash(synth_manifest), tmp_path / "c", VGG_SIZE)
    assert list((tmp_path / "c").iterdir()) == []  # no .npy, no sidecar, no temporary file


def test_cache_dir_resolution(tmp_path, monkeypatch):
    assert feature_cache.cache_dir(tmp_path) == tmp_path
    monkeypatch.setenv(feature_cache.CACHE_ENV, str(tmp_path / "env"))
    assert feature_cache.cache_dir() == tmp_path / "env"
    monkeypatch.delenv(feature_cache.CACHE_ENV)
    assert feature_cache.cache_dir() == feature_cache.Path.home() / ".cache" / "gfr" / "features"


def test_check_disk_passes_with_room(tmp_path):
    feature_cache.check_disk(tmp_path / "c", 1024)
    assert (tmp_path / "c").is_dir()


def test_small_params_use_the_cacheable_layout():
    p = small_params(1)
    assert p.image_size == SIZE and not p.native_input and p.weights == "none"


# ---------------------------------------------------------------- the memory-mapped .npy writer

def _hand_written_npy(path, shape, dtype) -> np.ndarray:
    """The .npy writer as it was written by hand before numpy's open_memmap replaced it (format 1.0 header, zeros)."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    with open(path, "wb+") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        offset = handle.tell()
        handle.truncate(offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
        handle.flush()
        mapping = mmap.mmap(handle.fileno(), 0)
    return np.ndarray(shape, dtype, buffer=mapping, offset=offset)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int8", "uint8", ">i4"])
@pytest.mark.parametrize("shape", [(37, 512), (5, 3, 4, 7), (0, 16), (1,), (2048, 3), (3, 1, 1000)])
def test_create_npy_writes_the_bytes_np_save_and_the_hand_written_writer_write(tmp_path, dtype, shape):
    array = (np.random.default_rng(0).standard_normal(shape) * 100).astype(dtype)
    out = feature_cache.create_npy(tmp_path / "a.npy", shape, dtype)
    assert out.shape == shape and out.dtype == np.dtype(dtype) and out.flags.writeable and out.flags.c_contiguous
    assert not out.any()  # starts as zeros
    old = _hand_written_npy(tmp_path / "old.npy", shape, dtype)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "old.npy").read_bytes()  # empty: header and zeros alike
    out[...] = array
    old[...] = array
    feature_cache.release_pages(out)
    feature_cache.release_pages(old)
    del out, old
    saved = io.BytesIO()
    np.save(saved, array, allow_pickle=False)
    assert (tmp_path / "a.npy").read_bytes() == saved.getvalue() == (tmp_path / "old.npy").read_bytes()
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy", allow_pickle=False), array)


def test_create_npy_refuses_python_objects(tmp_path):
    with pytest.raises(ValueError, match="Python objects"):
        feature_cache.create_npy(tmp_path / "o.npy", (2,), object)


def test_release_pages_keeps_the_data_and_ignores_plain_arrays(tmp_path):
    out = feature_cache.create_npy(tmp_path / "a.npy", (1000, 300), "float32")
    assert isinstance(out.base, mmap.mmap)
    out[:500] = 1.5
    feature_cache.release_pages(out)  # drops the written pages; they are faulted back in from the file
    assert float(out[:500].sum()) == 1.5 * 500 * 300 and not out[500:].any()
    out[500:] = 2.0
    feature_cache.release_pages(out[500:])  # a view finds its mapping through .base
    del out
    back = np.load(tmp_path / "a.npy", allow_pickle=False)
    assert (back[:500] == 1.5).all() and (back[500:] == 2.0).all()
    plain = np.ones((4, 3), np.float32)
    feature_cache.release_pages(plain)  # no mapping: nothing to do
    assert (plain == 1).all()


class FakeExtractor:
    """Stands in for a Keras model: each row's feature is its image's mean per channel."""

    def predict_on_batch(self, batch):
        return np.asarray(batch).mean(axis=(1, 2))


def test_compute_calls_on_batch_and_releases_pages_as_it_goes(synth_root, frame, tmp_path, monkeypatch):
    paths = [celeba.image_path(synth_root, i) for i in frame.image_id[:21]]
    backbone = backbones.get("VGG16")
    out = feature_cache.create_npy(tmp_path / "f.npy", (len(paths), 3), "float32")
    released, real_release = [], feature_cache.release_pages
    monkeypatch.setattr(feature_cache, "RELEASE_BYTES", 8 * 3 * 4)  # every 8 rows
    monkeypatch.setattr(feature_cache, "release_pages", lambda a: (released.append(1), real_release(a)))
    rows = []
    feature_cache.compute(FakeExtractor(), backbone, paths, VGG_SIZE, 8, out, False, on_batch=rows.append)
    assert rows == [8, 16, 21] and len(released) == 2
    expected = backbones.preprocess(backbone, decode_batch(paths, VGG_SIZE)).mean(axis=(1, 2))
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_random_weights_need_an_explicit_init_seed(frame, synth_root, tmp_path):
    backbone = backbones.get("VGG16")
    with pytest.raises(TypeError, match="init_seed"):
        backbones.build_extractor(backbone, VGG_SIZE, False, backbones.RANDOM)
    with pytest.raises(TypeError, match="init_seed"):
        backbones.build_truncated(backbone, VGG_SIZE, False, backbones.RANDOM, "block4_pool", None)
    with pytest.raises(TypeError, match="init_seed"):
        feature_cache.extract("VGG16", list(frame.image_id), synth_root, VGG_SIZE, False, backbones.RANDOM, "m" * 64,
                              directory=tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()


def test_find_weights_file(tmp_path):
    backbone = backbones.get("InceptionV3")
    assert backbones.find_weights_file(backbone, tmp_path) is None
    (tmp_path / backbones.INCEPTION_2015_FILE).write_bytes(b"x")
    assert backbones.find_weights_file(backbone, str(tmp_path)) == tmp_path / backbones.INCEPTION_2015_FILE
    (tmp_path / backbone.weights_file).write_bytes(b"x")
    assert backbones.find_weights_file(backbone, tmp_path) == tmp_path / backbone.weights_file  # Keras's name first


# ---------------------------------------------------------------- one entry spec for serial and sharded extraction

def test_entry_spec_key_is_the_entry_key():
    aug = feature_cache.Augment(load_params(5).augment, 1024, 1)
    spec = feature_cache.EntrySpec("ResNet50", [48, 48], False, backbones.RANDOM, 7, "conv4_block6_out", True,
                                   "float16", 8, aug)
    assert spec.image_size == (48, 48) and hash(spec)
    assert spec.key("m" * 64, ["a.jpg", "b.jpg"]) == feature_cache.entry_key(
        "ResNet50", (48, 48), False, backbones.RANDOM, "m" * 64, 7, "conv4_block6_out", True, "float16", aug,
        ["a.jpg", "b.jpg"])
    plain = feature_cache.EntrySpec("ResNet50", (48, 48), False, backbones.RANDOM, 7)
    assert (plain.layer, plain.flip, plain.dtype, plain.batch_size, plain.augment) == (None, False, "float32", 32, None)
    with pytest.raises(TypeError, match="init_seed"):
        feature_cache.EntrySpec("ResNet50", (48, 48), False, backbones.RANDOM).key("m" * 64, [])


def test_find_entry_is_a_miss_then_the_extracted_entry(vgg, frame, synth_manifest, tmp_path):
    spec = feature_cache.EntrySpec("VGG16", VGG_SIZE, False, backbones.RANDOM, 1024, batch_size=8)
    ids = list(frame.image_id)
    key, npy, meta, cached = feature_cache.find_entry(spec, ids, split.manifest_hash(synth_manifest), tmp_path / "none")
    assert cached is None and npy.parent == tmp_path / "none"
    key, npy, meta, cached = feature_cache.find_entry(spec, ids, split.manifest_hash(synth_manifest), vgg[2])
    assert cached is not None and len(cached) == len(ids) and str(npy) == vgg[1]["path"]
