"""A saved run's files: head weights, history, seeds, test predictions, and the manifest (written last: finished)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from gfr import files
from gfr.errors import GfrError
from gfr.study import metrics

MANIFEST = "manifest.json"
HEAD_FILE = "head.weights.h5"
FINETUNED_FILE = "finetuned.weights.h5"  # top block(s) + head: ~60 MB for ResNet50, so not committed
HISTORY_FILE = "history.csv"
SEEDS_FILE = "seeds.csv"
TEST_PREDICTIONS_FILE = "test_predictions.csv"
VAL_PREDICTIONS_FILE = "val_predictions.csv"  # every seed's validation P(male): what an ensemble is chosen on
FAILED_SUFFIX = ".failed.ipynb"  # the partial notebook of a failed execution, kept beside <run>.ipynb


def prob_column(seed: int) -> str:
    """The test-predictions column holding one head seed's P(male)."""
    return f"prob_seed{seed}"


def write_manifest(run_dir: Path, record: dict) -> dict:
    """Write a run's manifest atomically; return it."""
    files.write_json(Path(run_dir) / MANIFEST, record)
    return record


def finished_runs(runs_dir: str | os.PathLike) -> list[str]:
    """Names of the runs under `runs_dir` whose manifest says they finished (status ok), in registry order."""
    from gfr.study.registry import run_order

    names = [m.parent.name for m in Path(runs_dir).glob(f"*/{MANIFEST}")
             if json.loads(m.read_text()).get("status") == "ok"]
    return sorted(names, key=run_order)


def load_record(run_dir: str | os.PathLike) -> dict:
    """A saved run's manifest."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise GfrError(f"no run manifest at {path}")
    return json.loads(path.read_text())


def inside(run_dir: Path, name: str) -> Path:
    """`run_dir/name`, refusing a file name from a manifest that would escape the run folder."""
    path = (Path(run_dir) / name).resolve()
    if not path.is_relative_to(Path(run_dir).resolve()):
        raise GfrError(f"{Path(run_dir) / MANIFEST}: path {name!r} escapes the run folder")
    return path


def seed_row(seed: int, history: dict, y_test, prob_test, kept_epoch: int, row: int | None = None) -> dict:
    """One seed's train/val numbers at its kept epoch (1-based; history `row` if the history has more phases)."""
    test_m = metrics.summarize(y_test, prob_test)
    i = kept_epoch - 1 if row is None else row
    return {
        "seed": seed, "kept_epoch": kept_epoch,
        "train_accuracy": history["accuracy"][i], "train_loss": history["loss"][i],
        "val_accuracy": history["val_accuracy"][i], "val_loss": history["val_loss"][i],
        "test_accuracy": test_m["accuracy"], "test_roc_auc": test_m["roc_auc"],
    }


def save_run(run_dir: Path, record: dict, seeds_rows: list[dict], histories: list[pd.DataFrame],
             test_ids, y_test, test_probs: dict, head_sha: str, timed: dict, gap: float, stages: dict,
             val_predictions: pd.DataFrame | None = None) -> dict:
    """Write history, seeds, test (and validation) predictions and the manifest (last, so its presence means
    'finished')."""
    seeds_frame = pd.DataFrame(seeds_rows)
    primary = seeds_rows[0]["seed"]
    files.write_csv(run_dir / HISTORY_FILE, pd.concat(histories, ignore_index=True))
    files.write_csv(run_dir / SEEDS_FILE, seeds_frame)
    files.write_csv(run_dir / TEST_PREDICTIONS_FILE, pd.DataFrame({"image_id": test_ids, "label": y_test, **test_probs}))
    if val_predictions is not None:
        files.write_csv(run_dir / VAL_PREDICTIONS_FILE, val_predictions)
    summary = {}
    for col in seeds_frame.columns.drop(["seed", "kept_epoch"]):
        summary[f"{col}_mean"], summary[f"{col}_std"] = metrics.seed_summary(seeds_frame[col])
        summary[f"{col}_ci_low"], summary[f"{col}_ci_high"] = metrics.seed_mean_ci(seeds_frame[col])
    first = seeds_rows[0]
    return write_manifest(run_dir, {
        **record,
        "status": "ok",
        "head_sha256": head_sha,
        "primary_seed": primary,
        "train_accuracy": first["train_accuracy"], "train_loss": first["train_loss"],
        "val_accuracy": first["val_accuracy"], "val_loss": first["val_loss"],
        "test": metrics.summarize(y_test, test_probs[prob_column(primary)]),
        "seeds": summary,
        "inference": timed,
        "full_model_vs_cached_max_abs_diff": gap,
        "stage_seconds": {**stages, "inference_timing": sum(timed["runs_s"])},
    })


def test_predictions(run_dir: str | os.PathLike, part: str = "test") -> pd.DataFrame:
    """A run's saved test (or `part="val"`: validation) predictions (image_id, label, prob_seed<k>...)."""
    name = {"test": TEST_PREDICTIONS_FILE, "val": VAL_PREDICTIONS_FILE}[part]
    return pd.read_csv(Path(run_dir) / name, dtype={"image_id": str})


def seeds_table(run_dir: str | os.PathLike) -> pd.DataFrame:
    """A run's per-seed numbers (seed, train/val/test accuracy ...)."""
    return pd.read_csv(Path(run_dir) / SEEDS_FILE)


def history(run_dir: str | os.PathLike) -> pd.DataFrame:
    """A run's per-epoch history (every seed; a phase column for fine-tuning)."""
    return pd.read_csv(Path(run_dir) / HISTORY_FILE)


def failed_path(target: str | os.PathLike) -> Path:
    """Where the partial notebook of a failed execution is kept."""
    target = Path(target)
    return target.with_name(target.stem + FAILED_SUFFIX)


def error_of(notebook_path: str | os.PathLike) -> str:
    """The error a failed executed notebook stopped on, as one line."""
    import nbformat

    nb = nbformat.read(notebook_path, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"{out.get('ename')}: {str(out.get('evalue', '')).splitlines()[0] if out.get('evalue') else ''}"
    return "execution stopped (no error output recorded)"
