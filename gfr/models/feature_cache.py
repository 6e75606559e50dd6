"""Backbone features computed once and cached on disk under a content-hash key, checked on load."""

from __future__ import annotations

import json
import mmap
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gfr import files
from gfr.models import backbones
from gfr.data import augment as augmentation
from gfr.data import celeba, faces
from gfr.errors import GfrError
from gfr.files import file_sha256, object_sha256
from gfr.data.images import iter_batches
from gfr.params import AugmentParams
from gfr.progress import meter as progress_meter

CACHE_ENV = "GFR_CACHE_DIR"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Augment:
    """Which augmented copy of the images an entry holds: the parameters, the seed and the copy number."""

    params: AugmentParams
    seed: int
    copy: int


@dataclass(frozen=True)
class EntrySpec:
    """One feature-cache entry but its images: the model computing its rows (backbone, input, weights, `layer`'s
    activations or pooled features), mirroring, stored type, augmented copy, and the batch it computes them in."""

    backbone: str
    image_size: tuple[int, int]
    native: bool
    weights: backbones.Weights
    init_seed: int | None = None
    layer: str | None = None
    flip: bool = False
    dtype: str = "float32"
    batch_size: int = 32
    augment: Augment | None = None

    def __post_init__(self):
        object.__setattr__(self, "image_size", tuple(self.image_size))  # hashable, whatever the params gave

    def key(self, manifest_sha: str, image_ids) -> dict:
        """The entry's cache key (`entry_key`) for the images `image_ids` of the split manifest `manifest_sha`."""
        return entry_key(self.backbone, self.image_size, self.native, self.weights, manifest_sha, self.init_seed,
                         self.layer, self.flip, self.dtype, self.augment, image_ids)


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The feature-cache folder: `path`, else $GFR_CACHE_DIR, else ~/.cache/gfr/features."""
    return Path(path or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gfr" / "features").expanduser()


def cache_key(backbone: str, image_size, native: bool, weights: backbones.Weights, manifest_sha: str, init_seed: int) -> dict:
    """Everything the cached features depend on."""
    import keras

    key = {
        "format": FORMAT_VERSION,
        "backbone": backbone,
        "image_size": list(image_size),
        "native_input": native,
        "weights_sha256": weights.sha256,
        "manifest_sha256": manifest_sha,
        "keras_backend": keras.backend.backend(),
    }
    if weights.is_random:
        key["init_seed"] = init_seed
    if backbones.get(backbone).kind == "dlib":  # where the descriptor looks for the face
        from gfr.models import face_descriptor

        key["face"] = face_descriptor.settings()
    return key


def entry_key(backbone_name: str, image_size, native: bool, weights: backbones.Weights, manifest_sha: str,
              init_seed: int | None, layer: str | None = None, flip: bool = False, dtype: str = "float32",
              augment: Augment | None = None, image_ids=()) -> dict:
    """The key of one cache entry: `cache_key`, plus the layer, mirroring and stored type when not plain pooled,
    plus the augmented copy and which images (`image_ids`) it holds when augmented."""
    if weights.is_random and init_seed is None:
        raise TypeError("random weights (weights=none) need an explicit init_seed: the features depend on it")
    key = cache_key(backbones.get(backbone_name).name, image_size, native, weights, manifest_sha, init_seed)
    if layer or flip or dtype != "float32":
        key.update(layer=layer, flip=flip, dtype=dtype)
    if augment is not None:
        key["augment"] = {**augmentation.cache_spec(augment.params, augment.seed, augment.copy),
                          "images_sha256": object_sha256(list(image_ids))}
    return key


def build_entry_extractor(spec: EntrySpec) -> tuple[object, tuple[int, ...]]:
    """The model that computes an entry's rows (pooled features, or `layer`'s activations) and one row's shape."""
    backbone = backbones.get(spec.backbone)
    if spec.layer:
        extractor = backbones.build_truncated(backbone, spec.image_size, spec.native, spec.weights, spec.layer,
                                              spec.init_seed)
        return extractor, tuple(extractor.compute_output_shape((1, *spec.image_size, 3))[1:])
    return (backbones.build_extractor(backbone, spec.image_size, spec.native, spec.weights, spec.init_seed),
            (backbone.feature_dim,))


def write_entry(npy: Path, meta: Path, key: dict, shape: tuple[int, ...], dtype: str,
                fill: Callable[[np.ndarray], None]) -> str:
    """Create a cache file atomically: `fill` writes every row of the memory-mapped array; hash it, write its sidecar.

    Returns the file's SHA-256."""
    with files.atomic_path(npy, suffix=".npy") as tmp:
        out = create_npy(tmp, shape, dtype)
        fill(out)
        _mapping_of(out).flush()
        del out  # the last reference to the mapping: it closes
        digest = file_sha256(tmp)
    files.write_json(meta, {"key": key, "sha256": digest, "rows": shape[0]})
    return digest


def entry_paths(directory: Path, key: dict) -> tuple[Path, Path]:
    """(features .npy, sidecar .json) of a cache entry."""
    h, w = key["image_size"]
    stem = f"{key['backbone']}-{h}x{w}-{object_sha256(key)[:16]}"
    return directory / f"{stem}.npy", directory / f"{stem}.json"


def load_entry(npy: Path, meta: Path, key: dict, rows: int) -> np.ndarray | None:
    """The cached array (memory-mapped) if present and intact, else None (a corrupt one is reported)."""
    if not (npy.is_file() and meta.is_file()):
        return None
    try:
        sidecar = json.loads(meta.read_text())
        ok = sidecar.get("key") == key and sidecar.get("sha256") == file_sha256(npy)
        array = np.load(npy, mmap_mode="r", allow_pickle=False) if ok else None
    except (ValueError, OSError, json.JSONDecodeError):
        ok, array = False, None
    if not ok or array.shape[0] != rows:
        print(f"feature cache {npy} is corrupt or stale (content hash or key differs); rebuilding", file=sys.stderr)
        return None
    return array


def find_entry(spec: EntrySpec, image_ids, manifest_sha: str, directory: str | os.PathLike | None = None
               ) -> tuple[dict, Path, Path, np.ndarray | None]:
    """An entry's key, its .npy and sidecar paths, and its array when cached and intact; else None, with the
    temporaries a killed run left removed (the caller computes it)."""
    key = spec.key(manifest_sha, image_ids)
    npy, meta = entry_paths(cache_dir(directory), key)
    cached = load_entry(npy, meta, key, len(image_ids))
    if cached is None:
        remove_stale_temporaries(npy)
    return key, npy, meta, cached


def remove_stale_temporaries(npy: Path, older_than_s: float = 3600.0) -> None:
    """Delete temporaries of this entry left by a killed run (untouched for an hour, so not being written)."""
    import time

    for tmp in npy.parent.glob(f".{npy.name}.*.tmp.npy"):
        if time.time() - tmp.stat().st_mtime > older_than_s:
            tmp.unlink(missing_ok=True)


def check_disk(directory: Path, nbytes: int) -> None:
    """Stop early, with a clear message, if the cache folder's disk cannot hold `nbytes` more."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < nbytes * 1.1 + (64 << 20):
        raise GfrError(
            f"{directory}: {free / 2**30:.2f} GiB free, the feature cache needs about {nbytes / 2**30:.2f} GiB; "
            f"free space or set {CACHE_ENV} to another disk"
        )


def create_npy(path: str | os.PathLike, shape: tuple[int, ...], dtype) -> np.memmap:
    """A new .npy file at `path` (zeros), returned as a writable array memory-mapped over its data (numpy's
    `open_memmap`: the bytes `np.save` writes for a C-ordered array of this shape and dtype, so once filled it is an
    ordinary .npy file). Its `mmap.mmap` (reached through `.base`) is what `release_pages` flushes and releases;
    it closes when the last reference to the array goes."""
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=tuple(int(n) for n in shape))


def _mapping_of(array: np.ndarray) -> mmap.mmap | None:
    """The `mmap.mmap` an array (or a view of it) is backed by, found through the public `.base` chain."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


def compute(extractor, backbone: backbones.Backbone, paths: list, image_size, batch_size: int, out: np.ndarray,
            progress: bool, flip: bool = False, on_batch: Callable[[int], None] | None = None,
            augment: Augment | None = None, first_row: int = 0) -> None:
    """Fill `out` (rows aligned with `paths`) with the extractor's outputs, batch by batch (mirrored if `flip`;
    augmented copy `augment` of the images, made at CelebA's size before any resize, if given).

    `on_batch`, if given, is called after each batch is written with the number of rows written so far.
    `first_row`: the row of `paths[0]` in the whole entry (a shard's start), which an augmented image depends on.
    """
    what = " (mirrored)" if flip else f" (augmented copy {augment.copy})" if augment else ""
    meter = progress_meter(len(paths), f"{backbone.name} features{what}", enabled=progress)
    row = released = 0
    row_bytes = out[:1].nbytes
    for batch in iter_batches(paths, faces.CELEBA_SIZE if augment else image_size, batch_size):
        if flip:
            batch = batch[:, :, ::-1]
        if augment:
            batch = augmentation.augment_batch(batch, first_row + row, augment.params, augment.seed, augment.copy)
            batch = np.stack([faces.resize(img, image_size) for img in batch])
        feats = np.asarray(extractor.predict_on_batch(backbones.preprocess(backbone, batch)))
        out[row:row + len(batch)] = feats
        row += len(batch)
        meter.update(len(batch))
        if (row * row_bytes) - released >= RELEASE_BYTES:
            released = row * row_bytes
            release_pages(out)
        if on_batch is not None:
            on_batch(row)
    meter.close()


RELEASE_BYTES = 64 << 20  # written memory-mapped cache pages are handed back every 64 MiB


def release_pages(out: np.ndarray) -> None:
    """Write a memory-mapped `out` to its file and drop its pages from this process's resident memory.

    Without this, every written page of the cache file stays resident, so peak memory grew with the
    dataset (about 1.6 GiB more for ResNet50 on the full CelebA). The data stays in the file (and the
    OS page cache); a later read faults it back in. An array not backed by an `mmap.mmap` (from
    `create_npy` or `np.memmap`) is left alone.
    """
    mapping = _mapping_of(out)
    if mapping is None:
        return
    try:
        mapping.flush()
        if hasattr(mmap, "MADV_DONTNEED"):
            mapping.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):
        pass


def extract(
    backbone_name: str,
    image_ids: list[str],
    data_root: str | os.PathLike,
    image_size,
    native: bool,
    weights: backbones.Weights,
    manifest_sha: str,
    batch_size: int = 32,
    directory: str | os.PathLike | None = None,
    init_seed: int | None = None,
    progress: bool = True,
    layer: str | None = None,
    flip: bool = False,
    dtype: str = "float32",
    on_batch: Callable[[int], None] | None = None,
    augment: Augment | None = None,
) -> tuple[np.ndarray, dict]:
    """Pooled features of `image_ids` (in order) from the cache, computing and caching them if needed.

    `init_seed` draws random (weights=none) backbones and is required for them (None only for file
    weights). With `layer`, the cached array is that layer's (spatial) output instead: the activations
    at a fine-tuning freeze boundary. `flip` mirrors the images first; `dtype` is the stored type.
    `on_batch` is passed to `compute` (not called on a cache hit). `augment`: the entry holds that augmented
    copy of the images (`gfr.data.augment`; its key also names the images, usually the training split's).
    Returns the (read-only, memory-mapped) array and a dict saying whether it was a cache hit.
    """
    spec = EntrySpec(backbone_name, image_size, native, weights, init_seed, layer, flip, dtype, batch_size, augment)
    key, npy, meta, cached = find_entry(spec, image_ids, manifest_sha, directory)
    if cached is not None:
        return cached, {"cache": "hit", "path": str(npy)}
    extractor, row_shape = build_entry_extractor(spec)
    check_disk(npy.parent, len(image_ids) * int(np.prod(row_shape)) * np.dtype(dtype).itemsize)
    paths = [celeba.image_path(data_root, i) for i in image_ids]
    backbone = backbones.get(spec.backbone)
    write_entry(npy, meta, key, (len(paths), *row_shape), dtype,
                lambda out: compute(extractor, backbone, paths, image_size, batch_size, out, progress, flip, on_batch,
                                    augment))
    return np.load(npy, mmap_mode="r", allow_pickle=False), {"cache": "miss", "path": str(npy)}
