"""Sharded feature extraction on a local Ray: the same cache file, byte for byte, as the serial extraction; resume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gfr.data import split
from gfr.files import file_sha256
from gfr.models import backbones, feature_cache
from gfr.pipeline import sharded_extraction
from gfr.pipeline.sharded_extraction import shard_bounds

SIZE = (48, 48)
BATCH = 8


def test_shards_are_whole_batches_and_cover_every_row():
    for rows, batch, workers in [(40, 8, 2), (41, 8, 2), (50_000, 64, 2), (7, 8, 4), (1000, 32, 64)]:
        bounds = shard_bounds(rows, batch, 2048 * 4, workers)
        assert bounds[0][0] == 0 and bounds[-1][1] == rows
        assert all(b == c for (_, b), (c, _) in zip(bounds, bounds[1:]))  # contiguous, no overlap
        assert all((b - a) % batch == 0 for a, b in bounds[:-1])  # every batch is the serial extraction's
    assert len(shard_bounds(50_000, 64, 2048 * 4, 2)) == 8  # four shards per worker
    assert shard_bounds(40, 8, 4, 2, shard_rows=12) == [(0, 8), (8, 16), (16, 24), (24, 32), (32, 40)]
    big_rows = shard_bounds(10_000, 32, 14 * 12 * 1024 * 2, 1)  # fine-tuning boundary activations: bytes cap
    assert max(b - a for a, b in big_rows) * 14 * 12 * 1024 * 2 <= sharded_extraction.SHARD_BYTES


def _extract(fn, frame, root, manifest_sha, directory, **options):
    return fn("ResNet50", list(frame.image_id), root, SIZE, False, backbones.RANDOM, manifest_sha, batch_size=BATCH,
              directory=directory, init_seed=1024, progress=False, **options)


def test_sharded_equals_serial_byte_for_byte_and_resumes(ray_local, synth_root, synth_manifest, tmp_path):
    frame = split.read_manifest(synth_manifest)
    sha = split.manifest_hash(synth_manifest)
    serial, info = _extract(feature_cache.extract, frame, synth_root, sha, tmp_path / "serial")
    assert info["cache"] == "miss"
    sharded, sinfo = _extract(sharded_extraction.extract, frame, synth_root, sha, tmp_path / "sharded", shard_rows=BATCH)
    assert sinfo["shards"] == 5 and sinfo["shards_reused"] == 0
    assert file_sha256(info["path"]) == file_sha256(sinfo["path"])  # byte-identical cache files
    assert os.path.basename(info["path"]) == os.path.basename(sinfo["path"])  # same content-hashed entry
    assert not sharded_extraction.shard_folder(Path(sinfo["path"])).exists()

    # a run reads the sharded entry as a cache hit of the serial extraction
    _, hit = _extract(feature_cache.extract, frame, synth_root, sha, tmp_path / "sharded")
    assert hit["cache"] == "hit"

    # a crash after three of five shards: the rerun computes only the other two, and the bytes are the same
    _, first = _extract(sharded_extraction.extract, frame, synth_root, sha, tmp_path / "resume", shard_rows=BATCH)
    npy = Path(first["path"])
    key = feature_cache.entry_key("ResNet50", SIZE, False, backbones.RANDOM, sha, 1024)
    folder = sharded_extraction.shard_folder(npy)
    spec = feature_cache.EntrySpec("ResNet50", SIZE, False, backbones.RANDOM, 1024, batch_size=BATCH)
    paths = [str(synth_root / "img_align_celeba" / i) for i in frame.image_id]
    for a, b in [(0, 8), (8, 16), (32, 40)]:
        sharded_extraction.compute_shard(spec, key, paths[a:b], a, b, str(folder))
    npy.unlink()
    resumed, rinfo = _extract(sharded_extraction.extract, frame, synth_root, sha, tmp_path / "resume", shard_rows=BATCH)
    assert (rinfo["shards"], rinfo["shards_reused"]) == (5, 3)
    assert file_sha256(rinfo["path"]) == file_sha256(info["path"])
