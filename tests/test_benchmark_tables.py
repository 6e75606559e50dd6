"""benchmarks/tables.py: the benchmark tables are pure functions of the result files: deterministic, '–' for a missing field, quick runs left out."""

import json

import pytest

from gfr.report.docs import load_benchmark_tables

benchmark_tables = load_benchmark_tables()
from conftest import squeezed

HARDWARE = {"cpu": "Test CPU", "cores": 2, "memory_gib": 8.0, "gpus": [], "python": "3.11.7", "keras": "3.15.1",
            "keras_backend": "tensorflow", "tensorflow": "2.21.0"}


def record(benchmark, **payload):
    return {"benchmark": benchmark, "device": "cpu", "hardware": HARDWARE, "hardware_id": "Test CPU (2 cores), tensorflow",
            "quick": False, "argv": [], "finished_utc": "2026-01-02T03:04:05Z", "runtime_s": 600.0,
            "load_average_at_end": [1.5, 1.25, 1.0], **payload}


def ratio(name, value, target, kind, verdict):
    return {"name": name, "value": value, "target": target, "target_kind": kind, "verdict": verdict}


SWEEP = record(
    "sweep",
    config={"images": 300, "split_sizes": {"train": 180, "val": 60, "test": 60}, "image_size": [128, 128], "epochs": 20,
            "backbone": "ResNet50", "weights": "real ImageNet weights", "data": "real CelebA (/data)", "heads_per_side": 1,
            "head_batch_size": 64, "feature_batch_size": 32, "repeats": 3, "loader": "gfr.data.images.iter_batches on both sides",
            "loader_workers": 2, "cpu_count": 2},
    timings={"cached": {"runs_s": [10.0, 12.0, 11.0], "median_s": 11.0, "min_s": 10.0, "max_s": 12.0},
             "original": {"runs_s": [90.0, 100.0, 95.0], "median_s": 95.0}, "order": ["cached", "original"] * 3},
    ratio_per_repeat=[9.0, 100 / 12, 95 / 11], ratio_spread={"min": 100 / 12, "max": 9.0, "median": 95 / 11},
    load_average_at_start=[2.0, 1.0, 1.0],
    detail={"cached": [{"features_s": 8.0, "heads_s": 2.0, "test_accuracy": [0.85]},
                       {"features_s": 9.0, "heads_s": 3.0, "test_accuracy": [0.86]},
                       {"features_s": 8.5, "heads_s": 2.5, "test_accuracy": [0.87]}],
            "original": [{"test_accuracy": [0.88]}] * 3},
    ratios=[ratio("original / cached wall time", 95 / 11, 10.0, ">=", "MISS")],
)
BACKENDS = record(
    "backends",
    config={"backends": ["tensorflow", "jax"], "batch_size": 16, "images_per_rep": 32, "repeats": 3, "weights": "none"},
    cells=[{"backbone": "VGG16", "size": [128, 128], "images_per_s": {"tensorflow": 20.0, "jax": 10.0},
            "speed_vs_tensorflow": {"tensorflow": 1.0, "jax": 0.5}, "runs_s": {"tensorflow": [1.6, 1.6, 1.6], "jax": [3.2, 3.0, 6.4]}}],
    ratios=[ratio("VGG16 128x128 jax / tensorflow img/s (claim: ~2x)", 0.5, 2.0, ">=", "MISS")],
)
SCALE = record(
    "scale",
    config={"backbone": "ResNet50", "batch_size": 64, "image_size": [32, 32], "order": [5000, 50000, 5000]},
    runs=[{"images": 5000, "images_per_s": 600.0, "VmHWM_mib": 1024.0, "cache_bytes": 40 * 2**20, "last_batch_s": 0.9}],
    ratios=[ratio("throughput 50000 / 5000 images", 1.02, 0.1, "within", "PASS"),
            ratio("peak RSS at 50000 images", 1.04, 2.0, "<=", "PASS")],
)
NUMERICS = record(
    "numerics", backbone="ResNet50", images=256, size=[128, 128], data="real CelebA", repeats=3,
    settings={"onednn-native": {"env": {}, "sha256": "ab" * 32, "max_abs_diff_vs_onednn_native": 0.0,
                                "max_abs_diff_vs_eigen": 3.5e-6, "identical_to_onednn_native": True,
                                "identical_to_eigen": False, "median_s": 4.0, "time_ratio_vs_onednn_native": 1.0},
              "eigen": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "sha256": "cd" * 32, "max_abs_diff_vs_onednn_native": 3.5e-6,
                        "max_abs_diff_vs_eigen": 0.0, "identical_to_onednn_native": False, "identical_to_eigen": True,
                        "median_s": 6.0, "time_ratio_vs_onednn_native": 1.5}},
)

def _times(*runs_s):
    return {"runs_s": list(runs_s), "median_s": sorted(runs_s)[len(runs_s) // 2], "min_s": min(runs_s), "max_s": max(runs_s)}


RAY = record(
    "ray",
    config={"nodes": 2, "cpus_per_node": 1, "address": "127.0.0.1:6390", "repeats": 3, "order": "alternating",
            "time": "process wall time", "sweep": {"runs": ["ResNet50-it1", "VGG16-it1"], "images": 3000, "data": "synthetic"},
            "extraction": {"images": 50000, "backbone": "ResNet50", "image_size": [32, 32], "batch_size": 64,
                           "weights": "none", "data": "synthetic"}},
    timings={"sweep": {"serial": _times(100.0, 110.0, 120.0), "ray-2": _times(60.0, 50.0, 55.0), "ray-1": _times(105.0, 115.0, 125.0)},
             "extraction": {"serial": _times(200.0, 210.0, 220.0), "ray-2": _times(100.0, 105.0, 110.0),
                            "ray-1": _times(210.0, 220.0, 230.0)},
             "sweep+extraction": {"serial": _times(300.0, 320.0, 340.0), "ray-2": _times(160.0, 155.0, 165.0),
                                  "ray-1": _times(315.0, 335.0, 355.0)}},
    identical_to_serial={"sweep": {"ray-2": True, "ray-1": True}, "extraction": {"ray-2": True, "ray-1": False}},
    serial_outputs_same_every_repeat={"sweep": True, "extraction": True},
    ratio_per_repeat=[1.05, 335 / 320, 355 / 340], ratio_per_repeat_ray2=[160 / 300, 155 / 320, 165 / 340],
    kill={"wall_s": 140.0, "identical_to_serial": True, "killed": {"pid": 123, "at_s": 40.0, "shards_done_before": 2}},
    ratios=[ratio("Ray, 1 worker / serial wall time, sweep + extraction (overhead)", 335 / 320, 1.10, "<=", "PASS"),
            ratio("Ray, 2 nodes / serial wall time, sweep + extraction", 160 / 320, 1.10, "<=", "PASS")],
)


def write(folder, files):
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content))
    return folder


@pytest.fixture
def results(tmp_path):
    return write(tmp_path / "results", {"sweep-cpu.json": SWEEP, "backends-cpu.json": BACKENDS, "scale-cpu.json": SCALE,
                                        "numerics-cpu.json": NUMERICS,
                                        "sweep-cpu-quick.json": record("sweep", ratios=[ratio("quick one", 99.0, 10.0, ">=", "PASS")])})


def test_blocks_by_name_and_deterministic(results, tmp_path):
    blocks = squeezed(benchmark_tables.readme_blocks(results))
    assert tuple(blocks) == benchmark_tables.BLOCKS
    assert blocks == squeezed(benchmark_tables.readme_blocks(results))
    # the same files written in another order (another directory listing) give the same text
    again = write(tmp_path / "again", {n: json.loads((results / n).read_text()) for n in sorted(p.name for p in results.iterdir())[::-1]})
    assert squeezed(benchmark_tables.readme_blocks(again)) == blocks
    assert squeezed(benchmark_tables.performance_block(again)) == squeezed(benchmark_tables.performance_block(results))


def test_sweep_block_shows_median_spread_and_configuration(results):
    sweep = squeezed(benchmark_tables.readme_blocks(results))["sweep"]
    assert "300 images" in sweep and "train/val/test 180/60/60" in sweep and "128x128" in sweep and "20 epochs" in sweep
    assert "3 alternating repeats" in sweep and "2 decode threads" in sweep
    assert "| cached (features once + heads) | 11.0 s | 10.0 s | 12.0 s | 10.0, 12.0, 11.0 | 0.850–0.870 |" in sweep
    assert "range 8.33–9.00x" in sweep and "**8.64x** (target >= 10.0x): **MISS**" in sweep
    assert "features 8.5 s" in sweep and "heads 2.5 s" in sweep


def test_results_and_performance_tables_leave_out_quick_runs(results):
    blocks = squeezed(benchmark_tables.readme_blocks(results))
    performance = squeezed(benchmark_tables.performance_block(results))
    for text in (blocks["results"], performance):
        assert "quick one" not in text and "99.00x" not in text
        assert "| sweep (cpu) | original / cached wall time | 8.64x | 8.33–9.00x | 3 | >= 10.0x | **MISS** |" in text
        assert "| 1 ± 10% | **PASS** |" in text and "1.04 GiB" in text and "<= 2.0 GiB" in text
    assert performance.splitlines()[0] == "| benchmark | ratio | measured | per-repeat range | repeats | target | verdict | hardware |"
    assert "4 result file(s); run time 40.0 min in all" in blocks["results"]
    assert [line.split(" | ")[0] for line in performance.splitlines()[2:]] == ["| sweep (cpu)", "| backends (cpu)",
                                                                              "| scale (cpu)", "| scale (cpu)"]


def test_backends_scale_and_numerics_blocks(results):
    blocks = squeezed(benchmark_tables.readme_blocks(results))
    assert "| VGG16 | 128x128 | 20.0 | 10.0 | 0.50x | 2.1x |" in blocks["backends"]
    assert "geometric mean 0.50x" in blocks["backends"]
    assert "| 1 | 5000 | 600.0 | – | – | – | 0.90 s | 1024 MiB | 40 MiB | – |" in blocks["scale"]
    numerics = blocks["numerics"]
    assert "| `onednn-native` | default | yes | no | 0.00e+00 | 3.50e-06 | 4.00 s | 1.00x | `abababababab` |" in numerics
    assert "| `eigen` | `TF_ENABLE_ONEDNN_OPTS=0` | no | yes | 3.50e-06 | 0.00e+00 | 6.00 s | 1.50x |" in numerics
    assert "256 images" in numerics and "3 alternating repeats" in numerics
    assert "No result file for inference" in blocks["inference"]


def test_ray_block_shows_every_side_identity_and_the_killed_worker(results, tmp_path):
    assert "No result file for ray" in squeezed(benchmark_tables.readme_blocks(results))["ray"]
    folder = write(tmp_path / "with-ray", {"ray-cpu.json": RAY, "ray-cpu-quick.json": {**RAY, "quick": True,
                                                                                        "ratios": [ratio("quick one", 9.0, 1.1, "<=", "MISS")]}})
    block = squeezed(benchmark_tables.readme_blocks(folder))["ray"]
    assert block == squeezed(benchmark_tables.scaling_block(folder))  # README.md's Scaling out shows the same figures
    assert "2 Ray nodes of 1 CPU each on 127.0.0.1:6390" in block and "50000 synthetic images" in block
    assert "| sweep | serial (one process) | 110.0 s | 100.0 s | 120.0 s | 100.0, 110.0, 120.0 | 1.00x | yes |" in block
    assert "| extraction | Ray, 2 nodes (2 workers) | 105.0 s | 100.0 s | 110.0 s | 100.0, 105.0, 110.0 | 0.50x | yes |" in block
    assert "| extraction | Ray, 1 worker (2nd node held) | 220.0 s | 210.0 s | 230.0 s | 210.0, 220.0, 230.0 | 1.05x | no |" in block
    assert "| both | Ray, 1 worker (2nd node held) | 335.0 s |" in block and "| both | Ray, 2 nodes (2 workers) | 160.0 s |" in block
    assert "Ray 1 worker / serial: 1.05, 1.05, 1.04; Ray 2 nodes / serial: 0.53, 0.48, 0.49." in block
    assert "40 s in, after 2 finished shards): the extraction finished in 140.0 s" in block
    assert "cache file identical to serial: yes" in block and "quick one" not in block
    assert "**1.05x** (target <= 1.1x): **PASS**" in block
    performance = squeezed(benchmark_tables.performance_block(folder))
    assert "| ray (cpu) | Ray, 1 worker / serial wall time, sweep + extraction (overhead) | 1.05x | 1.04–1.05x | 3 | <= 1.1x |" in performance
    bare = squeezed(benchmark_tables.ray_block([("ray-cpu.json", {"benchmark": "ray"})]))
    assert "No killed-worker run" in bare and "| both | Ray, 2 nodes (2 workers) | – | – | – | – | – | – |" in bare


def test_missing_fields_render_a_dash(tmp_path):
    """An older result file (no loader, no per-repeat ratios, one repeat) and a bare one render '–', never crash."""
    old = {k: v for k, v in SWEEP.items() if k not in ("ratio_per_repeat", "ratio_spread", "load_average_at_start")}
    old["config"] = {k: v for k, v in SWEEP["config"].items() if not k.startswith("loader") and k != "repeats"}
    folder = write(tmp_path / "results", {"sweep-cpu.json": old, "inference-cpu.json": {"benchmark": "inference"},
                                          "numerics-cpu.json": {"benchmark": "numerics", "settings": {"x": {}}},
                                          "scale-cpu.json": {"benchmark": "scale", "runs": [{}], "ratios": [{}]},
                                          "backends-cpu.json": {"benchmark": "backends", "cells": [{}]}})
    blocks = squeezed(benchmark_tables.readme_blocks(folder))
    assert "loader –, – decode threads" in blocks["sweep"] and "– alternating repeats" in blocks["sweep"]
    assert "Per-repeat ratio (each repeat's original over its cached): –; range –." in blocks["sweep"]
    assert "| sweep (cpu) | original / cached wall time | 8.64x | – | – | >= 10.0x | **MISS** |" in blocks["results"]
    assert "| end to end (from JPEG files) | – | – | – |" in blocks["inference"]
    assert "| `x` | – | – | – | – | – | – | – | – |" in blocks["numerics"]
    assert "| – | – | – | – |" in blocks["scale"] and "| – | – | **–** |" not in blocks["results"]
    assert "– / –" not in blocks["runs"] and "| `inference-cpu.json` | – |" in blocks["runs"]
    assert "run time – in all" in blocks["results"]
    squeezed(benchmark_tables.performance_block(folder))


def test_no_results_at_all(tmp_path):
    blocks = squeezed(benchmark_tables.readme_blocks(tmp_path))
    assert blocks["results"].startswith("_No benchmark results._")
    assert squeezed(benchmark_tables.performance_block(tmp_path)) == "_No benchmark results._"
    assert all(blocks[name].startswith("_No result file") for name in ("sweep", "backends", "inference", "scale", "numerics", "ray"))
