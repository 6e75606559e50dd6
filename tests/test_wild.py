"""study/wild: the in-the-wild folder, per-source accuracy tables, McNemar against the peer."""

import pandas as pd
import pytest

from gfr.errors import GfrError
from gfr.study import wild


def frame(p_male, male, source):
    return pd.DataFrame({"file": [f"{k}.jpg" for k in range(len(male))], "source": source, "male": male,
                         "p_male": p_male, "detector": "hog"})


def test_missing_wild_folder_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.delenv(wild.WILD_ENV, raising=False)
    with pytest.raises(GfrError, match="no in-the-wild labels.csv"):
        wild.wild_dir(tmp_path)


def test_accuracy_table_per_source_with_cis_and_mcnemar_against_the_peer():
    male = [1, 0, 1, 0, 1, 0]
    source = ["a", "a", "a", "b", "b", "b"]
    ours = frame([0.9, 0.1, 0.8, 0.2, 0.7, 0.6], male, source)  # wrong only on the last image
    peer = frame([0.9, 0.9, 0.8, 0.2, 0.7, 0.4], male, source)  # wrong only on the second
    table = wild.accuracy_table({"run": ours, "peer": peer}).set_index(["model", "source"])
    assert table.loc[("run", "a"), "accuracy"] == 1.0 and table.loc[("run", "all"), "accuracy"] == pytest.approx(5 / 6)
    assert table.loc[("run", "all"), "ci_low"] < 5 / 6 < table.loc[("run", "all"), "ci_high"]
    assert table.loc[("run", "all"), "only this right"] == 1 and table.loc[("run", "all"), "only peer right"] == 1
    assert (table["McNemar p (Holm)"].dropna() >= table["McNemar p"].dropna()).all()


def test_photos_without_a_face_count_three_ways(tmp_path):
    """Classified whole (gfr wild's accuracy), counted wrong (as `gfr predict` gives them no gender), left out."""
    ours = frame([0.9, 0.1, 0.8, 0.2, 0.7, 0.6], [1, 0, 1, 0, 1, 0], ["a", "a", "a", "b", "b", "b"])
    ours.loc[[0, 5], "detector"] = "none"  # no face found in a right one (0) and a wrong one (5)
    ways = wild.no_face_ways(ours)
    assert ways["no face found"] == 2 and ways["faces found"] == 4 and ways["coverage"] == pytest.approx(4 / 6)
    assert ways["whole image"]["accuracy"] == pytest.approx(5 / 6)
    assert ways["no face = wrong"]["accuracy"] == pytest.approx(4 / 6)
    assert ways["faces found only"]["accuracy"] == 1.0 and ways["faces found only"]["of"] == 4
    table = wild.accuracy_table({"run": ours}).set_index(["model", "source"])
    assert table.loc[("run", "all"), "accuracy, no face = wrong"] == pytest.approx(4 / 6)
    assert "no face found" in wild.describe(ours) and "counting them wrong 0.6667" in wild.describe(ours)
    ours.to_csv(tmp_path / "run.csv", index=False)
    summary = wild.write_no_face_summary(tmp_path, tmp_path / "no-face.json")
    assert [(r["model"], r["source"]) for r in summary["models"]] == [("run", "a"), ("run", "b"), ("run", "all")]
    assert "no face found" in summary["rule"]


def test_accuracy_table_compares_with_the_peer_only_on_photos_both_measured():
    male, source = [1, 0, 1, 0], ["a", "a", "b", "b"]
    ours = frame([0.9, 0.1, 0.2, 0.1], male, source)  # wrong on 2.jpg only
    peer = frame([0.9, 0.9], male[:2], source[:2])  # measured on source a only, wrong on 1.jpg
    table = wild.accuracy_table({"run": ours, "peer": peer}).set_index(["model", "source"])
    assert table.loc[("run", "b"), "n"] == 2 and table.loc[("run", "b"), "accuracy"] == 0.5
    assert table.loc[("run", "b"), "only this right"] == table.loc[("run", "b"), "only peer right"] == 0
    assert table.loc[("run", "all"), "only this right"] == 1 and table.loc[("run", "b"), "McNemar p"] == 1.0
