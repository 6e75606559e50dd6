"""The split manifest: sizes, determinism, disjointness, labels, subsets, the official partition, bad images."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import small_params
from gfr.data import celeba, split, synthetic
from gfr.errors import GfrError
from gfr.files import file_sha256
from gfr.params import load_params


def data_params(**over):
    return small_params(1, {"data": over} if over else None).data


@pytest.fixture
def tiny(tmp_path):
    """12 small synthetic images a test may damage."""
    return synthetic.write_dataset(tmp_path / "tiny", 12, seed=3, size=(32, 32))


# ---- assign_splits -------------------------------------------------------------------------------

def ids(n):
    return pd.Index([f"{i:06d}.jpg" for i in range(1, n + 1)])


def test_sizes_60_20_20():
    s = split.assign_splits(ids(100), 1024, data_params())
    assert s.value_counts().to_dict() == {"train": 60, "val": 20, "test": 20}
    assert list(s.index) == list(ids(100))  # in the order of the attribute file


def test_deterministic_for_a_seed_and_seed_matters():
    a = split.assign_splits(ids(200), 1024, data_params())
    b = split.assign_splits(ids(200), 1024, data_params())
    c = split.assign_splits(ids(200), 1025, data_params())
    pd.testing.assert_series_equal(a, b)
    assert not a.equals(c)


def test_other_fractions():
    s = split.assign_splits(ids(100), 7, data_params(test_fraction=0.1, val_fraction=0.3))
    assert s.value_counts().to_dict() == {"train": 60, "val": 30, "test": 10}


def test_subset_is_seeded_and_within_ids():
    a = split.assign_splits(ids(100), 1024, data_params(subset=20))
    b = split.assign_splits(ids(100), 1024, data_params(subset=20))
    c = split.assign_splits(ids(100), 99, data_params(subset=20))
    assert len(a) == 20 and set(a.index) <= set(ids(100))
    assert a.value_counts().to_dict() == {"train": 12, "val": 4, "test": 4}
    pd.testing.assert_series_equal(a, b)
    assert set(a.index) != set(c.index)


def test_subset_larger_than_data():
    with pytest.raises(GfrError, match="data.subset=50 exceeds the 40 images"):
        split.assign_splits(ids(40), 1, data_params(subset=50))


def test_too_few_images_for_three_parts():
    with pytest.raises(GfrError, match="empty part"):
        split.assign_splits(ids(2), 1, data_params())


def test_official_partition():
    part = pd.Series({i: k % 3 for k, i in enumerate(ids(9))}, name="partition")
    s = split.assign_splits(ids(9), 1, data_params(official_partition=True), part)
    assert list(s.values) == ["train", "val", "test"] * 3


def test_official_partition_absent_or_incomplete():
    with pytest.raises(GfrError, match="list_eval_partition.txt is absent"):
        split.assign_splits(ids(9), 1, data_params(official_partition=True), None)
    part = pd.Series({i: 0 for i in ids(8)})
    with pytest.raises(GfrError, match="no partition for '000009.jpg'"):
        split.assign_splits(ids(9), 1, data_params(official_partition=True), part)


# ---- make_manifest on synthetic images -----------------------------------------------------------

def test_manifest_on_synthetic(synth_root, synth_manifest):
    frame = split.read_manifest(synth_manifest)
    attrs = celeba.read_attributes(synth_root)
    assert list(frame.columns) == split.MANIFEST_COLUMNS
    assert frame.split.value_counts().to_dict() == {"train": 24, "val": 8, "test": 8}
    assert frame.image_id.is_unique and set(frame.image_id) == set(attrs.index)  # disjoint and complete
    parts = [set(frame.image_id[frame.split == s]) for s in split.SPLITS]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    expected = (attrs.loc[frame.image_id, "Male"].values == 1).astype(int)
    np.testing.assert_array_equal(frame.label.values, expected)
    assert frame.label.sum() == 16
    excluded = pd.read_csv(split.excluded_path(synth_manifest))
    assert list(excluded.columns) == ["image_id", "reason"] and excluded.empty
    assert split.manifest_hash(synth_manifest) == file_sha256(synth_manifest)


def test_manifest_repeatable(synth_root, synth_manifest, tmp_path):
    p = small_params(1)
    again = split.write_manifest(*split.make_manifest(synth_root, p.seed, p.data, progress=False), tmp_path / "again.csv")
    assert again.read_bytes() == synth_manifest.read_bytes()


def test_manifest_subset(synth_root):
    p = small_params(1, {"data": {"subset": 20}})
    manifest, excluded = split.make_manifest(synth_root, p.seed, p.data, progress=False)
    assert len(manifest) == 20 and excluded.empty
    assert manifest.split.value_counts().to_dict() == {"train": 12, "val": 4, "test": 4}


def test_manifest_official_partition(tmp_path, synth_root):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    attrs = celeba.read_attributes(root)
    (root / celeba.PARTITION_FILE).write_text("".join(f"{i} {k % 3}\r\n" for k, i in enumerate(attrs.index)), newline="")
    p = small_params(1, {"data": {"official_partition": True}})
    manifest, _ = split.make_manifest(root, p.seed, p.data, progress=False)
    assert list(manifest.split) == [split.SPLITS[k % 3] for k in range(len(attrs))]


# ---- bad images ----------------------------------------------------------------------------------

def damage(root, kind) -> str:
    """Damage image 000005.jpg of `root` in one way; return its id."""
    name = "000005.jpg"
    path = root / celeba.IMAGES_DIR / name
    data = path.read_bytes()
    if kind == "corrupt":
        rng = np.random.default_rng(0)
        path.write_bytes(data[:20] + rng.integers(0, 256, len(data) - 20, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "not-an-image":
        path.write_text("this is not a JPEG\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "missing":
        path.unlink()
    return name


KINDS = ["corrupt", "truncated", "not-an-image", "empty", "missing"]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_image_stops_naming_the_file(tiny, kind):
    name = damage(tiny, kind)
    p = small_params(1)
    with pytest.raises(GfrError) as info:
        split.make_manifest(tiny, p.seed, p.data, progress=False)
    msg = str(info.value)
    assert str(celeba.image_path(tiny, name)) in msg and "on_bad_image: exclude" in msg
    if kind == "missing":
        assert "not found" in msg


def test_bad_images_excluded_and_listed(tiny, tmp_path):
    names = {}
    for kind, number in zip(KINDS[:4], (2, 5, 7, 11)):
        name = f"{number:06d}.jpg"
        path = tiny / celeba.IMAGES_DIR / name
        if kind == "corrupt":
            path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
        elif kind == "truncated":
            path.write_bytes(path.read_bytes()[:300])
        elif kind == "not-an-image":
            path.write_text("hello")
        else:
            path.unlink()
        names[name] = kind
    p = small_params(1, {"data": {"on_bad_image": "exclude"}})
    manifest, excluded = split.make_manifest(tiny, p.seed, p.data, progress=False)
    assert len(manifest) == 8 and not set(names) & set(manifest.image_id)
    assert sorted(excluded.image_id) == sorted(names)
    reasons = dict(zip(excluded.image_id, excluded.reason))
    assert "not found" in reasons["000011.jpg"]
    assert all("not a readable image" in reasons[n] for n in ("000002.jpg", "000005.jpg", "000007.jpg"))
    out = split.write_manifest(manifest, excluded, tmp_path / "split.csv")
    listed = pd.read_csv(split.excluded_path(out))
    assert split.excluded_path(out).name == "split.excluded.csv"
    assert sorted(listed.image_id) == sorted(names) and listed.reason.str.len().min() > 0
    assert not set(names) & set(split.read_manifest(out).image_id)


def test_stop_message_counts_the_others(tiny):
    for number in (3, 4, 9):
        (tiny / celeba.IMAGES_DIR / f"{number:06d}.jpg").write_text("junk")
    p = small_params(1)
    with pytest.raises(GfrError, match=r"000003\.jpg: .*\(and 2 more\)"):
        split.make_manifest(tiny, p.seed, p.data, progress=False)


# ---- reading manifests ---------------------------------------------------------------------------

def test_read_manifest_missing(tmp_path):
    with pytest.raises(GfrError, match="split manifest not found.*gfr split"):
        split.read_manifest(tmp_path / "split.csv")


@pytest.mark.parametrize(
    "text, why",
    [
        ("image_id,part,label\n000001.jpg,train,1\n", "expected columns"),
        ("image_id,split,label\n000001.jpg,training,1\n", "unknown split name 'training'"),
        ("image_id,split,label\n../000001.jpg,train,1\n", "not a plain file name"),
        ("image_id,split,label\n.ssh,test,0\n", "not a plain file name"),
    ],
)
def test_read_manifest_bad(tmp_path, text, why):
    path = tmp_path / "split.csv"
    path.write_text(text)
    with pytest.raises(GfrError, match=why) as info:
        split.read_manifest(path)
    assert str(path) in str(info.value)


# ---- the real data -------------------------------------------------------------------------------

def test_real_data_split(real_data, tmp_path):
    p = load_params(1)
    manifest, excluded = split.make_manifest(real_data, p.seed, p.data, progress=False)
    assert excluded.empty
    assert manifest.split.value_counts().to_dict() == {"train": 3000, "val": 1000, "test": 1000}
    assert int(manifest.label.sum()) == 2047 and manifest.image_id.is_unique
