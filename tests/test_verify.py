"""study/verify: a rerun checked against the committed runs, number by number, with each number's tolerance."""

import json
import shutil

import pandas as pd
import pytest

from conftest import edit_record
from gfr.errors import GfrError
from gfr.study import artefacts, verify


def test_verify_is_bit_exact_on_the_same_machine_and_flags_a_change(saved_run, tmp_path):
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    shutil.copytree(saved_run, committed / saved_run.name)
    shutil.copytree(saved_run, fresh / saved_run.name)
    table = verify.compare(committed, fresh, [saved_run.name, "ResNet50-it1"])
    assert table.ok.all() and set(table[table.run == saved_run.name].rule) <= {"bit-exact", "shown only"}
    record = json.loads((fresh / saved_run.name / artefacts.MANIFEST).read_text())
    record["seeds"]["test_accuracy_mean"] += 0.01
    (fresh / saved_run.name / artefacts.MANIFEST).write_text(json.dumps(record))
    broken = verify.compare(committed, fresh, [saved_run.name])
    assert not broken.ok.all()
    assert broken[~broken.ok].number.tolist() == ["test accuracy, seed mean"]


def test_verify_uses_the_seed_spread_on_another_machine(saved_run, tmp_path):
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    shutil.copytree(saved_run, committed / saved_run.name)
    shutil.copytree(saved_run, fresh / saved_run.name)
    record = json.loads((fresh / saved_run.name / artefacts.MANIFEST).read_text())
    record["hardware"]["cpu_flags"] = ["avx2"]  # another kind of machine
    std = record["seeds"]["test_accuracy_std"]
    record["seeds"]["test_accuracy_mean"] += 1.5 * std  # inside 2 seed std
    (fresh / saved_run.name / artefacts.MANIFEST).write_text(json.dumps(record))
    table = verify.compare(committed, fresh, [saved_run.name])
    row = table[table.number == "test accuracy, seed mean"].iloc[0]
    assert row.rule.startswith("within") and bool(row.ok) == (std > 0)



def test_verify_summary_and_readme_block_count_what_was_checked(saved_run, tmp_path):
    from gfr import files
    from gfr.report import docs

    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    shutil.copytree(saved_run, committed / saved_run.name)
    shutil.copytree(saved_run, fresh / saved_run.name)
    record = json.loads((fresh / saved_run.name / artefacts.MANIFEST).read_text())
    record["seeds"]["val_accuracy_mean"] += 0.02
    (fresh / saved_run.name / artefacts.MANIFEST).write_text(json.dumps(record))
    table = verify.compare(committed, fresh, [saved_run.name, "ResNet50-it1"])
    summary = verify.summary(table).set_index("rule")
    assert summary.loc["bit-exact", "numbers"] == (table.rule == "bit-exact").sum()
    assert summary.loc["bit-exact", "within"] == summary.loc["bit-exact", "numbers"] - 1
    assert abs(summary.loc["bit-exact", "largest_abs_deviation"] - 0.02) < 1e-9
    files.write_csv(tmp_path / "verify.csv", table)
    block = docs.verify_block(tmp_path / "verify.csv")
    assert "2 runs rerun (1 ok, 1 not run; 1 finished)" in block and "the same kind of machine as the committed run (`numerics_id`) for 1 of 1" in block
    assert "Not in this check: " in block and "ResNet50-it4" in block.split("Not in this check: ")[1]
    assert f"{saved_run.name} val accuracy, seed mean" in block
    assert "has not been run" in docs.verify_block(tmp_path / "absent.csv")
    # the same record read beside the committed runs: unchanged; once the run is committed anew, not verified
    assert docs.verify_block(tmp_path / "verify.csv", committed) == block
    edit_record(committed / saved_run.name, head_sha256="0" * 64)
    assert verify.changed_since(table, committed) == [saved_run.name]
    stale = docs.verify_block(tmp_path / "verify.csv", committed)
    assert "1 runs rerun (1 not run; 0 finished)" in stale
    assert f"({saved_run.name}: committed anew since it was checked.)" in stale
    assert saved_run.name in stale.split("Not in this check: ")[1]


def test_verify_of_some_runs_keeps_the_other_runs_rows():
    earlier = pd.DataFrame({"run": ["A", "A", "B"], "number": ["status", "head_sha256", "status"], "ok": True})
    now = pd.DataFrame({"run": ["B", "B"], "number": ["status", "head_sha256"], "ok": [True, False]})
    merged = verify.merge(earlier, now)
    assert merged.run.tolist() == ["A", "A", "B", "B"] and merged.ok.tolist() == [True, True, True, False]


def test_run_names_outside_the_registry_are_refused():
    verify.check_run_names(None)
    verify.check_run_names(["ResNet50-it1"])
    with pytest.raises(GfrError, match=r"--runs: Nope-it1 not in the study's registry"):
        verify.check_run_names(["ResNet50-it1", "Nope-it1"])


def test_record_writes_the_table_and_keeps_the_other_runs_rows(saved_run, tmp_path):
    committed, fresh, out = tmp_path / "committed", tmp_path / "fresh", tmp_path / "verify.csv"
    shutil.copytree(saved_run, committed / saved_run.name)
    shutil.copytree(saved_run, fresh / saved_run.name)
    pd.DataFrame({"run": ["ResNet50-it1", saved_run.name], "number": ["status", "status"], "ok": [False, False]}
                 ).to_csv(out, index=False)
    table = verify.record(committed, fresh, [saved_run.name], out)
    written = pd.read_csv(out)
    assert written.run.tolist() == table.run.tolist() and table.run.iloc[0] == "ResNet50-it1"  # kept, first
    assert not table.ok.iloc[0] and table[table.run == saved_run.name].ok.all()  # replaced by this check's rows
    everything = verify.record(committed, fresh, None, out)  # no runs named: the whole registry, nothing kept
    assert set(everything.run) == {r.name for r in verify.expected_runs()}


def test_rerun_starts_from_an_empty_cache_and_reruns_only_the_named_runs(tmp_path, monkeypatch):
    calls = []
    from gfr.study import run

    monkeypatch.setattr(run, "run_one", lambda *args, **kwargs: calls.append((args[:2], kwargs)))
    fresh, cache = tmp_path / "fresh", tmp_path / "cache"
    for stale in (fresh / "VGG16-it1" / "old", fresh / "VGG16-it2" / "old", cache / "entry"):
        stale.mkdir(parents=True)
    verify.rerun(["VGG16-it1"], "data", "split.csv", fresh, cache)
    assert calls == [(("VGG16", 1), {"cache_dir": cache})]
    assert not (fresh / "VGG16-it1").exists() and not cache.exists()
    assert (fresh / "VGG16-it2" / "old").is_dir()  # another run's fresh result is left alone
