"""The report's first page: intervals, verdicts, the original beside ours, reproducibility."""

import numpy as np
import pandas as pd

from gfr.report import glance
from gfr.study import analysis, metrics


def test_target_and_better_verdicts_separate_point_estimates_from_significance():
    assert analysis.target_verdict(0.983, 0.974, 0.985) == "missed"
    assert analysis.target_verdict(0.99, 0.986, 0.985) == "met"
    assert analysis.target_verdict(0.99, 0.97, 0.985).startswith("met as a point estimate only")
    assert analysis.better_verdict(0.98, 0.97, 0.01) == "better, significant"
    assert analysis.better_verdict(0.98, 0.97, 0.2).startswith("better as a point estimate only")
    assert analysis.better_verdict(0.97, 0.97, 0.01) == "not better"


def test_test_sampling_interval_is_wider_than_the_seed_spread_and_reproducible():
    rng = np.random.default_rng(1)
    right = rng.random(1000) < 0.9  # one image's difficulty shared by every seed: seeds agree, images vary
    correct = np.column_stack([right ^ (rng.random(1000) < 0.01) for _ in range(5)])
    low, high = metrics.test_sampling_ci(correct)
    mean = correct.mean()
    assert low < mean < high and 0.03 < high - low < 0.05  # about +-1.9 points for 1,000 images at 90%
    assert (low, high) == metrics.test_sampling_ci(correct)  # its own seed: the same on every rerun
    seed_low, seed_high = metrics.seed_mean_ci(correct.mean(axis=0))
    assert seed_high - seed_low < high - low
    assert metrics.test_sampling_ci(np.ones((10, 3))) == (1.0, 1.0)


def results_frame():
    base = {"status": "ok", "reason": "", "test_accuracy_seed_mean": 0.9, "test_accuracy_seed_ci_low": 0.89,
            "test_accuracy_seed_ci_high": 0.91, "test_sampling_ci_low": 0.88, "test_sampling_ci_high": 0.92,
            "inference_s": 10.0, "images_per_s": 100.0}
    return pd.DataFrame([
        {**base, "run": "InceptionV3-it1", "backbone": "InceptionV3", "iteration": 1, "original_test_accuracy": 89.7,
         "last_epoch_test_accuracy_seed_mean": 0.85, "last_epoch_test_accuracy_seed_ci_low": 0.84,
         "last_epoch_test_accuracy_seed_ci_high": 0.86},
        {**base, "run": "VGG16-it1", "backbone": "VGG16", "iteration": 1, "status": "skipped",
         "reason": "VGG16: no ImageNet weights here: x.h5 is not in $GFR_WEIGHTS_DIR", "original_test_accuracy": 76.9},
        {**base, "run": "ResNet50-it5", "backbone": "ResNet50", "iteration": 5, "original_test_accuracy": np.nan},
    ])


def test_original_beside_ours_shows_both_protocols_and_why_a_run_is_missing():
    table = glance.original_beside_ours(results_frame())
    assert list(table.index) == [("InceptionV3", 1), ("VGG16", 1)]  # the original's iterations only
    row = table.loc[("InceptionV3", 1)]
    assert row["original write-up"] == "89.7%"
    assert row["ours, original protocol (last epoch)"].startswith("85.0%")
    assert row["ours, declared protocol (best-validation epoch)"].startswith("90.0%")
    assert row["test-sampling 95% interval"] == "88.0–92.0"
    assert "no ImageNet weights here" in table.loc[("VGG16", 1), "ours, original protocol (last epoch)"]
    assert glance.not_run_lines(results_frame())[0].startswith("- **VGG16** (iterations 1)")


def test_reproducibility_line_counts_bit_exact_runs_and_names_the_unchecked(tmp_path):
    path = tmp_path / "verify.csv"
    pd.DataFrame([
        {"run": "InceptionV3-it1", "number": "head_sha256", "rule": "bit-exact", "ok": True},
        {"run": "InceptionV3-it1", "number": "inference median (s)", "rule": "shown only", "ok": True},
    ]).to_csv(path, index=False)
    line = glance.reproducibility_line(path, results_frame())
    assert "reran 1 of the 2 finished runs" in line and "1 reproduced bit for bit" in line
    assert line.endswith("not checked: ResNet50-it5.")
    assert "has not been run" in glance.reproducibility_line(tmp_path / "none.csv", results_frame())


def test_iteration_two_note_says_how_many_seeds_kept_iteration_ones_head_and_both_protocols():
    protocol = pd.DataFrame([
        {"backbone": "B", "iteration": 1, "epochs": 20, "test % at kept epoch": 90.0, "test % at last epoch": 89.0,
         "original's test %": 89.7, "seeds keeping iteration 1's head": pd.NA, "seeds": 5},
        {"backbone": "B", "iteration": 2, "epochs": 50, "test % at kept epoch": 90.0, "test % at last epoch": 88.5,
         "original's test %": 88.0, "seeds keeping iteration 1's head": 4, "seeds": 5},
        {"backbone": "C", "iteration": 3, "epochs": 20, "test % at kept epoch": 95.0, "test % at last epoch": 95.0,
         "original's test %": np.nan, "seeds keeping iteration 1's head": pd.NA, "seeds": 5},
    ])
    note = glance.iteration_two_note(protocol)
    assert "B: 4 of 5 seeds kept iteration 1's very head" in note
    assert "89.00% -> 88.50%" in note and "(the original: 89.7% -> 88.0%)" in note
    assert "C:" not in note
    assert glance.iteration_two_note(protocol[protocol.backbone == "C"]) == ""


def test_a_run_committed_anew_since_its_check_counts_as_not_checked(tmp_path):
    import json

    path = tmp_path / "verify.csv"
    pd.DataFrame([{"run": "InceptionV3-it1", "number": "head_sha256", "committed": "old", "rule": "bit-exact",
                   "ok": True}]).to_csv(path, index=False)
    (tmp_path / "runs" / "InceptionV3-it1").mkdir(parents=True)
    (tmp_path / "runs" / "InceptionV3-it1" / "manifest.json").write_text(json.dumps({"head_sha256": "new"}))
    line = glance.reproducibility_line(path, results_frame(), tmp_path / "runs")
    assert "reran 0 of the 2 finished runs" in line and "not checked: InceptionV3-it1, ResNet50-it5" in line
