"""gfr.study.last_epoch: one fit gives the kept (best-validation) head and the last epoch's weights; a committed run
refit and checked bit for bit; the table, its flags and results.csv's last-epoch columns."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_PARAMS, gfr_cli, small_params

from gfr import files
from gfr.errors import GfrError
from gfr.models.head import build_head, compile_binary, head_with_weights, predict_proba, seed_everything, train_head
from gfr.study import artefacts, last_epoch, results, run

EPOCHS = 12


def diverging_features(seed: int = 0):
    """Tiny features whose validation labels run against the training labels: the longer the head trains, the worse
    it does on validation, so its best validation epoch is the first."""
    rng = np.random.default_rng(seed)
    x = {s: rng.normal(size=(n, 6)).astype("float32") for s, n in (("train", 96), ("val", 48))}
    return x, {"train": (x["train"][:, 0] > 0).astype(int), "val": (x["val"][:, 0] < 0).astype(int)}


def fit_as_before(x, y, epochs, seed, callbacks):
    """The head fit as it was before the last epoch was kept (plain Keras EarlyStopping, or no callback)."""
    seed_everything(seed)
    head = build_head(x["train"].shape[1], 8)
    compile_binary(head, 1e-2)
    head.fit(x["train"], y["train"].astype("float32"), validation_data=(x["val"], y["val"].astype("float32")),
             batch_size=16, epochs=epochs, shuffle=True, verbose=0, callbacks=callbacks)
    return head.get_weights()


def test_one_fit_keeps_the_best_epoch_unchanged_and_the_last_epoch_aside():
    import keras

    x, y = diverging_features()
    head, history, kept, last = train_head(x["train"], y["train"], x["val"], y["val"], 8, 1e-2, 16, EPOCHS, 7)
    assert kept < EPOCHS // 2 and history["val_accuracy"][kept - 1] > history["val_accuracy"][-1]
    assert any(not np.array_equal(a, b) for a, b in zip(head.get_weights(), last))  # two different heads
    # the kept head is, bit for bit, what Keras's EarlyStopping alone kept (the snapshot changes nothing) ...
    before = fit_as_before(x, y, EPOCHS, 7, [keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=EPOCHS, restore_best_weights=True)])
    assert all(np.array_equal(a, b) for a, b in zip(head.get_weights(), before))
    # ... and the last weights are those of the same fit left to its end
    assert all(np.array_equal(a, b) for a, b in zip(last, fit_as_before(x, y, EPOCHS, 7, [])))
    last_val = predict_proba(head_with_weights(last), x["val"])
    assert last_epoch.accuracy(last_val, y["val"]) == pytest.approx(history["val_accuracy"][-1])


@pytest.fixture(scope="module")
def committed(synth_root, synth_manifest, tmp_path_factory):
    """A committed head-only run (ResNet50-it1, test params, 4 epochs) and a fine-tuned run's manifest beside it."""
    work = tmp_path_factory.mktemp("last-epoch")
    runs_dir, cache = work / "runs", work / "cache"
    run.run_one("ResNet50", 1, synth_root, synth_manifest, runs_dir, small_params(1, {"epochs": 4}), cache,
                progress=False)
    record = artefacts.load_record(runs_dir / "ResNet50-it1")  # a fine-tuned run, as far as it matters here
    shutil.copytree(runs_dir / "ResNet50-it1", runs_dir / "ResNet50-it4")
    artefacts.write_manifest(runs_dir / "ResNet50-it4", {**record, "run": "ResNet50-it4", "iteration": 4, "params": {
        **record["params"], "epochs": 10, "finetune": {"epochs": 8}}})
    return {"runs": runs_dir, "cache": cache, "data": synth_root, "manifest": synth_manifest}


def refit(c, runs_dir=None, names=("ResNet50-it1", "ResNet50-it4")):
    runs_dir = runs_dir or c["runs"]
    return last_epoch.refit(list(names), c["data"], c["manifest"], runs_dir, last_epoch.table_path(runs_dir),
                            {"epochs": 4}, [TEST_PARAMS], c["cache"], progress=False)


def test_a_refit_of_a_committed_run_proves_itself_and_results_take_its_columns(committed):
    table = refit(committed)
    assert list(table.columns) == last_epoch.COLUMNS
    assert last_epoch.read(last_epoch.table_path(committed["runs"])).equals(table)  # as written
    heads = table[table.run == "ResNet50-it1"]
    seeds = artefacts.seeds_table(committed["runs"] / "ResNet50-it1")
    assert list(heads.seed) == list(seeds.seed) and list(heads.kept_epoch) == list(seeds.kept_epoch)
    assert (heads.status == last_epoch.REPRODUCED).all() and heads.kept_test_prob_equals_committed.all()
    assert list(heads.head_sha256_equals_manifest.isna()) == [False, True, True]  # the reported seed's file only
    assert heads.head_sha256_equals_manifest.iloc[0] == True  # noqa: E712 (a numpy bool)
    assert np.allclose(heads.test_accuracy_kept, seeds.test_accuracy)
    tuned = table[table.run == "ResNet50-it4"].iloc[0]
    assert tuned.status == last_epoch.NOT_REFIT and "not refit" in tuned.note
    frame = results.collect(committed["runs"]).set_index("run")
    mean = heads.test_accuracy_last.mean()
    assert frame.loc["ResNet50-it1", "last_epoch_test_accuracy_seed_mean"] == pytest.approx(mean)
    low, high = frame.loc["ResNet50-it1", ["last_epoch_test_accuracy_seed_ci_low",
                                           "last_epoch_test_accuracy_seed_ci_high"]]
    assert low <= mean <= high and frame.loc["ResNet50-it1", "last_epoch_refit"] == last_epoch.REPRODUCED
    assert frame.loc["ResNet50-it4", "last_epoch_refit"] == last_epoch.NOT_REFIT
    assert pd.isna(frame.loc["VGG16-it1", "last_epoch_refit"])  # not in the table
    shown = last_epoch.protocol_table(table)
    assert list(shown.backbone) == ["ResNet50"] and shown["refit"].iloc[0] == last_epoch.REPRODUCED


def test_a_refit_that_differs_from_the_committed_run_is_flagged(committed, tmp_path):
    runs_dir = tmp_path / "runs"
    shutil.copytree(committed["runs"] / "ResNet50-it1", runs_dir / "ResNet50-it1")
    predictions = artefacts.test_predictions(runs_dir / "ResNet50-it1")
    column = artefacts.prob_column(1025)
    one_ulp = np.nextafter(np.float32(predictions.loc[0, column]), np.float32(1))  # one float32 step
    predictions.loc[0, column] = float(one_ulp)
    files.write_csv(runs_dir / "ResNet50-it1" / artefacts.TEST_PREDICTIONS_FILE, predictions)
    record = json.loads((runs_dir / "ResNet50-it1" / artefacts.MANIFEST).read_text())
    artefacts.write_manifest(runs_dir / "ResNet50-it1", {**record, "head_sha256": "0" * 64})
    table = refit(committed, runs_dir, ["ResNet50-it1"]).set_index("seed")
    assert list(table.status) == [last_epoch.NOT_REPRODUCED] * 2 + [last_epoch.REPRODUCED]
    assert table.loc[1024, "kept_test_prob_equals_committed"] == True  # noqa: E712 the predictions, not the hash
    assert table.loc[1024, "head_sha256_equals_manifest"] == False  # noqa: E712
    assert table.loc[1025, "kept_test_prob_equals_committed"] == False  # noqa: E712
    assert last_epoch.summary(table.reset_index()).status.iloc[0] == last_epoch.NOT_REPRODUCED
    with pytest.raises(GfrError, match="not a last-epoch table"):
        pd.DataFrame({"run": ["x"]}).to_csv(tmp_path / "other.csv", index=False)
        last_epoch.read(tmp_path / "other.csv")


def test_finished_runs_put_the_originals_iterations_first(tmp_path):
    for name, status in (("ResNet50-it5", "ok"), ("ResNet50-it1", "ok"), ("InceptionV3-it6", "ok"),
                         ("InceptionV3-it2", "ok"), ("VGG16-it1", "skipped")):
        (tmp_path / name).mkdir()
        artefacts.write_manifest(tmp_path / name, {"run": name, "status": status})
    assert last_epoch.finished_runs(tmp_path) == ["InceptionV3-it2", "ResNet50-it1", "InceptionV3-it6",
                                                  "ResNet50-it5"]


def test_gfr_last_epoch_refits_a_run_and_refuses_an_unfinished_one(cli_run, synth_root, tmp_path):
    common = ["--data-dir", synth_root, "--manifest", cli_run["manifest"], "--runs-dir", cli_run["work"] / "runs",
              "--params", TEST_PARAMS, "--weights", "none", "--cache-dir", cli_run["cache"]]
    out = tmp_path / "last-epoch.csv"
    bad = gfr_cli("last-epoch", *common, "--runs", "ResNet50-it3", "--out", out, cwd=cli_run["work"])
    last_line = bad.stderr.strip().splitlines()[-1]
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert last_line.startswith("gfr: error: ") and "ResNet50-it3" in last_line
    assert not out.exists()
    good = gfr_cli("last-epoch", *common, "--out", out, cwd=cli_run["work"])
    assert good.returncode == 0, good.stderr
    assert "[1/1] ResNet50-it1" in good.stderr and "refit not reproducing the committed run: none" in good.stdout
    table = last_epoch.read(out)
    assert (table.status == last_epoch.REPRODUCED).all() and table.kept_test_prob_equals_committed.all()
    assert (table.kept_epoch == 1).all() and (table.test_accuracy_kept == table.test_accuracy_last).all()  # 1 epoch


def test_a_fine_tuned_run_is_refit_only_when_asked(synth_root, synth_manifest, tmp_path):
    tiny = {"input_size": [64, 64], "finetune": {"epochs": 2, "batch_size": 8}}
    runs_dir = tmp_path / "runs"
    run.run_one("ResNet50", 4, synth_root, synth_manifest, runs_dir, small_params(4, tiny), tmp_path / "cache",
                progress=False)
    args = ("ResNet50-it4", synth_root, synth_manifest, runs_dir, tiny, [TEST_PARAMS], tmp_path / "cache", False)
    assert [r["status"] for r in last_epoch.refit_rows(*args)] == [last_epoch.NOT_REFIT]
    rows = pd.DataFrame(last_epoch.refit_rows(*args, refit_finetuned=True))
    seeds = artefacts.seeds_table(runs_dir / "ResNet50-it4")
    assert (rows.status == last_epoch.REPRODUCED).all() and list(rows.kept_epoch) == list(seeds.kept_epoch)
    assert (rows.epochs == 2).all() and rows.note.str.contains("2-epoch fine-tuning").all()
    assert list(rows.head_sha256_equals_manifest) == [True, None, None]


def test_the_protocol_table_counts_the_seeds_whose_longer_fit_kept_the_shorter_fits_head():
    def seed(iteration, epochs, seed, kept, test_kept, test_last):
        return {"run": f"VGG16-it{iteration}", "backbone": "VGG16", "iteration": iteration, "epochs": epochs,
                "seed": seed, "status": last_epoch.REPRODUCED, "kept_epoch": kept, "val_accuracy_kept": 0.9,
                "test_accuracy_kept": test_kept, "val_accuracy_last": 0.8, "test_accuracy_last": test_last}
    table = pd.DataFrame([seed(1, 20, 1, 3, 0.90, 0.85), seed(1, 20, 2, 5, 0.92, 0.86),
                          seed(1, 20, 3, 20, 0.91, 0.91), seed(2, 50, 1, 3, 0.90, 0.80),
                          seed(2, 50, 2, 30, 0.93, 0.82), seed(2, 50, 3, 20, 0.91, 0.84)])
    shown = last_epoch.protocol_table(table).set_index("iteration")
    kept_first = shown["seeds keeping iteration 1's head"]
    assert kept_first.loc[2] == 2 and pd.isna(kept_first.loc[1])  # seed 2's longer fit found a better epoch
    assert shown.loc[1, "test % at last epoch"] == pytest.approx(100 * (0.85 + 0.86 + 0.91) / 3)
    assert shown.loc[2, "test % at kept epoch"] == pytest.approx(100 * (0.90 + 0.93 + 0.91) / 3)
    assert list(shown["original's test %"]) == [76.9, 84.4] and list(shown.seeds) == [3, 3]
