"""Limitations and data licences: which set chose what, set sizes, machines, identity caveat, licence notices."""

import pandas as pd
import pytest
from conftest import REPO, fake_manifest

from gfr.report import caveats
from gfr.study import published


def split_frame(train=6, val=3, test=4):
    return pd.DataFrame({"image_id": [f"{i:06d}.jpg" for i in range(train + val + test)],
                         "split": ["train"] * train + ["val"] * val + ["test"] * test})


def results_frame():
    return pd.DataFrame([{"run": "A-it3", "chosen": True, "test_accuracy": 0.75, "test_accuracy_ci_low": 0.3,
                          "test_accuracy_ci_high": 0.95},
                         {"run": "B-it3", "chosen": False, "test_accuracy": 0.5, "test_accuracy_ci_low": 0.2,
                          "test_accuracy_ci_high": 0.8}])


def wild(model, n_per_source, accuracy):
    rows = [{"model": model, "source": s, "n": n_per_source, "accuracy": accuracy, "ci_low": accuracy - 0.1,
             "ci_high": accuracy + 0.05} for s in ("lfw-grayscale", "utkface")]
    return rows + [{"model": model, "source": "all", "n": 2 * n_per_source, "accuracy": accuracy,
                    "ci_low": accuracy - 0.05, "ci_high": accuracy + 0.03}]


def test_sets_table_says_what_each_set_chose_and_how_small_it_is():
    dev = {"default_framing": "landmarks", "models": wild("A-it3", 10, 0.9) + wild("peer", 10, 0.8)}
    confirm = {"models": wild("A-it3", 15, 0.85)}
    table = caveats.sets_table(split_frame(), results_frame(), dev, confirm, {"chosen": "native-first"},
                               {"chosen": "box"}, {"threshold": -0.4})
    assert table.images.tolist() == [6, 3, 4, 20, 30]  # from the split manifest and the in-the-wild JSON
    assert table.loc["CelebA test", "chose"] == "nothing"
    assert "threshold (-0.4)" in table.loc["CelebA validation", "chose"]
    dev_chose = table.loc["in-the-wild-dev", "chose"]
    assert "native-first" in dev_chose and "landmarks" in dev_chose and "(box)" in dev_chose
    assert table.loc["in-the-wild-confirm", "chose"].startswith("nothing")
    assert table.loc["CelebA test", "chosen run there (95% CI)"] == "75.0% (30.0–95.0)"  # the chosen run, A-it3
    assert table.loc["in-the-wild-confirm", "chosen run there (95% CI)"] == "85.0% (80.0–88.0)"
    assert table.loc["in-the-wild-confirm", "interval width (points)"] == "8.0"
    assert table.loc["in-the-wild-dev", "per source"].startswith("lfw-grayscale 10: 90.0%")


def test_sets_table_without_measurements_says_so():
    table = caveats.sets_table(split_frame(), results_frame(), None, None, None, None, None)
    assert table.loc["in-the-wild-dev", "images"] == "–" and table.loc["in-the-wild-dev", "chose"] == "nothing yet"
    assert table.loc["CelebA validation", "chose"].count(";") == 1  # the epochs and the run, no threshold


def test_machine_lines_count_the_machines_and_the_loaded_timings(tmp_path):
    fake_manifest(tmp_path, "ResNet50-it1")  # load 3.0 on 2 cores
    fake_manifest(tmp_path, "VGG16-it1", status="skipped")
    lines = caveats.machine_lines(tmp_path)
    assert "one kind of machine (Test CPU (2 cores), tensorflow), none with a GPU" in lines[0]
    assert "1 of 1 runs timed" in lines[0]
    assert f"{len(published.TEST_ACCURACY)} cells" in lines[1] and published.INFERENCE_HARDWARE in lines[1]
    assert caveats.machine_lines(tmp_path / "empty") == []


def test_identity_line_gives_the_count_or_says_it_is_not_measured():
    assert "2 of 4 test images show a person" in caveats.identity_line({"a", "b"}, 4)
    assert "not measured here" in caveats.identity_line(None, 4)
    assert "CelebA's people may be among them" in caveats.identity_line(None, 4)


def test_notices_are_checked_against_the_data_folders_readmes(tmp_path):
    (tmp_path / "celeba").mkdir()
    (tmp_path / "celeba" / "README.md").write_text("... " + caveats.NOTICES[0].key_phrase + " ...")
    readmes = {"celeba": tmp_path / "celeba" / "README.md", "in-the-wild-dev": tmp_path / "nothing" / "README.md",
               "in-the-wild-confirm": None}
    table = caveats.notices_table(readmes)
    assert len(table) == len(caveats.NOTICES)
    assert table["stated in the README of"].tolist() == ["celeba", "no README here", "no README here"]
    assert all("research" in notice for notice in table.notice)


def test_data_readmes_come_from_the_parameters_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GFR_WILD_DIR", str(tmp_path / "dev"))
    monkeypatch.delenv(caveats.CONFIRM_ENV, raising=False)
    readmes = caveats.data_readmes(data_dir=tmp_path / "celeba")
    assert readmes == {"celeba": tmp_path / "celeba" / "README.md", "in-the-wild-dev": tmp_path / "dev" / "README.md",
                       "in-the-wild-confirm": None}


@pytest.mark.parametrize("folder", ["celeba-5k", "in-the-wild-dev", "in-the-wild-confirm"])
def test_the_shared_data_readmes_state_the_notices_we_show(folder):
    readme = REPO.parent / "shared" / folder / "README.md"
    if not readme.is_file():
        pytest.skip(f"{readme} is not here (real data only)")
    text = readme.read_text()
    expected = [n for n in caveats.NOTICES if (folder == "celeba-5k") == n.name.startswith("CelebA")]
    assert expected and all(n.key_phrase in text for n in expected)
