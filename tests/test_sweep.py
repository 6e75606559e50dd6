"""The sweep engine: run notebooks executed on a local Ray give the serial path's results; a failed run is kept."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import TEST_PARAMS
from gfr.errors import GfrError
from gfr.pipeline import sweep
from gfr.study import registry
from gfr.study.artefacts import FAILED_SUFFIX, MANIFEST, TEST_PREDICTIONS_FILE


def test_jobs_come_from_the_registry_and_the_queue(tmp_path):
    job = sweep.job_for("reports/runs/ResNet50-it4.ipynb", {"weights": "none"})
    assert job.parameters == {**registry.notebook_parameters(job.run), "weights": "none"}
    assert job.finetunes and not sweep.job_for("VGG16-it1").finetunes
    assert sweep.job_for("VGG16-it1").target.name == "VGG16-it1.ipynb"
    with pytest.raises(GfrError, match="not a run name"):
        sweep.job_for("reports/runs/nonsense.ipynb")
    queue = tmp_path / "sweep.queue"
    queue.write_text("reports/runs/VGG16-it1.ipynb\nreports/runs/VGG16-it2.ipynb\n\nreports/runs/VGG16-it1.ipynb\n")
    assert sweep.read_queue(queue) == ["reports/runs/VGG16-it1.ipynb", "reports/runs/VGG16-it2.ipynb"]
    assert sweep.read_queue(tmp_path / "absent") == []
    with pytest.raises(GfrError, match="unknown engine"):
        sweep.run_sweep([], "dask")


def _parameters(synth_root, synth_manifest, work, **extra):
    return {"data_dir": str(synth_root), "manifest": str(synth_manifest), "runs_dir": str(work / "runs"),
            "cache_dir": str(work / "cache"), "params_extra": [str(TEST_PARAMS)], "weights": "none", **extra}


def test_ray_sweep_matches_serial_and_keeps_a_failed_run(ray_local, synth_root, synth_manifest, tmp_path):
    serial_dir, ray_dir = tmp_path / "serial", tmp_path / "ray"
    ok = "ResNet50-it1"
    [serial] = sweep.run_sweep([sweep.job_for(serial_dir / f"{ok}.ipynb",
                                                _parameters(synth_root, synth_manifest, serial_dir))], "serial")
    assert serial.ok, serial.error
    jobs = [sweep.job_for(ray_dir / f"{ok}.ipynb", _parameters(synth_root, synth_manifest, ray_dir)),
            sweep.job_for(ray_dir / "VGG16-it1.ipynb",
                           _parameters(synth_root, synth_manifest, ray_dir, weights=str(tmp_path / "absent.h5")))]
    outcomes = sweep.run_sweep(jobs, "ray", progress=False)
    assert [o.ok for o in outcomes] == [True, False]
    assert (ray_dir / f"{ok}.ipynb").is_file() and not (ray_dir / "VGG16-it1.ipynb").exists()
    assert (ray_dir / f"VGG16-it1{FAILED_SUFFIX}").is_file()  # the partial notebook is kept for inspection
    assert "absent.h5" in outcomes[1].error and "1 failed" in sweep.summary_text(outcomes)

    # the Ray path prefilled the cache by sharded extraction; the run read it, and its numbers are the serial ones
    records = [json.loads((d / "runs" / ok / MANIFEST).read_text()) for d in (serial_dir, ray_dir)]
    assert records[0]["feature_cache"]["cache"] == "miss" and records[1]["feature_cache"]["cache"] == "hit"
    assert records[0]["head_sha256"] == records[1]["head_sha256"]
    assert records[0]["test"] == records[1]["test"]
    predictions = [pd.read_csv(d / "runs" / ok / TEST_PREDICTIONS_FILE) for d in (serial_dir, ray_dir)]
    pd.testing.assert_frame_equal(*predictions)
