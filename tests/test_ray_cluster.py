"""A real 2-node Ray cluster on 127.0.0.1: `gfr features --engine ray` and `gfr sweep --engine ray` give the serial bytes."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import REPO, TEST_PARAMS, gfr_cli
from gfr.files import file_sha256
from gfr.study.artefacts import MANIFEST, TEST_PREDICTIONS_FILE

pytest.importorskip("ray", reason="Ray is not installed (the optional extra: pip install -e '.[ray]')")
sys.path.insert(0, str(REPO / "benchmarks"))
from ray_localhost import LocalCluster  # noqa: E402

PORT = 6397  # not Ray's default, nor bench_ray.py's: this test's cluster is its own


@pytest.fixture(scope="module")
def two_nodes():
    """Two Ray nodes of one CPU each (`ray start --head`, then a node joining it); only their processes are stopped."""
    cluster = LocalCluster(nodes=2, cpus_per_node=1, port=PORT)
    cluster.start()
    yield cluster
    cluster.stop()
    assert cluster.pids() == []


def _sha256s(folder):
    return {p.name: file_sha256(p) for p in sorted(folder.glob("*.npy"))}


def test_sharded_features_and_a_sweep_on_two_nodes_match_serial(two_nodes, synth_root, synth_manifest, tmp_path):
    assert two_nodes.alive_nodes() == 2
    env = two_nodes.env()
    common = ["ResNet50", "1", "--data-dir", synth_root, "--manifest", synth_manifest, "--params", TEST_PARAMS,
              "--weights", "none"]
    gfr_cli("features", *common, "--cache-dir", tmp_path / "serial", check=True)
    ray = gfr_cli("features", *common, "--cache-dir", tmp_path / "ray", "--engine", "ray", "--shard-rows", "8",
                  env=env, check=True)
    assert "cache miss" in ray.stdout  # computed as shards on the cluster, not read from a cache
    assert _sha256s(tmp_path / "ray") == _sha256s(tmp_path / "serial") != {}

    # the same run through the sweep engine on the cluster (cache prefilled there) and serially
    records = {}
    for engine in ("serial", "ray"):
        out = tmp_path / f"sweep-{engine}"
        parameters = {"data_dir": synth_root, "manifest": synth_manifest, "runs_dir": out / "runs",
                      "cache_dir": out / "cache", "params_extra": json.dumps([str(TEST_PARAMS)]), "weights": "none"}
        args = [arg for name, value in parameters.items() for arg in ("-p", name, value)]
        gfr_cli("sweep", out / "ResNet50-it1.ipynb", "--engine", engine, *args, env=env if engine == "ray" else None,
                timeout=600, check=True)
        run_dir = out / "runs" / "ResNet50-it1"
        records[engine] = (json.loads((run_dir / MANIFEST).read_text())["head_sha256"],
                           file_sha256(run_dir / TEST_PREDICTIONS_FILE), _sha256s(out / "cache"))
    assert records["ray"] == records["serial"]
