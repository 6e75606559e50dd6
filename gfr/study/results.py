"""The results table: one row per run of the study (ok, skipped, failed or not run), from the run manifests and
the timing pass (reports/timing.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from gfr import files
from gfr.study import analysis, artefacts, last_epoch, metrics, published, timing_pass
from gfr.study.registry import RunId, expected_runs, run_order

NOT_RUN = "not run"

COLUMNS = [
    "run", "backbone", "iteration", "status", "reason", "input_size", "epochs",
    "train_accuracy", "train_loss", "val_accuracy", "val_loss",
    "test_accuracy", "test_accuracy_ci_low", "test_accuracy_ci_high", "test_roc_auc",
    "val_accuracy_seed_mean", "val_accuracy_seed_std", "test_accuracy_seed_mean", "test_accuracy_seed_std",
    "test_accuracy_seed_ci_low", "test_accuracy_seed_ci_high", "test_sampling_ci_low", "test_sampling_ci_high", "n_seeds",
    "inference_s", "inference_min_s", "inference_max_s", "images_per_s", "inference_timing", "sweep_inference_s",
    "original_test_accuracy", "weights_origin", "hardware_id", "chosen",
]


def row(record: dict) -> dict:
    """One results row from a run manifest."""
    from gfr.study.hardware import hardware_id

    out = {
        "run": record["run"], "backbone": record["backbone"], "iteration": record["iteration"],
        "status": record["status"], "reason": record.get("reason", ""),
        "input_size": "x".join(str(v) for v in record.get("input_size", [])),
        "epochs": record.get("params", {}).get("epochs"),
        "original_test_accuracy": published.test_accuracy(record["backbone"], record["iteration"]),
        "hardware_id": hardware_id(record["hardware"]) if record.get("hardware") else "",
    }
    if record["status"] == "ok":
        t, s = record["test"], record["seeds"]
        out.update(
            train_accuracy=record["train_accuracy"], train_loss=record["train_loss"],
            val_accuracy=record["val_accuracy"], val_loss=record["val_loss"],
            test_accuracy=t["accuracy"], test_accuracy_ci_low=t["accuracy_ci_low"],
            test_accuracy_ci_high=t["accuracy_ci_high"], test_roc_auc=t["roc_auc"],
            val_accuracy_seed_mean=s["val_accuracy_mean"], val_accuracy_seed_std=s["val_accuracy_std"],
            test_accuracy_seed_mean=s["test_accuracy_mean"], test_accuracy_seed_std=s["test_accuracy_std"],
            test_accuracy_seed_ci_low=s.get("test_accuracy_ci_low"), test_accuracy_seed_ci_high=s.get("test_accuracy_ci_high"),
            n_seeds=len(record["params"]["head"]["seeds"]),
            sweep_inference_s=record["inference"]["median_s"],  # timed during the sweep: a diagnostic only
            weights_origin=record.get("weights_origin", ""),
        )
    return out


def test_sampling(run_dir: str | os.PathLike) -> dict:
    """The test-sampling interval of a finished run's seed-mean test accuracy (metrics.test_sampling_ci), from its
    saved test predictions of every seed."""
    pred = artefacts.test_predictions(run_dir)
    correct = np.column_stack([metrics.is_correct(pred[c], pred.label) for c in pred.columns if c.startswith("prob_seed")])
    low, high = metrics.test_sampling_ci(correct)
    return {"test_sampling_ci_low": low, "test_sampling_ci_high": high}


def timing_columns(record: dict, timed: dict | None, source: str) -> dict:
    """A finished run's inference columns from the timing pass `timed` (read from `source`): median, min and max
    seconds and images/s, or, where the pass did not time it, why not (the sweep's own timing is never used)."""
    if timed is None:
        return {"inference_timing": f"not timed: no timing pass ({source} absent; `make timing`)"}
    entry = timed["runs"].get(record["run"])
    if entry is None:
        return {"inference_timing": f"not timed: not in {source} (timed {timed['started']})"}
    if entry["status"] != timing_pass.TIMED:
        return {"inference_timing": f"not timed: {entry['reason']}"}
    if entry.get("head_sha256") != record.get("head_sha256"):
        return {"inference_timing": f"not timed: {source} timed another head of this run (rerun `make timing`)"}
    return {"inference_s": entry["median_s"], "inference_min_s": entry["min_s"], "inference_max_s": entry["max_s"],
            "images_per_s": entry["images_per_s"],
            "inference_timing": f"timing pass {timed['started']}: median of {len(entry['seconds'])} rounds"}


def records(runs_dir: str | os.PathLike) -> list[dict]:
    """Every run manifest under runs_dir."""
    return [json.loads(p.read_text()) for p in Path(runs_dir).glob(f"*/{artefacts.MANIFEST}")]


def failures(runs_dir: str | os.PathLike) -> dict[str, str]:
    """Run name -> error, for each run whose last execution failed (a kept <run>.failed.ipynb)."""
    suffix = artefacts.FAILED_SUFFIX
    return {p.name.removesuffix(suffix): artefacts.error_of(p) for p in Path(runs_dir).glob(f"*{suffix}")}


def placeholder_row(name: str, status: str, reason: str) -> dict:
    """The row of a run that has no finished manifest (failed, or not run)."""
    run = RunId.parse(name)
    return {"run": name, "backbone": run.backbone, "iteration": run.iteration, "status": status, "reason": reason,
            "original_test_accuracy": published.test_accuracy(run.backbone, run.iteration)}


def collect(runs_dir: str | os.PathLike, expected: list[str] | None = None,
            timing: str | os.PathLike | None = None) -> pd.DataFrame:
    """The results table: every expected run of the study (registry) and any other run found under runs_dir.

    A run whose last execution failed shows as failed; an expected run with no manifest as "not run". Inference
    times come from the timing pass at `timing` (default: timing.json beside runs_dir); with a last-epoch table
    beside runs_dir, its per-run columns (last_epoch_*) are added."""
    failed = failures(runs_dir)
    source = Path(timing) if timing else timing_pass.default_path(runs_dir)
    timed = timing_pass.read(source)
    rows = {r["run"]: {**row(r), **(timing_columns(r, timed, source.name) if r["status"] == "ok" else {})}
            for r in records(runs_dir) if r["run"] not in failed}
    for name, r in rows.items():
        if r["status"] == "ok":
            r.update(test_sampling(Path(runs_dir) / name))
    rows.update({name: placeholder_row(name, "failed", error) for name, error in failed.items()})
    expected = [r.name for r in expected_runs()] if expected is None else expected
    for name in expected:
        rows.setdefault(name, placeholder_row(name, NOT_RUN, "no finished run under " + str(runs_dir)))
    frame = pd.DataFrame(sorted(rows.values(), key=lambda r: run_order(r["run"])), columns=COLUMNS)
    protocol = last_epoch.table_path(runs_dir)  # the original's protocol beside ours (`gfr last-epoch`)
    if protocol.is_file():
        frame = frame.merge(last_epoch.results_columns(last_epoch.read(protocol)), how="left", on="run")
    try:
        frame["chosen"] = frame.run == analysis.choice(frame, runs_dir)["chosen"]
    except ValueError:  # no run to choose from yet
        frame["chosen"] = False
    return frame


def write(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write results.csv atomically."""
    files.write_csv(path, frame)


def summary_text(frame: pd.DataFrame) -> str:
    """A short sweep summary: counts by status and each skipped or failed run with its reason."""
    counts = frame.status.value_counts().to_dict()
    lines = [f"{len(frame)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    for _, r in frame[frame.status != "ok"].iterrows():
        lines.append(f"  {r.run}: {r.status}: {r.reason}")
    return "\n".join(lines)
