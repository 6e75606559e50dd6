"""The train/validation/test split, written once as a CSV manifest that every run reads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from gfr import files
from gfr.data import celeba
from gfr.errors import GfrError
from gfr.files import file_sha256
from gfr.data.images import check_images
from gfr.params import DataParams

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ["image_id", "split", "label"]


def assign_splits(ids: pd.Index, seed: int, data: DataParams, partition: pd.Series | None = None) -> pd.Series:
    """Split name per image id: the official partition if asked for, else a seeded random split."""
    if data.subset is not None:
        if data.subset > len(ids):
            raise GfrError(f"data.subset={data.subset} exceeds the {len(ids)} images listed")
        rng = np.random.default_rng(seed)
        ids = pd.Index(np.sort(rng.choice(np.asarray(ids), size=data.subset, replace=False)))
    if data.official_partition:
        if partition is None:
            raise GfrError(f"data.official_partition is true but {celeba.PARTITION_FILE} is absent")
        missing = ids.difference(partition.index)
        if len(missing):
            raise GfrError(f"{celeba.PARTITION_FILE}: no partition for {missing[0]!r} ({len(missing)} ids)")
        return partition.loc[ids].map(dict(enumerate(SPLITS))).rename("split")
    n_test = round(len(ids) * data.test_fraction)
    n_val = round(len(ids) * data.val_fraction)
    if min(n_test, n_val, len(ids) - n_test - n_val) < 1:
        raise GfrError(f"split of {len(ids)} images leaves an empty part (test={n_test}, val={n_val})")
    rest, test = train_test_split(np.asarray(ids), test_size=n_test, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, random_state=seed)
    out = pd.concat([pd.Series("train", index=train), pd.Series("val", index=val), pd.Series("test", index=test)])
    return out.loc[ids].rename("split")


def make_manifest(root: str | os.PathLike, seed: int, data: DataParams, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The split manifest (image_id, split, label 1=male) and the excluded files (image_id, reason)."""
    root = celeba.data_dir(root)
    attrs = celeba.read_attributes(root)
    splits = assign_splits(attrs.index, seed, data, celeba.read_partition(root))
    problems = check_images([celeba.image_path(root, i) for i in splits.index], progress=progress)
    excluded = pd.DataFrame(
        [(Path(p).name, why) for p, why in problems], columns=["image_id", "reason"]
    )
    if len(excluded) and data.on_bad_image == "stop":
        first = excluded.iloc[0]
        more = f" (and {len(excluded) - 1} more)" if len(excluded) > 1 else ""
        raise GfrError(
            f"{celeba.image_path(root, first.image_id)}: {first.reason}{more}; "
            "fix the data or set data.on_bad_image: exclude"
        )
    keep = splits.drop(index=excluded.image_id)
    manifest = pd.DataFrame(
        {
            "image_id": keep.index,
            "split": keep.values,
            "label": (attrs.loc[keep.index, celeba.LABEL].values == 1).astype(int),
        }
    )
    return manifest, excluded


def write_manifest(manifest: pd.DataFrame, excluded: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the manifest CSV (and `<stem>.excluded.csv` beside it) atomically; return its path."""
    path = Path(path)
    for target, table in ((excluded_path(path), excluded), (path, manifest[MANIFEST_COLUMNS])):
        files.write_text_if_changed(target, table.to_csv(index=False))  # unchanged: mtime kept, nothing reruns
    return path


def excluded_path(manifest_path: str | os.PathLike) -> Path:
    """Where the list of excluded files of a manifest lies."""
    manifest_path = Path(manifest_path)
    return manifest_path.with_name(manifest_path.stem + ".excluded.csv")


def read_excluded(manifest_path: str | os.PathLike) -> pd.DataFrame:
    """The files left out of a manifest (image_id, reason); empty if none was."""
    path = excluded_path(manifest_path)
    if not path.is_file():
        return pd.DataFrame(columns=["image_id", "reason"])
    return pd.read_csv(path, dtype={"image_id": str, "reason": str})


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check a split manifest."""
    path = Path(path)
    if not path.is_file():
        raise GfrError(f"split manifest not found: {path} (run `python -m gfr split` first)")
    frame = pd.read_csv(path, dtype={"image_id": str, "split": str, "label": int})
    if list(frame.columns) != MANIFEST_COLUMNS:
        raise GfrError(f"{path}: expected columns {MANIFEST_COLUMNS}, got {list(frame.columns)}")
    bad = set(frame.split) - set(SPLITS)
    if bad:
        raise GfrError(f"{path}: unknown split name {sorted(bad)[0]!r}")
    celeba.check_plain_names(frame.image_id, str(path))
    return frame


def manifest_hash(path: str | os.PathLike) -> str:
    """The content hash that identifies a split."""
    return file_sha256(path)
