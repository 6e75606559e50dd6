"""Analysis behind the report's conclusions: Holm-corrected noise verdicts, the choice rule, levers."""

import json

import numpy as np
import pandas as pd
import pytest

from gfr.study import analysis, artefacts, metrics, results


def test_holm_matches_the_hand_computation_and_keeps_nan():
    adjusted = metrics.holm([0.01, 0.04, 0.03, np.nan])
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 -> 0.03, 0.06, 0.06 (monotone)
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adjusted[3])


def test_seed_summary_has_no_spread_for_one_seed():
    mean, std = metrics.seed_summary([0.9])
    assert mean == 0.9 and np.isnan(std)
    low, high = metrics.seed_mean_ci([0.90, 0.92, 0.94])
    assert low < 0.92 < high and high - 0.92 == pytest.approx(4.302653 * 0.02 / np.sqrt(3), rel=1e-5)


def fake_run(root, name, val, test, images_per_s, correct_share=0.9, n=40, seed0=1024):
    """A saved run with given per-seed validation/test accuracies and reported-head predictions."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    seeds = [seed0 + i for i in range(len(val))]
    artefacts.seeds_table  # noqa: B018 (the file layout below is what artefacts reads)
    pd.DataFrame({"seed": seeds, "kept_epoch": 1, "val_accuracy": val, "test_accuracy": test}).to_csv(
        run_dir / artefacts.SEEDS_FILE, index=False)
    labels = np.arange(n) % 2
    right = np.arange(n) < int(correct_share * n)
    probs = np.where(right, labels, 1 - labels).astype(float)
    pd.DataFrame({"image_id": [f"{i:06d}.jpg" for i in range(n)], "label": labels,
                  **{artefacts.prob_column(s): probs for s in seeds}}).to_csv(run_dir / artefacts.TEST_PREDICTIONS_FILE,
                                                                              index=False)
    (run_dir / artefacts.MANIFEST).write_text(json.dumps({"primary_seed": seeds[0]}))
    return {"run": name, "status": "ok", "n_seeds": len(val), "val_accuracy_seed_mean": float(np.mean(val)),
            "images_per_s": images_per_s}


def test_choice_prefers_a_cheaper_run_within_the_noise(tmp_path):
    rows = [fake_run(tmp_path, "A-it1", [0.900, 0.910, 0.905], [0.9] * 3, images_per_s=10),
            fake_run(tmp_path, "B-it1", [0.899, 0.909, 0.903], [0.9] * 3, images_per_s=50),  # within noise, faster
            fake_run(tmp_path, "C-it1", [0.700, 0.701, 0.702], [0.7] * 3, images_per_s=99)]  # clearly worse
    frame = pd.DataFrame(rows)
    picked = analysis.choice(frame, tmp_path)
    assert picked["best"] == "A-it1" and picked["chosen"] == "B-it1"
    assert [t["run"] for t in picked["cheaper_within_noise"]] == ["B-it1"]
    assert "Tie rule" in picked["rule"]


def test_choice_ignores_runs_with_fewer_than_three_seeds(tmp_path):
    rows = [fake_run(tmp_path, "A-it1", [0.99], [0.99], images_per_s=10),
            fake_run(tmp_path, "B-it1", [0.90, 0.91, 0.92], [0.9] * 3, images_per_s=5)]
    assert analysis.choice(pd.DataFrame(rows), tmp_path)["chosen"] == "B-it1"
    with pytest.raises(ValueError):
        analysis.choice(pd.DataFrame(rows[:1]), tmp_path)


def test_choice_applies_the_speed_tie_rule_only_with_timings(tmp_path):
    rows = [fake_run(tmp_path, "A-it1", [0.900, 0.910, 0.905], [0.9] * 3, images_per_s=float("nan")),
            fake_run(tmp_path, "B-it1", [0.899, 0.909, 0.903], [0.9] * 3, images_per_s=50.0)]
    picked = analysis.choice(pd.DataFrame(rows), tmp_path)
    assert picked["chosen"] == "A-it1" and picked["cheaper_within_noise"] == []
    assert picked["tie_rule"].startswith("not applied: the best run A-it1 has no timing")
    rows[0]["images_per_s"] = 10.0
    picked = analysis.choice(pd.DataFrame(rows), tmp_path)
    assert picked["chosen"] == "B-it1" and picked["tie_rule"].startswith("applied")
    assert np.isfinite(picked["cheaper_within_noise"][0]["images_per_s"])


def test_noise_table_is_holm_corrected_with_a_verdict_per_pair(tmp_path):
    fake_run(tmp_path, "A-it1", [0.9] * 3, [0.90, 0.91, 0.92], 1, correct_share=0.95, n=200)
    fake_run(tmp_path, "B-it1", [0.9] * 3, [0.70, 0.71, 0.72], 1, correct_share=0.60, n=200)
    fake_run(tmp_path, "C-it1", [0.9] * 3, [0.90, 0.915, 0.925], 1, correct_share=0.95, n=200)
    table = analysis.noise_table(tmp_path, ["A-it1", "B-it1", "C-it1"])
    assert len(table) == 3
    assert (table["Welch p (Holm)"] >= table["Welch p"] - 1e-12).all()
    verdicts = dict(zip(zip(table["run A"], table["run B"]), table.verdict))
    assert verdicts[("A-it1", "B-it1")] == "larger than noise"
    assert verdicts[("A-it1", "C-it1")] == "within noise"


def test_levers_are_described_from_the_parameters():
    assert analysis.lever(1, 2) == "more epochs (20 -> 50)"
    assert "native 218x178 input instead of 128x128" in analysis.lever(2, 3)
    assert analysis.lever(3, 4).startswith("fine-tuning the top block(s)")


def test_results_mark_exactly_one_chosen_run(saved_run):
    frame = results.collect(saved_run.parent)
    assert frame.chosen.sum() == 1 and frame.loc[frame.chosen, "run"].item() == saved_run.name


BOX_CHEAPER = {"box": 0, "detect": 1}


def test_settle_takes_the_cheapest_option_within_the_noise():
    assert analysis.settle({"detect": [.977, .978, .978, .978, .977], "box": [.975, .977, .976, .976, .976]},
                           BOX_CHEAPER)["chosen"] == "detect"  # higher, and the box is outside its noise
    close = analysis.settle({"detect": [.977, .975, .979], "box": [.976, .977, .975]}, BOX_CHEAPER)
    assert close["best"] == "detect" and close["p_value"] >= analysis.ALPHA and close["chosen"] == "box"
    assert close["cheaper_within_noise"] == ["box"]
    assert analysis.settle({"detect": [.9, .91], "box": [.95, .96]}, BOX_CHEAPER)["chosen"] == "box"


def test_settle_picks_the_cheapest_of_several_options_within_the_noise():
    seeds = {"best": [.950, .952, .951], "close-fast": [.949, .953, .950], "close-faster": [.951, .948, .952],
             "far-fastest": [.90, .91, .905], "close-slower": [.950, .951, .949]}
    cost = {"best": 3, "close-fast": 2, "close-faster": 1, "far-fastest": 0, "close-slower": 4}
    settled = analysis.settle(seeds, cost)
    assert settled["best"] == "best" and settled["chosen"] == "close-faster"
    assert settled["cheaper_within_noise"] == ["close-fast", "close-faster"]  # the slower one does not count
    assert settled["p_values"]["far-fastest"] < analysis.ALPHA
    assert settled["p_value"] == settled["p_values"]["close-fast"]  # the runner-up's


def test_settle_uses_welch_over_seeds_and_mcnemar_on_paired_images():
    from scipy import stats

    a, b = [.95, .96, .955], [.94, .95, .93]
    assert analysis.settle({"a": a, "b": b}, {"a": 1, "b": 0})["p_value"] == pytest.approx(
        stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    right, other = np.array([1, 1, 1, 0, 1, 1], bool), np.array([0, 1, 0, 0, 1, 1], bool)
    assert analysis.settle({"a": right, "b": other}, {"a": 1, "b": 0}, paired=True)["p_value"] == \
        metrics.mcnemar(right, other)["p_value"]


def test_the_descriptor_looks_for_the_face_where_the_committed_measurement_says():
    from pathlib import Path

    from gfr.models import face_descriptor

    measured = json.loads((Path(__file__).resolve().parent.parent / "reports" / "face-locate.json").read_text())
    assert face_descriptor.LOCATE == measured["chosen"]
    settled = analysis.settle({k: v["val_accuracy_per_seed"] for k, v in measured["variants"].items()}, BOX_CHEAPER)
    assert (settled["best"], settled["p_value"]) == (measured["better_on_validation"], measured["welch_p"])


def test_settle_on_paired_images_takes_the_cheapest_option_within_the_noise():
    right = np.ones(400, bool)
    worse = right.copy()
    worse[:30] = False  # 30 photos wrong where the other is right: far outside the noise
    assert analysis.settle({"detect": worse, "box": right}, BOX_CHEAPER, paired=True)["chosen"] == "box"
    assert analysis.settle({"detect": right, "box": worse}, BOX_CHEAPER, paired=True)["chosen"] == "detect"
    close = right.copy()
    close[:2] = False
    verdict = analysis.settle({"detect": right, "box": close}, BOX_CHEAPER, paired=True)
    assert verdict["best"] == "detect" and verdict["p_value"] >= analysis.ALPHA and verdict["chosen"] == "box"


def test_paired_by_source_compares_the_same_photos_in_any_order():
    a = pd.DataFrame({"file": ["1", "2", "3", "4"], "source": ["x", "x", "y", "y"], "male": [1, 0, 1, 0],
                      "p_male": [0.9, 0.8, 0.7, 0.1]})  # 3 of 4 right (file 2 wrong)
    b = a.assign(p_male=[0.2, 0.1, 0.8, 0.3]).iloc[::-1]  # 3 of 4 right (file 1 wrong), listed backwards
    out = analysis.paired_by_source(a, b).set_index("source")
    assert out.index.tolist() == ["x", "y", "all"]
    assert out.loc["x", "accuracy_a"] == 0.5 and out.loc["x", "accuracy_b"] == 0.5
    assert out.loc["y", "accuracy_a"] == 1.0 and out.loc["y", "accuracy_b"] == 1.0
    assert out.loc["all", "mcnemar_p"] == metrics.mcnemar([1, 0, 1, 1], [0, 1, 1, 1])["p_value"]
