"""Notebook 05's tables: in-the-wild accuracy cells, the framings, the --detect-faces check, the targets."""

import numpy as np
import pandas as pd

from gfr.study import wild
from gfr.report import beyond
from gfr.study import metrics


def photos(p_male, source=("lfw", "lfw", "utk", "utk"), detector=("hog", "none", "hog", "cnn")):
    return pd.DataFrame({"file": [f"{k}.jpg" for k in range(len(p_male))], "source": list(source),
                         "male": [1, 0, 1, 0], "p_male": p_male, "detector": list(detector)})


PREDICTIONS = {"A-it1": photos([0.9, 0.8, 0.7, 0.1]),              # 3 of 4 right
               "A-it1__none": photos([0.2, 0.1, 0.8, 0.3]),        # 3 of 4 right, not the same ones
               "A-it1__box": photos([0.9, 0.1, 0.8, 0.3]),         # all right
               "B-it1": photos([0.6, 0.4, 0.4, 0.6]),              # 2 of 4 right
               wild.PEER: photos([0.9, 0.1, 0.2, 0.1])}            # 3 of 4 right


def test_shown_accuracy_puts_the_interval_in_the_accuracy_cell():
    shown = beyond.shown_accuracy(wild.accuracy_table({"A-it1": PREDICTIONS["A-it1"]}))
    low, high = metrics.wilson_ci(3, 4)
    assert shown.loc[("A-it1", "all"), "accuracy"] == f"75.0% ({100 * low:.1f}–{100 * high:.1f})"
    assert shown.loc[("A-it1", "lfw"), "no face found"] == 1
    assert "ci_low" not in shown and list(shown.index.names) == ["model", "source"]


def test_framed_runs_are_those_measured_under_several_framings():
    assert list(beyond.framed_runs(PREDICTIONS)) == ["A-it1", "A-it1__none", "A-it1__box"]
    assert beyond.run_and_framing("A-it1") == ("A-it1", "landmarks")
    assert beyond.run_and_framing("A-it1__none") == ("A-it1", "none")


def test_framing_tables_per_run_and_framing_by_source():
    accuracy, no_face = beyond.framing_tables(wild.accuracy_table(beyond.framed_runs(PREDICTIONS), peer_name=""))
    assert accuracy.index.tolist() == [("A-it1", "box"), ("A-it1", "landmarks"), ("A-it1", "none")]
    assert accuracy.loc[("A-it1", "box"), "all"].startswith("100.0% (")
    assert no_face.loc[("A-it1", "landmarks"), "no face: lfw"] == 1
    assert all(len(t) == 0 for t in beyond.framing_tables(wild.accuracy_table({})))


def test_framing_check_compares_detect_faces_with_the_whole_photo_per_source():
    check = beyond.framing_check(beyond.framed_runs(PREDICTIONS))
    assert check.index.tolist() == [("A-it1", "lfw"), ("A-it1", "utk")]  # per source, not "all"
    lfw = check.loc[("A-it1", "lfw")]  # each framing right on one of the two photos, not the same one
    assert (lfw["--detect-faces"], lfw["whole photo"], lfw["difference (pp)"]) == (0.5, 0.5, 0.0)
    assert lfw["McNemar p"] == metrics.mcnemar([1, 0], [0, 1])["p_value"]
    assert len(beyond.framing_check({"A-it1": PREDICTIONS["A-it1"]})) == 0


def test_target_table_shows_the_chosen_run_and_the_peer_on_both_sets_of_images():
    chosen = pd.Series({"run": "A-it1", "test_accuracy": 0.75, "test_accuracy_ci_low": 0.3, "test_accuracy_ci_high": 0.95})
    ours = pd.DataFrame({"image_id": ["1", "2", "3", "4"], "label": [1, 0, 1, 0], "p_male": [0.9, 0.8, 0.7, 0.1]})
    peer_predictions = pd.DataFrame({"image_id": ["4", "3", "2", "1"], "pred": [0, 1, 0, 0]})
    table = beyond.target_table(chosen, ours, peer_predictions, wild.accuracy_table(
        {"A-it1": PREDICTIONS["A-it1"], wild.PEER: PREDICTIONS[wild.PEER]}), wild.PEER)
    assert table.index.tolist() == [("seed test split (4)", "A-it1 (reported head)"), ("seed test split (4)", "peer"),
                                    ("in-the-wild-dev (4)", "A-it1"), ("in-the-wild-dev (4)", "peer")]
    assert table.iloc[0]["accuracy"] == "75.0% (30.0–95.0)" and table.iloc[1]["accuracy"].startswith("75.0% (")
    assert np.isnan(table.iloc[3]["McNemar p vs peer (Holm)"]) and not np.isnan(table.iloc[2]["McNemar p vs peer (Holm)"])
    assert len(beyond.target_table(chosen, ours, None, pd.DataFrame(), wild.PEER)) == 1


def test_locate_table_one_row_per_variant():
    located = {"variants": {"box": {"val_accuracy_mean": 0.97, "val_accuracy_per_seed": [0.97, 0.97],
                                    "wild_accuracy": 0.9675, "wild_by_source": {"lfw": 0.95}},
                            "detect": {"val_accuracy_mean": 0.98, "val_accuracy_per_seed": [0.98, 0.98]}}}
    table = beyond.locate_table(located)
    assert table.index.tolist() == ["box", "detect"] and table.loc["box", "seeds"] == 2
    assert table.loc["box", "in-the-wild-dev, lfw"] == "95.00%"


def test_confirm_verdicts_say_met_missed_and_point_estimates():
    from gfr.report import beyond

    summary = {"models": [
        {"model": "run", "source": "lfw", "n": 100, "accuracy": 0.99, "ci_low": 0.95, "ci_high": 1.0,
         "McNemar p (Holm)": 0.01},
        {"model": "run", "source": "utk", "n": 100, "accuracy": 0.95, "ci_low": 0.9, "ci_high": 0.98,
         "McNemar p (Holm)": 0.4},
        {"model": "run", "source": "all", "n": 200, "accuracy": 0.97, "ci_low": 0.94, "ci_high": 0.99,
         "McNemar p (Holm)": 0.2},
        {"model": "peer", "source": "lfw", "n": 100, "accuracy": 0.90, "ci_low": 0.8, "ci_high": 0.95},
        {"model": "peer", "source": "utk", "n": 100, "accuracy": 0.94, "ci_low": 0.88, "ci_high": 0.97},
        {"model": "peer", "source": "all", "n": 200, "accuracy": 0.92, "ci_low": 0.88, "ci_high": 0.95}]}
    lines = beyond.confirm_verdicts(summary)
    assert "**met as a point estimate only (the 95% interval reaches below the target)**" in lines[0]
    assert "above the peer on lfw" in lines[1] and "**better, significant**" in lines[1]
    assert "on utk" in lines[2] and "**better as a point estimate only (not significant)**" in lines[2]
    summary["models"][2]["accuracy"] = 0.969
    summary["models"][1]["accuracy"] = 0.93
    lines = beyond.confirm_verdicts(summary)
    assert "**missed**" in lines[0] and "**not better**" in lines[2]
    summary["models"][2].update(accuracy=0.98, ci_low=0.975)
    assert "**met**." in beyond.confirm_verdicts(summary)[0]
    assert len(beyond.confirm_table(summary)) == 6


def test_port_table_states_each_measure_against_its_target():
    import json
    from pathlib import Path

    from gfr.report import beyond

    port = json.loads((Path(__file__).resolve().parent.parent / "reports" / "descriptor-port.json").read_text())
    table = beyond.port_table(port)
    assert table.loc["face chips compared (every CelebA image of the data folder)", "value"] == f"{port['chips']:,}"
    assert "(target <= 0.001)" in table.loc["largest abs(port - dlib) over every descriptor component", "value"]
    assert port["met"] and port["max_abs_diff"] <= 1e-3 and port["min_cosine"] >= 0.99999
    assert port["heads"]["met"] and "target >= 99.9%" in table.loc["same label on the test images, worst seed", "value"]


def test_flip_table_shows_validation_deciding_and_test_for_the_record():
    from gfr.report import beyond

    flip = {"rule": "r", "runs": {"A-it3": {"head": "reported seed 1", "adopted": False,
                                            "val": {"plain": 0.975, "flip-averaged": 0.976, "mcnemar_p": 1.0},
                                            "test": {"plain": 0.98, "flip-averaged": 0.983}}}}
    table = beyond.flip_table(flip)
    assert table.loc["A-it3", "validation, flip-averaged"] == "97.60%"
    assert table.loc["A-it3", "adopted by the rule"] == "no"
    assert table.loc["A-it3", "test, flip-averaged (chooses nothing)"] == "98.30%"
