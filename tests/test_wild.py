"""Faces outside CelebA: the in-the-wild folder, per-source accuracy tables, McNemar against the peer, identities."""

import numpy as np
import pandas as pd
import pytest

from gfr import wild
from gfr.errors import GfrError
from gfr.study import identity


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


def test_accuracy_table_compares_with_the_peer_only_on_photos_both_measured():
    male, source = [1, 0, 1, 0], ["a", "a", "b", "b"]
    ours = frame([0.9, 0.1, 0.2, 0.1], male, source)  # wrong on 2.jpg only
    peer = frame([0.9, 0.9], male[:2], source[:2])  # measured on source a only, wrong on 1.jpg
    table = wild.accuracy_table({"run": ours, "peer": peer}).set_index(["model", "source"])
    assert table.loc[("run", "b"), "n"] == 2 and table.loc[("run", "b"), "accuracy"] == 0.5
    assert table.loc[("run", "b"), "only this right"] == table.loc[("run", "b"), "only peer right"] == 0
    assert table.loc[("run", "all"), "only this right"] == 1 and table.loc[("run", "b"), "McNemar p"] == 1.0


def test_identity_disjoint_split_keeps_each_person_in_one_part():
    manifest = pd.DataFrame({"image_id": [f"{k}.jpg" for k in range(100)], "split": "train", "label": 1})
    people = np.arange(100) // 3
    parts = identity.disjoint_split(manifest, people, seed=1, val_fraction=0.2, test_fraction=0.2)
    assert all(len(set(parts[people == p])) == 1 for p in np.unique(people))
    assert abs((parts == "test").sum() - 20) <= 3 and abs((parts == "val").sum() - 20) <= 3  # whole people: about 20 each


def test_shared_test_images_are_those_whose_person_is_in_training():
    manifest = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "split": ["train", "test", "test", "val"]})
    assert identity.shared_test_images(manifest, np.array([1, 1, 2, 2])) == {"b"}
