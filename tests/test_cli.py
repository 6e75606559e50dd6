"""The command line: help, one-line user errors (exit 2, no traceback), split + run on synthetic data."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from conftest import TEST_PARAMS, gfr_cli, run_args
from gfr import cli

SUBCOMMANDS = sorted(next(a for a in cli.parser()._actions if a.dest == "command").choices)


def test_help():
    proc = gfr_cli("--help")
    assert proc.returncode == 0 and "usage: gfr" in proc.stdout
    for name in ("split", "run", "predict"):
        assert name in proc.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command):
    proc = gfr_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: gfr {command}")


def check_one_error_line(returncode, stderr, *parts, progress_ok=False):
    lines = stderr.strip().splitlines()
    assert returncode == 2, (returncode, stderr)
    assert "Traceback" not in stderr
    if progress_ok:  # progress meters may come first; the error is the one last line
        assert all(not line.startswith("gfr: error") for line in lines[:-1])
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("gfr: error: "), stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])


def error_cases(tmp, synth_root, synth_manifest):
    """(argv, parts the one error line must hold) for each kind of user mistake."""
    bad_values, bad_yaml = tmp / "bad-values.yaml", tmp / "bad-yaml.yaml"
    bad_values.write_text("epochs: -3\n")
    bad_yaml.write_text("head: {dense_units: [\n")
    runs, cache = tmp / "runs", tmp / "cache"
    return {
        "missing data dir": (["split", "--data-dir", tmp / "nowhere", "--out", tmp / "s.csv"],
                             ["data directory not found", str(tmp / "nowhere")]),
        "no data dir at all": (["split", "--out", tmp / "s.csv"], ["GFR_DATA_DIR"]),
        "data dir without attributes": (["split", "--data-dir", tmp, "--out", tmp / "s.csv"], ["missing"]),
        "run: missing data dir": (run_args(tmp / "nowhere", synth_manifest, runs, cache), ["data directory not found"]),
        "unknown backbone": (run_args(synth_root, synth_manifest, runs, cache, "ResNet51"),
                             ["unknown backbone 'ResNet51'", "ResNet50"]),
        "unknown iteration": (run_args(synth_root, synth_manifest, runs, cache, "ResNet50", 99), ["unknown iteration 99"]),
        "bad params values": (["split", "--data-dir", synth_root, "--params", bad_values, "--out", tmp / "s.csv"],
                              ["'epochs'", str(bad_values)]),
        "bad params yaml": (["split", "--data-dir", synth_root, "--params", bad_yaml, "--out", tmp / "s.csv"],
                            ["not valid YAML", str(bad_yaml)]),
        "missing params file": (["split", "--data-dir", synth_root, "--params", tmp / "no.yaml", "--out", tmp / "s.csv"],
                                ["not found", str(tmp / "no.yaml")]),
        "missing manifest": (run_args(synth_root, tmp / "none.csv", runs, cache), ["split manifest not found"]),
        "predict without a run": (["predict", "--run", tmp / "no-run", tmp / "x.jpg"], ["no run manifest"]),
        "missing weights file": (run_args(synth_root, synth_manifest, runs, cache) + ["--weights", tmp / "w.h5"],
                                 ["weights file not found", str(tmp / "w.h5")]),
        "timing: too few rounds": (["timing", "--runs-dir", runs, "--data-dir", synth_root, "--manifest", synth_manifest,
                                    "--rounds", "2", "--out", tmp / "s.csv"], ["at least 3 rounds"]),
    }


CASE_NAMES = ["missing data dir", "no data dir at all", "data dir without attributes", "run: missing data dir",
              "unknown backbone", "unknown iteration", "bad params values", "bad params yaml", "missing params file",
              "missing manifest", "predict without a run", "missing weights file", "timing: too few rounds"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_user_error_is_one_line_exit_2(case, tmp_path, synth_root, synth_manifest, capsys):
    argv, parts = error_cases(tmp_path, synth_root, synth_manifest)[case]
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    check_one_error_line(code, captured.err, *parts)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("case", ["missing data dir", "unknown backbone"])
def test_user_error_in_a_fresh_process(case, tmp_path, synth_root, synth_manifest):
    argv, parts = error_cases(tmp_path, synth_root, synth_manifest)[case]
    proc = gfr_cli(*argv, cwd=tmp_path)
    check_one_error_line(proc.returncode, proc.stderr, *parts)
    assert proc.stdout == ""


def test_bad_image_stops_split(tmp_path, synth_root, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth_root, data)
    (data / "img_align_celeba" / "000007.jpg").write_text("not a jpeg")
    proc = gfr_cli("split", "--data-dir", data, "--params", TEST_PARAMS, "--out", tmp_path / "s.csv", cwd=tmp_path)
    check_one_error_line(proc.returncode, proc.stderr, "000007.jpg", "not a readable image", progress_ok=True)
    assert not (tmp_path / "s.csv").exists()
    code = cli.main(["split", "--data-dir", str(data), "--params", str(TEST_PARAMS), "--out", str(tmp_path / "s.csv"),
                     "--on-bad-image", "exclude"])
    out = capsys.readouterr().out
    assert code == 0 and "39 images" in out and "1 excluded" in out
    assert list(pd.read_csv(tmp_path / "s.excluded.csv").image_id) == ["000007.jpg"]


def test_split_then_run_prints_test_accuracy(cli_run):
    split_out = cli_run["split"].stdout
    assert "40 images" in split_out and "'train': 24, 'val': 8, 'test': 8" in split_out and "0 excluded" in split_out
    out = cli_run["run"].stdout
    assert out.startswith("ResNet50-it1")
    match = re.search(r"test acc (\d\.\d{4}) \(95% CI (\d\.\d{4})-(\d\.\d{4})\)", out)
    assert match, out
    acc, low, high = map(float, match.groups())
    assert low <= acc <= high
    record = json.loads((cli_run["run_dir"] / "manifest.json").read_text())
    assert record["status"] == "ok" and record["test"]["n"] == 8
    assert record["test"]["accuracy"] == pytest.approx(acc, abs=5e-5)
    assert record["weights_sha256"] == "random" and record["input_size"] == [48, 48]
    assert record["split_sizes"] == {"train": 24, "val": 8, "test": 8}
    assert record["feature_cache"]["cache"] == "miss"
    assert record["feature_cache"]["path"].startswith(str(cli_run["cache"]))
    # The end-to-end model (JPEG -> backbone -> head) agrees with the cached-feature path.
    assert record["full_model_vs_cached_max_abs_diff"] < 1e-5
    preds = pd.read_csv(cli_run["run_dir"] / "test_predictions.csv")
    assert len(preds) == 8 and {"prob_seed1024", "prob_seed1025"} <= set(preds.columns)
