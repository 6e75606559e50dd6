"""Feature extraction cut into shards of whole batches, each a Ray task, assembled into the same feature-cache entry.

For big datasets (the full CelebA) on several workers or GPUs. The manifest's rows are cut into shards
that are whole multiples of the batch size, so every forward pass sees exactly the batch the serial
extraction (`feature_cache.extract`) gives it, and the assembled file is byte-identical to the serial one
on the same machine. Each shard is computed by a Ray task into its own file (memory-mapped, written
atomically, with a SHA-256 sidecar) in `<entry>.shards/` beside the cache entry; a worker's memory is
bounded by its model and a few batches, whatever the shard's size. Finished shards are kept until the
entry is assembled, so a rerun after a crash computes only the missing ones; Ray retries a task whose
worker died. Runs then read the entry exactly as they read a serially computed one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from gfr.data import celeba
from gfr.errors import GfrError
from gfr.models import backbones, feature_cache
from gfr.pipeline import cluster
from gfr.progress import meter as progress_meter

SHARD_BYTES = 256 << 20  # a shard file holds at most this much (a few batches more for tiny rows)
SHARDS_PER_WORKER = 4  # enough shards to balance the workers and to lose little work to a crash
TASK_RETRIES = 3  # Ray reruns a shard whose worker died this many times


def shard_bounds(rows: int, batch_size: int, row_bytes: int, workers: int, shard_rows: int | None = None,
                 max_bytes: int = SHARD_BYTES) -> list[tuple[int, int]]:
    """(start, stop) row ranges of the shards: whole batches each, about SHARDS_PER_WORKER per worker,
    at most `max_bytes` each; `shard_rows` (rounded down to whole batches, at least one) overrides."""
    batches = math.ceil(rows / batch_size)
    if shard_rows:
        per_shard = max(1, shard_rows // batch_size)
    else:
        per_shard = math.ceil(batches / max(1, workers * SHARDS_PER_WORKER))
        per_shard = max(1, min(per_shard, max_bytes // max(1, batch_size * row_bytes)))
    size = per_shard * batch_size
    return [(start, min(start + size, rows)) for start in range(0, rows, size)]


def shard_folder(npy: Path) -> Path:
    """Where the shards of the cache entry `npy` are kept until it is assembled."""
    return npy.with_name(f"{npy.stem}.shards")


def shard_paths(folder: Path, start: int, stop: int) -> tuple[Path, Path]:
    """(.npy, sidecar .json) of the shard holding rows start:stop."""
    stem = f"rows-{start:09d}-{stop:09d}"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def shard_key(key: dict, start: int, stop: int) -> dict:
    """A shard's sidecar key: its entry's key and its rows."""
    return {**key, "shard_rows": [start, stop]}


_EXTRACTORS: dict = {}  # one model per worker process, reused by every shard that process computes


def _extractor(spec: feature_cache.EntrySpec):
    ident = (spec.backbone, spec.image_size, spec.native, spec.weights, spec.layer, spec.init_seed)
    if ident not in _EXTRACTORS:
        _EXTRACTORS.clear()
        _EXTRACTORS[ident] = feature_cache.build_entry_extractor(spec)
    return _EXTRACTORS[ident]


def compute_shard(spec: feature_cache.EntrySpec, key: dict, paths: list[str], start: int, stop: int, folder: str) -> str:
    """Compute rows start:stop of an entry (`paths` are theirs) into their shard file; return its SHA-256.

    Runs in a Ray worker; refuses to compute under another Keras backend than the entry's key names."""
    import keras

    if keras.backend.backend() != key["keras_backend"]:
        raise GfrError(f"worker on Keras backend {keras.backend.backend()!r}, the cache entry is for "
                       f"{key['keras_backend']!r}: set KERAS_BACKEND alike on every node")
    extractor, row_shape = _extractor(spec)
    backbone = backbones.get(spec.backbone)
    npy, meta = shard_paths(Path(folder), start, stop)
    return feature_cache.write_entry(
        npy, meta, shard_key(key, start, stop), (stop - start, *row_shape), spec.dtype,
        lambda out: feature_cache.compute(extractor, backbone, paths, spec.image_size, spec.batch_size, out,
                                          progress=False, flip=spec.flip, augment=spec.augment, first_row=start))


def row_shape_of(spec: feature_cache.EntrySpec) -> tuple[int, ...]:
    """The shape of one row of the entry (pooled features; or the layer's output, from the architecture alone)."""
    if not spec.layer:
        return (backbones.get(spec.backbone).feature_dim,)
    return feature_cache.build_entry_extractor(dataclasses.replace(spec, weights=backbones.RANDOM, init_seed=0))[1]


def _finished(folder: Path, key: dict, start: int, stop: int) -> bool:
    npy, meta = shard_paths(folder, start, stop)
    return feature_cache.load_entry(npy, meta, shard_key(key, start, stop), stop - start) is not None


def _copy_shards(folder: Path, bounds: list[tuple[int, int]], out: np.ndarray) -> None:
    for start, stop in bounds:
        out[start:stop] = np.load(shard_paths(folder, start, stop)[0], mmap_mode="r", allow_pickle=False)
        feature_cache.release_pages(out)


def _workers(cpus_per_task: float) -> int:
    import ray

    resources = ray.cluster_resources()
    if resources.get("GPU", 0) > 0:
        return int(resources["GPU"])
    return max(1, int(resources.get("CPU", 1) // max(cpus_per_task, 1e-9)))


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
    shard_rows: int | None = None,
    gpus_per_task: float = 1.0,
    cpus_per_task: float = 1.0,
    augment: feature_cache.Augment | None = None,
) -> tuple[np.ndarray, dict]:
    """`feature_cache.extract`'s result (same entry, same bytes), computed as shards on the Ray cluster.

    The arguments are `feature_cache.extract`'s; each shard task asks for `gpus_per_task` GPU(s) where the
    cluster has GPUs, else `cpus_per_task` CPU(s). Returns the memory-mapped array and a dict saying
    whether it was a cache hit, how many shards there were and how many were reused from an earlier try.
    """
    spec = feature_cache.EntrySpec(backbone_name, image_size, native, weights, init_seed, layer, flip, dtype, batch_size,
                                   augment)
    key, npy, meta, cached = feature_cache.find_entry(spec, image_ids, manifest_sha, directory)
    if cached is not None:
        return cached, {"cache": "hit", "path": str(npy)}
    row_shape = row_shape_of(spec)
    row_bytes = int(np.prod(row_shape)) * np.dtype(dtype).itemsize
    feature_cache.check_disk(npy.parent, 2 * len(image_ids) * row_bytes)  # the shards, then the assembled entry
    ray = cluster.connect()
    bounds = shard_bounds(len(image_ids), batch_size, row_bytes, _workers(cpus_per_task), shard_rows)
    folder = shard_folder(npy)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(a, b) for a, b in bounds if not _finished(folder, key, a, b)]
    paths = [str(celeba.image_path(data_root, i)) for i in image_ids]
    task = ray.remote(compute_shard).options(max_retries=TASK_RETRIES,
                                             **cluster.task_resources(gpus_per_task, cpus_per_task))
    pending = {task.remote(spec, key, paths[a:b], a, b, str(folder)): (a, b) for a, b in todo}
    meter = progress_meter(len(image_ids), f"{spec.backbone} features ({len(bounds)} shards on Ray)", enabled=progress)
    meter.update(len(image_ids) - sum(b - a for a, b in todo))
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            a, b = pending.pop(done[0])
            ray.get(done[0])
            meter.update(b - a)
    except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError) as exc:
        for ref in pending:
            ray.cancel(ref)
        raise GfrError(f"shard rows {a}:{b} of {npy.name} failed: {str(exc).splitlines()[-1]} "
                       f"(finished shards are kept in {folder}; rerun to resume)") from None
    finally:
        meter.close()
    feature_cache.write_entry(npy, meta, key, (len(image_ids), *row_shape), dtype,
                              lambda out: _copy_shards(folder, bounds, out))
    shutil.rmtree(folder, ignore_errors=True)
    if progress:
        print(f"{npy.name}: {len(bounds)} shards ({len(bounds) - len(todo)} reused from an earlier try)", file=sys.stderr)
    return (np.load(npy, mmap_mode="r", allow_pickle=False),
            {"cache": "miss", "path": str(npy), "shards": len(bounds), "shards_reused": len(bounds) - len(todo)})
