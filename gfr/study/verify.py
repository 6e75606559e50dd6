"""Check a rerun of the study against the committed runs: every number, its deviation and its declared tolerance.

Promise, by where the rerun ran (`numerics_id`: CPU model, SIMD flags, caches, cores, backend versions and the
settings that change kernels): on the same kind of machine every head, prediction and metric is bit-exact;
elsewhere the seed mean of each run's test and validation accuracy stays within 2 seed standard deviations of
the committed one and the reported head's test accuracy within the committed Wilson 95% interval. Timings are
shown, never checked (they belong to the machine).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pandas as pd

from gfr import files
from gfr.errors import GfrError
from gfr.study import artefacts
from gfr.study.hardware import hardware_id
from gfr.study.registry import expected_runs

SPREADS = 2.0  # tolerance of a seed mean across machines, in committed seed standard deviations
PROMISE = (f"Bit-exact on the same kind of machine (same CPU model, SIMD flags, caches, cores, thread settings and "
           f"library versions): every head file, prediction and metric. On another machine: each run's seed-mean test "
           f"and validation accuracy within {SPREADS:g} seed standard deviations of the committed one, and the "
           f"reported head's test accuracy within the committed Wilson 95% CI; timings are the machine's own. "
           f"`make verify` reruns everything from an empty feature cache and checks this number by number.")


def numerics_id(hardware: dict) -> tuple:
    """What decides the bits of a run's numbers: the machine's kernels, threads and library versions."""
    keys = ("cpu", "cores", "cpu_flags", "cpu_caches", "numerics_env", "threads", "keras", "keras_backend",
            "tensorflow", "jax", "torch")
    return tuple((k, repr(hardware.get(k))) for k in keys)


def _row(run, number, committed, fresh, tolerance, rule):
    deviation = fresh - committed if isinstance(committed, (int, float)) and isinstance(fresh, (int, float)) else None
    if rule == "bit-exact":
        ok = committed == fresh
    elif rule == "shown only":
        ok = True
    else:
        ok = deviation is not None and abs(deviation) <= tolerance + 1e-12
    return {"run": run, "number": number, "committed": committed, "fresh": fresh, "deviation": deviation,
            "tolerance": tolerance, "rule": rule, "ok": bool(ok)}


def compare_run(name: str, committed_dir: Path, fresh_dir: Path) -> list[dict]:
    """The checked numbers of one run (one row each)."""
    c_path, f_path = committed_dir / name / artefacts.MANIFEST, fresh_dir / name / artefacts.MANIFEST
    c = artefacts.load_record(committed_dir / name) if c_path.is_file() else {"status": "not run"}
    f = artefacts.load_record(fresh_dir / name) if f_path.is_file() else {"status": "not run"}
    rows = [_row(name, "status", c["status"], f["status"], 0, "bit-exact")]
    if c["status"] != "ok" or f["status"] != "ok":
        return rows
    same = numerics_id(c["hardware"]) == numerics_id(f["hardware"])
    rows.append(_row(name, "machine", hardware_id(c["hardware"]), hardware_id(f["hardware"]), 0, "shown only"))
    rows.append(_row(name, "same kind of machine (numerics_id)", True, same, 0, "shown only"))
    cs, fs = c["seeds"], f["seeds"]
    if same:
        rows.append(_row(name, "head_sha256", c["head_sha256"], f["head_sha256"], 0, "bit-exact"))
        c_pred = artefacts.test_predictions(committed_dir / name)
        f_pred = artefacts.test_predictions(fresh_dir / name)
        rows.append(_row(name, "test predictions (every seed)", True, bool(c_pred.equals(f_pred)), 0, "bit-exact"))
    for split in ("test", "val"):
        mean, std = f"{split}_accuracy_mean", f"{split}_accuracy_std"
        tol = 0.0 if same else (SPREADS * cs[std] if cs.get(std) is not None and not math.isnan(cs[std]) else 0.0)
        rule = "bit-exact" if same else f"within {SPREADS:g} seed std"
        rows.append(_row(name, f"{split} accuracy, seed mean", cs[mean], fs[mean], tol, rule))
    ct, ft = c["test"], f["test"]
    tol = 0.0 if same else max(ct["accuracy"] - ct["accuracy_ci_low"], ct["accuracy_ci_high"] - ct["accuracy"])
    rows.append(_row(name, "test accuracy, reported head", ct["accuracy"], ft["accuracy"], tol,
                     "bit-exact" if same else "within the committed Wilson 95% CI"))
    rows.append(_row(name, "inference median (s)", c["inference"]["median_s"], f["inference"]["median_s"], 0,
                     "shown only"))
    return rows


def compare(committed_dir: str | os.PathLike, fresh_dir: str | os.PathLike, runs: list[str] | None = None) -> pd.DataFrame:
    """Every checked number of every expected run: committed, fresh, deviation, tolerance, rule, ok."""
    names = runs or [r.name for r in expected_runs()]
    rows = [row for name in names for row in compare_run(name, Path(committed_dir), Path(fresh_dir))]
    return pd.DataFrame(rows, columns=["run", "number", "committed", "fresh", "deviation", "tolerance", "rule", "ok"])


def merge(earlier: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """An earlier record with the rows of the runs `table` checks replaced by its rows (verify --runs keeps the
    others' earlier rows)."""
    kept = earlier[~earlier.run.isin(set(table.run))]
    return pd.concat([kept, table], ignore_index=True)


def check_run_names(runs: list[str] | None) -> None:
    """A clear error for a run name that is not in the study's registry."""
    unknown = sorted(set(runs or ()) - {r.name for r in expected_runs()})
    if unknown:
        raise GfrError(f"--runs: {', '.join(unknown)} not in the study's registry (`gfr runs` lists them)")


def rerun(runs: list[str] | None, data_dir, manifest_path, fresh_dir: str | os.PathLike,
          cache_dir: str | os.PathLike) -> None:
    """Rerun `runs` (default: every run of the registry) into `fresh_dir` from an empty feature cache, as
    `make report` runs them."""
    from gfr.study import run

    fresh = [Path(fresh_dir) / name for name in runs] if runs else [Path(fresh_dir)]
    for path in (*fresh, Path(cache_dir)):
        shutil.rmtree(path, ignore_errors=True)
    for r in expected_runs():
        if not runs or r.name in runs:
            run.run_one(r.backbone, r.iteration, data_dir, manifest_path, fresh_dir, cache_dir=cache_dir)


def record(committed_dir: str | os.PathLike, fresh_dir: str | os.PathLike, runs: list[str] | None,
           out: str | os.PathLike) -> pd.DataFrame:
    """`compare` of `runs` (default: every run), written to `out`; with `runs` named, the other runs keep their
    rows of the earlier record in `out`."""
    table = compare(committed_dir, fresh_dir, runs or None)
    if runs and Path(out).is_file():
        table = merge(pd.read_csv(out), table)
    files.write_csv(out, table)
    return table


def changed_since(table: pd.DataFrame, committed_dir: str | os.PathLike) -> list[str]:
    """Runs whose committed head differs from the one the record checked: rerun since, so no longer verified."""
    heads = table[table.number == "head_sha256"]
    changed = []
    for r in heads.itertuples():
        path = Path(committed_dir) / r.run / artefacts.MANIFEST
        now = artefacts.load_record(Path(committed_dir) / r.run).get("head_sha256") if path.is_file() else None
        if now != r.committed:
            changed.append(r.run)
    return changed


def environment_note(committed_dir: str | os.PathLike, runs: list[str] | None = None, here: dict | None = None) -> str:
    """One line: whether this environment (its installed packages, `hardware.environment()`) is the one the
    committed runs recorded; runs committed before the locks record none, which is said, not guessed."""
    from gfr.study import hardware

    here = hardware.environment() if here is None else here
    recorded, missing = {}, []
    for name in runs or [r.name for r in expected_runs()]:
        path = Path(committed_dir) / name / artefacts.MANIFEST
        if not path.is_file():
            continue
        hw = artefacts.load_record(Path(committed_dir) / name).get("hardware") or {}
        if hw.get("environment_packages_sha256"):
            key = (hw["environment_packages_sha256"], hw.get("environment_lock") or "none")
            recorded.setdefault(key, []).append(name)
        else:
            missing.append(name)
    lock = here.get("environment_lock") or "none"
    this = (f"this one matches requirements/{lock} (packages sha256 {here['environment_packages_sha256'][:12]})"
            if here.get("environment_lock_sha256") else
            f"this one matches no lock (packages sha256 {here['environment_packages_sha256'][:12]}"
            + (": " + "; ".join(here.get("environment_differences", [])) if here.get("environment_differences") else "")
            + ")")
    unrecorded = (f"{len(missing)} committed run(s) predate the locks and record no environment"
                  f"{', so for them it cannot be said' if not recorded else ''}") if missing else ""
    if not recorded:
        return f"environment: {unrecorded or 'no committed run to compare with'}; {this}"
    differ = {key: names for key, names in recorded.items() if key[0] != here["environment_packages_sha256"]}
    if not differ:
        verdict = f"environment: the same as the committed runs' ({sum(map(len, recorded.values()))} runs); {this}"
    else:
        theirs = "; ".join(f"{len(names)} run(s) on {lock} (packages sha256 {sha[:12]}, e.g. {names[0]})"
                           for (sha, lock), names in differ.items())
        verdict = f"environment DIFFERS from the committed runs': {theirs}; {this}"
    return verdict + (f"; {unrecorded}" if unrecorded else "")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per rule: how many numbers were checked, how many kept their tolerance, and the largest deviation."""
    checked = table[table.rule != "shown only"].copy()
    checked["abs_deviation"] = pd.to_numeric(checked.deviation, errors="coerce").abs()
    out = checked.groupby("rule", sort=False).agg(numbers=("ok", "size"), within=("ok", "sum"),
                                                   largest_abs_deviation=("abs_deviation", "max"))
    return out.reset_index()
