"""The tables of notebook 05 (Beyond CelebA) as people read them, from the in-the-wild predictions and the runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gfr.data import faces
from gfr.report import tables
from gfr.study import analysis


def shown_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """A `wild.accuracy_table` with each accuracy and its Wilson interval in one cell, by model and source."""
    cells = [tables.pct_ci(*r) for r in zip(table.accuracy, table.ci_low, table.ci_high)]
    return table.assign(accuracy=cells).drop(columns=["ci_low", "ci_high"]).set_index(["model", "source"])


def run_and_framing(name: str) -> tuple[str, str]:
    """The run and framing of an in-the-wild predictions name: "run" (the default framing) or "run__framing"."""
    run, _, framing = name.partition("__")
    return run, framing or faces.FRAMINGS[0]


def framed_runs(predictions: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The predictions of the runs measured under several framings (every framing of each), by name."""
    return {name: frame for name, frame in predictions.items()
            if "__" in name or any(other.startswith(name + "__") for other in predictions)}


def framing_tables(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per run and framing, by source, from the accuracy table of `framed_runs`: the accuracy (Wilson interval),
    and the photos where no face was found."""
    if not len(table):
        return pd.DataFrame(), pd.DataFrame()
    run, framing = zip(*map(run_and_framing, table.model))
    rows = pd.DataFrame({"run": run, "framing": framing, "source": table.source,
                         "accuracy": [tables.pct_ci(*r) for r in zip(table.accuracy, table.ci_low, table.ci_high)],
                         "no face found": table["no face found"]})
    by = {"index": ["run", "framing"], "columns": "source", "aggfunc": "first"}
    return (rows.pivot_table(values="accuracy", **by),
            rows.pivot_table(values="no face found", **by).rename(columns=lambda c: f"no face: {c}"))


def framing_check(framed: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """`gfr predict --detect-faces` (the default framing) against the whole photo ("none"), per run of `framed_runs`
    and source: both accuracies, the difference and McNemar's exact test on the same photos."""
    rows = [{"run": name, "source": r.source, "--detect-faces": r.accuracy_a, "whole photo": r.accuracy_b,
             "difference (pp)": 100 * (r.accuracy_a - r.accuracy_b), "McNemar p": r.mcnemar_p}
            for name, frame in framed.items() if "__" not in name and f"{name}__none" in framed
            for r in analysis.paired_by_source(frame, framed[f"{name}__none"]).itertuples() if r.source != "all"]
    return pd.DataFrame(rows).set_index(["run", "source"]) if rows else pd.DataFrame()


def locate_table(located: dict) -> pd.DataFrame:
    """benchmarks/face_locate.py's measurement (reports/face-locate.json), one row per variant: validation seed
    mean and seeds, in-the-wild-dev overall and per source."""
    return tables.readable(pd.DataFrame({k: {"validation, seed mean": v["val_accuracy_mean"],
                                             "seeds": len(v["val_accuracy_per_seed"]),
                                             "in-the-wild-dev": v.get("wild_accuracy"),
                                             **{f"in-the-wild-dev, {s}": a for s, a in v.get("wild_by_source", {}).items()}}
                                         for k, v in located["variants"].items()}).T.astype({"seeds": int}))


def target_table(chosen: pd.Series, ours: pd.DataFrame, peer_predictions: pd.DataFrame | None,
                 wild_table: pd.DataFrame, peer_name: str) -> pd.DataFrame:
    """The chosen run (its results row; `ours`: its reported predictions) and the peer (`peer_name` in the
    in-the-wild `wild_table`) on the seed test split and on in-the-wild-dev, with McNemar against the peer."""
    target = [{"images": f"seed test split ({len(ours)})", "model": f"{chosen.run} (reported head)",
               "accuracy": tables.pct_ci(chosen.test_accuracy, chosen.test_accuracy_ci_low, chosen.test_accuracy_ci_high)}]
    if peer_predictions is not None:
        h2h = analysis.peer_head_to_head(ours, peer_predictions)
        target[0]["McNemar p vs peer"] = h2h["mcnemar"]["p_value"]
        target.append({"images": f"seed test split ({h2h['n']})", "model": "peer",
                       "accuracy": tables.pct_ci(h2h["peer_right"].mean(), *h2h["peer_ci"])})
    for model in (chosen.run, peer_name):
        hit = wild_table[(wild_table.model == model) & (wild_table.source == "all")] if len(wild_table) else []
        if len(hit):
            r = hit.iloc[0]
            target.append({"images": f"in-the-wild-dev ({r.n})", "model": model,
                           "accuracy": tables.pct_ci(r.accuracy, r.ci_low, r.ci_high),
                           "McNemar p vs peer (Holm)": r.get("McNemar p (Holm)", np.nan) if model != peer_name else np.nan})
    return pd.DataFrame(target).set_index(["images", "model"])
