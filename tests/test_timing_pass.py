"""study/timing_pass: every finished run timed side by side (rounds, orders, spread), and results reading it."""

import json
import math
import shutil

import pytest

from conftest import edit_record, gfr_cli
from gfr.errors import GfrError
from gfr.study import artefacts, results, timing, timing_pass

TIMED_RUNS = ["VGG16-it1", "VGG16-it2"]
UNBUILDABLE = "VGG16-it3"  # names a fine-tuned weights file that is not there


@pytest.fixture(scope="module")
def timed(saved_run, synth_root, synth_manifest, tmp_path_factory) -> dict:
    """`gfr timing` (a fresh process) over two copies of the saved run and one whose fine-tuned weights are absent."""
    work = tmp_path_factory.mktemp("timing")
    runs_dir = work / "runs"
    for name in TIMED_RUNS + [UNBUILDABLE]:
        shutil.copytree(saved_run, runs_dir / name)
        edit_record(runs_dir / name, run=name)
    edit_record(runs_dir / UNBUILDABLE, finetuned_file=artefacts.FINETUNED_FILE)
    (runs_dir / "VGG16-it5").mkdir()  # not finished (no manifest): not a run to time
    proc = gfr_cli("timing", "--runs-dir", runs_dir, "--data-dir", synth_root, "--manifest", synth_manifest, cwd=work)
    assert proc.returncode == 0, proc.stderr
    out = work / timing_pass.TIMING_FILE
    return {"proc": proc, "runs_dir": runs_dir, "path": out, "result": json.loads(out.read_text())}


def test_round_orders_rotate_and_alternate_so_no_run_keeps_its_place():
    names = list("ABCDE")
    orders = [timing_pass.round_order(names, r, 3) for r in range(3)]
    assert all(sorted(o) == names for o in orders)
    assert orders == [list("ABCDE"), list("AEDCB"), list("DEABC")]  # rotated by 5 // 3, 10 // 3; odd reversed
    places = {n: [o.index(n) for o in orders] for n in names}
    assert all(len(set(p)) > 1 for p in places.values())


def test_spread_is_median_min_max_and_images_per_second():
    s = timing.spread([3.0, 1.0, 2.0, 10.0, 4.0], images=20)
    assert (s["median_s"], s["min_s"], s["max_s"]) == (3.0, 1.0, 10.0)
    assert s["images_per_s"] == pytest.approx(20 / 3) and s["images_per_s_min"] == 2.0 and s["images_per_s_max"] == 20.0


def test_the_pass_times_every_finished_run_in_alternating_rounds(timed):
    result, proc = timed["result"], timed["proc"]
    assert set(result["runs"]) == set(TIMED_RUNS + [UNBUILDABLE]) and result["rounds"] == timing_pass.MIN_ROUNDS
    assert result["images"] == 8 and len(result["round_log"]) == 3
    orders = [r["order"] for r in result["round_log"]]
    assert all(sorted(o) == TIMED_RUNS for o in orders) and orders[0] != orders[1]
    for r in result["round_log"]:
        assert len(r["load_average_before"]) == 3 and len(r["load_average_after"]) == 3
    for name in TIMED_RUNS:
        run = result["runs"][name]
        assert run["status"] == timing_pass.TIMED and len(run["seconds"]) == 3 and len(run["cpu_seconds"]) == 3
        assert run["median_s"] == sorted(run["seconds"])[1]
        assert (run["min_s"], run["max_s"]) == (min(run["seconds"]), max(run["seconds"]))
        assert run["images_per_s"] == pytest.approx(8 / run["median_s"])
        assert run["places"] == [o.index(name) + 1 for o in orders]
        assert run["predictions"]["max_abs_diff"] < 1e-5  # the rebuilt model gives the committed test predictions
    assert {"tf_intra_op", "tf_inter_op", "OMP_NUM_THREADS", "decode_workers"} <= set(result["threads"])
    assert result["hardware"]["cores"] >= 1 and result["backend"] == "tensorflow" and result["started"] <= result["finished"]
    assert "round 3/3" in proc.stderr and f"wrote {timed['path']}" in proc.stdout


def test_a_run_that_cannot_be_rebuilt_is_kept_with_its_reason(timed):
    run = timed["result"]["runs"][UNBUILDABLE]
    assert run["status"] == timing_pass.NOT_TIMED and "fine-tuned weights are not here" in run["reason"]
    assert f"{UNBUILDABLE}: not timed: " in timed["proc"].stdout


def test_results_take_inference_from_the_timing_pass(timed):
    runs_dir, result = timed["runs_dir"], timed["result"]
    frame = results.collect(runs_dir, expected=[]).set_index("run")
    for name in TIMED_RUNS:
        t = result["runs"][name]
        assert frame.loc[name, "inference_s"] == t["median_s"] and frame.loc[name, "images_per_s"] == t["images_per_s"]
        assert (frame.loc[name, "inference_min_s"], frame.loc[name, "inference_max_s"]) == (t["min_s"], t["max_s"])
        assert frame.loc[name, "inference_timing"].startswith("timing pass ")
        sweep = artefacts.load_record(runs_dir / name)["inference"]["median_s"]
        assert frame.loc[name, "sweep_inference_s"] == sweep  # kept apart, as a diagnostic
    assert math.isnan(frame.loc[UNBUILDABLE, "inference_s"])
    assert "fine-tuned weights are not here" in frame.loc[UNBUILDABLE, "inference_timing"]


def test_results_without_a_timing_pass_say_so_and_never_use_the_sweeps_figures(timed, tmp_path):
    frame = results.collect(timed["runs_dir"], expected=[], timing=tmp_path / "absent.json")
    assert frame.inference_s.isna().all() and frame.images_per_s.isna().all()
    assert frame.inference_timing.str.startswith("not timed: no timing pass (absent.json absent").all()


def test_a_timing_of_another_head_is_not_used(timed, tmp_path):
    stale = json.loads(timed["path"].read_text())
    stale["runs"][TIMED_RUNS[0]]["head_sha256"] = "0" * 64
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    frame = results.collect(timed["runs_dir"], expected=[], timing=tmp_path / "stale.json").set_index("run")
    assert math.isnan(frame.loc[TIMED_RUNS[0], "inference_s"]) and "another head" in frame.loc[TIMED_RUNS[0], "inference_timing"]
    assert not math.isnan(frame.loc[TIMED_RUNS[1], "inference_s"])


def test_fewer_than_three_rounds_or_an_unknown_run_is_refused(timed, synth_root, synth_manifest):
    with pytest.raises(GfrError, match="at least 3 rounds"):
        timing_pass.run_pass(timed["runs_dir"], synth_root, synth_manifest, rounds=2)
    with pytest.raises(GfrError, match="no run manifest at .*VGG16-it9"):
        timing_pass.run_pass(timed["runs_dir"], synth_root, synth_manifest, runs=["VGG16-it9"])

