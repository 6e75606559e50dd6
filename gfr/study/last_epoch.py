"""The original study's protocol beside ours: every committed head refit once, evaluated at its kept and last epoch."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from gfr import files
from gfr.errors import GfrError
from gfr.params import load_params
from gfr.study import artefacts, metrics, published
from gfr.study.registry import RunId, run_order

FILE = "last-epoch.csv"  # beside the runs folder: reports/last-epoch.csv
REPRODUCED, NOT_REPRODUCED, NOT_REFIT = "reproduced", "not reproduced", "not refit"
NOT_REFIT_REASON = ("fine-tuned: not refit (iteration 4 is not one of the original's iterations, and a refit of its "
                    "top blocks costs 10 to 35 minutes per run on a 2-core CPU; `gfr last-epoch --refit-finetuned`)")
PARTS = ("val", "test")
COLUMNS = [
    "run", "backbone", "iteration", "epochs", "seed", "status", "note",
    "kept_epoch", "val_accuracy_kept", "test_accuracy_kept", "val_accuracy_last", "test_accuracy_last",
    "kept_test_prob_equals_committed", "head_sha256_equals_manifest",
]


def table_path(runs_dir: str | os.PathLike) -> Path:
    """Where the last-epoch table of the runs under `runs_dir` lives (reports/runs -> reports/last-epoch.csv)."""
    return Path(runs_dir).parent / FILE


def finished_runs(runs_dir: str | os.PathLike) -> list[str]:
    """The finished runs under runs_dir, the original's iterations of every backbone first, then the others."""
    return sorted(artefacts.finished_runs(runs_dir),
                  key=lambda n: (RunId.parse(n).iteration not in published.ITERATIONS, run_order(n)))


def committed_probs_equal(committed: pd.Series, recomputed: np.ndarray) -> bool:
    """Whether a committed P(male) column (float32 written as its shortest repr) holds exactly the recomputed
    float32 values, image by image."""
    return len(committed) == len(recomputed) and bool(
        np.array_equal(committed.to_numpy(np.float64).astype(np.float32), np.asarray(recomputed, np.float32)))


def accuracy(prob, labels) -> float:
    """The share of right calls (the study's threshold)."""
    return float(metrics.is_correct(prob, labels).mean())


def head_file_sha256(head) -> str:
    """The SHA-256 of a head's weights file as `gfr run` saves it."""
    from gfr.models.head import save_head

    with tempfile.TemporaryDirectory() as tmp:
        return save_head(head, Path(tmp) / artefacts.HEAD_FILE)


def head_seeds(prepared, feats, primary_seed: int):
    """Refit a head-only run's heads (run.train_heads); per seed: (seed, kept epoch, epochs, P(male) per split at
    the kept epoch, at the last epoch, the head file's hash for the reported seed or None)."""
    from gfr.models.head import head_with_weights, predict_proba
    from gfr.study import run

    for fit in run.train_heads(prepared, feats):
        last = head_with_weights(fit.last_weights)
        yield (fit.seed, fit.kept_epoch, prepared.params.epochs,
               {s: predict_proba(fit.head, feats.x[s]) for s in PARTS},
               {s: predict_proba(last, feats.x[s]) for s in PARTS},
               head_file_sha256(fit.head) if fit.seed == primary_seed else None)


def finetuned_seeds(prepared, feats, primary_seed: int):
    """Refit a fine-tuned run (head warm-up, then top blocks, as `gfr run`); per seed as `head_seeds`, the epochs
    being those of the fine-tuning phase."""
    from gfr.models.head import HEAD_NAME, predict_proba
    from gfr.study import run

    x = {s: np.asarray(feats.boundary["plain"][prepared.rows(s)], dtype=np.float32) for s in PARTS}
    for tuned in run.fine_tune_seeds(prepared, feats, run.train_heads(prepared, feats)):
        kept = {s: predict_proba(tuned.model, x[s], batch_size=64) for s in PARTS}  # as finish_finetune_run
        sha = head_file_sha256(tuned.model.get_layer(HEAD_NAME)) if tuned.seed == primary_seed else None
        tuned.model.set_weights(tuned.last_weights)
        yield (tuned.seed, tuned.kept_epoch, prepared.params.finetune.epochs, kept,
               {s: predict_proba(tuned.model, x[s], batch_size=64) for s in PARTS}, sha)


def refit_rows(name: str, data_dir, manifest_path, runs_dir: str | os.PathLike, overrides: dict | None = None,
               extra=(), cache_dir=None, progress: bool = True, refit_finetuned: bool = False) -> list[dict]:
    """Refit a committed run on its cached features as `gfr run` trains it (a fine-tuned run only with
    `refit_finetuned`); one row per seed: the kept and the last epoch's validation and test accuracy, and whether
    the refit is the committed training (the kept test P(male) bit for bit, the reported head's file hash)."""
    from gfr.study import run

    run_dir = Path(runs_dir) / name
    record = artefacts.load_record(run_dir)
    run_id = RunId.parse(name)
    base = {"run": name, "backbone": run_id.backbone, "iteration": run_id.iteration,
            "epochs": record["params"]["epochs"]}
    finetuned = bool(record["params"].get("finetune"))
    if finetuned and not refit_finetuned:
        return [{**base, "status": NOT_REFIT, "note": NOT_REFIT_REASON}]
    params = load_params(run_id.iteration, overrides, extra=list(extra))
    prepared = run.prepare_run(run_id.backbone, run_id.iteration, data_dir, manifest_path, runs_dir, params,
                               cache_dir, progress, forget_result=False)
    if prepared.skipped:
        raise GfrError(f"{name}: {prepared.skipped_reason}")
    feats = run.load_features(prepared)
    committed, y = artefacts.test_predictions(run_dir), feats.y
    rows = []
    for seed, kept_epoch, epochs, kept, last, sha in (finetuned_seeds if finetuned else head_seeds)(
            prepared, feats, record["primary_seed"]):
        column = artefacts.prob_column(seed)
        probs_equal = column in committed and committed_probs_equal(committed[column], kept["test"])
        sha_equal = None if sha is None else sha == record["head_sha256"]
        reproduced = probs_equal and sha_equal is not False
        note = [] if reproduced else ["the refit differs from the committed run: its numbers are this refit's"]
        if finetuned:
            note.append(f"fine-tuned: kept and last epoch of the {epochs}-epoch fine-tuning, after a "
                        f"{params.epochs}-epoch head warm-up")
        rows.append({**base, "epochs": epochs, "seed": seed, "status": REPRODUCED if reproduced else NOT_REPRODUCED,
                     "note": "; ".join(note), "kept_epoch": kept_epoch,
                     "val_accuracy_kept": accuracy(kept["val"], y["val"]),
                     "test_accuracy_kept": accuracy(kept["test"], y["test"]),
                     "val_accuracy_last": accuracy(last["val"], y["val"]),
                     "test_accuracy_last": accuracy(last["test"], y["test"]),
                     "kept_test_prob_equals_committed": probs_equal, "head_sha256_equals_manifest": sha_equal})
        if progress:
            r = rows[-1]
            print(f"{name} seed {seed}: {r['status']}; test accuracy kept epoch {kept_epoch} "
                  f"{r['test_accuracy_kept']:.4f}, last epoch {epochs} {r['test_accuracy_last']:.4f}",
                  file=sys.stderr)
    return rows


def read(path: str | os.PathLike) -> pd.DataFrame:
    """A last-epoch table; a clear error for a file that is not one."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise GfrError(f"{path}: cannot read the last-epoch table ({str(exc).splitlines()[0][:160]})") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise GfrError(f"{path}: not a last-epoch table (no column {', '.join(missing)})")
    return table


def write(rows: list[dict], path: str | os.PathLike) -> pd.DataFrame:
    """Write the table atomically, in the registry's run order, keeping the earlier rows of runs not in `rows`;
    return it as read back."""
    fresh = pd.DataFrame(rows, columns=COLUMNS)
    if Path(path).is_file():
        earlier = read(path)
        fresh = pd.concat([earlier[~earlier.run.isin(fresh.run)], fresh], ignore_index=True)
    fresh = fresh.iloc[sorted(range(len(fresh)), key=lambda i: (run_order(fresh.run.iloc[i]), fresh.seed.iloc[i]))]
    files.write_csv(path, fresh)
    return read(path)


def refit(names: list[str], data_dir, manifest_path, runs_dir: str | os.PathLike, out: str | os.PathLike,
          overrides: dict | None = None, extra=(), cache_dir=None, progress: bool = True,
          refit_finetuned: bool = False) -> pd.DataFrame:
    """Refit each named run in turn, rewriting `out` after each (a stopped pass keeps the runs it finished)."""
    for name in names:  # every name checked before the first refit
        if artefacts.load_record(Path(runs_dir) / RunId.parse(name).name)["status"] != "ok":
            raise GfrError(f"{Path(runs_dir) / name / artefacts.MANIFEST}: run {name} is not finished (status not ok)")
    table = None
    for i, name in enumerate(names, 1):
        if progress:
            print(f"[{i}/{len(names)}] {name}", file=sys.stderr)
        table = write(refit_rows(name, data_dir, manifest_path, runs_dir, overrides, extra, cache_dir, progress,
                                 refit_finetuned), out)
    return table if table is not None else read(out)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per run: the seed means of validation and test accuracy at the kept and at the last epoch, the last
    epoch's test seed mean with the results' confidence interval (metrics.seed_mean_ci), and whether every seed's
    refit is the committed training."""
    rows = []
    for name, seeds in table.groupby("run", sort=False):
        first = seeds.iloc[0]
        out = {"run": name, "backbone": first.backbone, "iteration": int(first.iteration), "epochs": first.epochs,
               "status": first.status if len(set(seeds.status)) == 1 else NOT_REPRODUCED,
               "n_seeds": int(seeds.seed.notna().sum())}
        if first.status != NOT_REFIT:
            out["kept_epoch_mean"] = float(seeds.kept_epoch.mean())
            for col in ("val_accuracy_kept", "test_accuracy_kept", "val_accuracy_last", "test_accuracy_last"):
                out[f"{col}_seed_mean"] = metrics.seed_summary(seeds[col])[0]
            out["test_accuracy_last_seed_ci_low"], out["test_accuracy_last_seed_ci_high"] = \
                metrics.seed_mean_ci(seeds.test_accuracy_last)
        rows.append(out)
    return pd.DataFrame(rows)


# Iteration 2 is iteration 1 trained longer (params/it2.yaml: 50 epochs instead of 20, the same input and heads).
LONGER_FIT_OF = {2: 1}


def kept_shorter_fit_heads(table: pd.DataFrame, backbone: str, iteration: int) -> float:
    """How many seeds of a longer fit (iteration 2) kept the very head of the shorter one (iteration 1): the same
    kept epoch and test accuracy, the epoch within the shorter fit (same features, parameters and seed give the
    same first epochs, bit for bit); NaN for other iterations."""
    shorter = LONGER_FIT_OF.get(iteration)
    runs = {it: table[(table.backbone == backbone) & (table.iteration == it)].set_index("seed")
            for it in (iteration, shorter)}
    if shorter is None or runs[shorter].empty:
        return float("nan")
    longer, short = runs[iteration], runs[shorter].reindex(runs[iteration].index)
    same = ((longer.kept_epoch <= short.epochs) & (longer.kept_epoch == short.kept_epoch)
            & (longer.test_accuracy_kept == short.test_accuracy_kept))
    return int(same.sum())


def protocol_table(table: pd.DataFrame) -> pd.DataFrame:
    """The original's iterations under both protocols, per backbone: test accuracy seed mean (%) at the kept
    (best-validation) epoch and at the last epoch (with the seed mean's CI), beside the original's published
    number; for iteration 2, how many seeds kept iteration 1's head (best-epoch keeping cannot show the original's
    it1 -> it2 change there)."""
    runs = summary(table)
    runs = runs[runs.iteration.isin(published.ITERATIONS) & (runs.status != NOT_REFIT)]
    return pd.DataFrame({
        "backbone": runs.backbone, "iteration": runs.iteration, "epochs": runs.epochs,
        "kept epoch (mean)": runs.kept_epoch_mean,
        "test % at kept epoch": 100 * runs.test_accuracy_kept_seed_mean,
        "test % at last epoch": 100 * runs.test_accuracy_last_seed_mean,
        "its 95% CI low": 100 * runs.test_accuracy_last_seed_ci_low,
        "its 95% CI high": 100 * runs.test_accuracy_last_seed_ci_high,
        "original's test %": [published.test_accuracy(b, i) for b, i in zip(runs.backbone, runs.iteration)],
        "seeds keeping iteration 1's head": pd.array([kept_shorter_fit_heads(table, b, i) for b, i in
                                                      zip(runs.backbone, runs.iteration)], dtype="Int64"),
        "seeds": runs.n_seeds, "refit": runs.status,
    }).reset_index(drop=True)


def results_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The columns results.csv takes from the last-epoch table, per run: the last epoch's test accuracy seed mean
    with its confidence interval, and whether the refit reproduced the committed run."""
    runs = summary(table).reindex(columns=["run", "status", "test_accuracy_last_seed_mean",
                                           "test_accuracy_last_seed_ci_low", "test_accuracy_last_seed_ci_high"])
    return runs.rename(columns={"status": "last_epoch_refit",
                                "test_accuracy_last_seed_mean": "last_epoch_test_accuracy_seed_mean",
                                "test_accuracy_last_seed_ci_low": "last_epoch_test_accuracy_seed_ci_low",
                                "test_accuracy_last_seed_ci_high": "last_epoch_test_accuracy_seed_ci_high"})
