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


def port_table(port: dict) -> pd.DataFrame:
    """benchmarks/descriptor_port.py's proof that the Keras port is dlib's network, as one table (reports/descriptor-port.json)."""
    rows = [("face chips compared (every CelebA image of the data folder)", f"{port['chips']:,}"),
            ("largest abs(port - dlib) over every descriptor component", f"{port['max_abs_diff']:.1e} "
             f"(target <= {port['targets']['max_abs_diff']:g})"),
            ("mean abs(port - dlib) per component", f"{port['mean_abs_diff']:.1e}"),
            ("smallest cosine between the two descriptors of a chip", f"1 - {1 - port['min_cosine']:.1e} "
             f"(target >= {port['targets']['min_cosine']:g})"),
            ("descriptor network only, chips/s: port / dlib (side by side)", f"{port['port_speedup']:.1f}x "
             f"({port['chips_per_s']['keras']:.0f} vs {port['chips_per_s']['dlib']:.1f})")]
    heads = port.get("heads")
    if heads:
        rows += [("heads on port features vs on dlib features: test seed mean",
                  f"{tables.pct(heads['seed_mean']['port'])} vs {tables.pct(heads['seed_mean']['dlib'])} "
                  f"({heads['seed_mean_diff_points']:+.2f} points; target within 0.1)"),
                 ("same label on the test images, worst seed",
                  f"{heads['same_label_share_min']:.1%} of {heads['test_images']:,} (target >= 99.9%)")]
    return pd.DataFrame(rows, columns=["measure", "value"]).set_index("measure")


def flip_table(flip: dict) -> pd.DataFrame:
    """benchmarks/flip_averaging.py's measure of flip averaging at test time (reports/flip-averaging.json): per face
    run, validation (which decides) and test (which does not) accuracy plain and flip-averaged, and the rule's call."""
    rows = [{"run": name, "validation, plain": r["val"]["plain"], "validation, flip-averaged": r["val"]["flip-averaged"],
                   "McNemar p (validation)": r["val"]["mcnemar_p"], "adopted by the rule": "yes" if r["adopted"] else "no",
                   "test, plain (chooses nothing)": r["test"]["plain"],
                   "test, flip-averaged (chooses nothing)": r["test"]["flip-averaged"], "head": r["head"]}
            for name, r in flip["runs"].items()]
    return tables.readable(pd.DataFrame(rows)).set_index("run")


def confirm_table(summary: dict) -> pd.DataFrame:
    """The in-the-wild-confirm scores (the chosen run and the peer, scored once) per source, from `gfr wild`'s
    summary (reports/wild-confirm.json)."""
    return shown_accuracy(pd.DataFrame(summary["models"]))


CONFIRM_OVERALL_TARGET = 0.97  # issue 19: the chosen model on in-the-wild-confirm, overall


def confirm_claims(summary: dict, peer_name: str = "peer") -> list[dict]:
    """Each stated confirm target (>= 97.0% overall; above the peer on each source, McNemar with Holm) as claim,
    measured and verdict."""
    table = pd.DataFrame(summary["models"])
    claims = []
    for model, rows in table[table.model != peer_name].groupby("model", sort=False):
        overall = rows[rows.source == "all"].iloc[0]
        claims.append({"claim": f"{model} overall >= {CONFIRM_OVERALL_TARGET:.1%}",
                       "measured": tables.pct_ci(overall.accuracy, overall.ci_low, overall.ci_high),
                       "verdict": analysis.target_verdict(overall.accuracy, overall.ci_low, CONFIRM_OVERALL_TARGET)})
        for _, r in rows[rows.source != "all"].iterrows():
            peer = table[(table.model == peer_name) & (table.source == r.source)]
            if peer.empty:
                continue
            theirs, p = peer.iloc[0].accuracy, r.get("McNemar p (Holm)", np.nan)
            claims.append({"claim": f"{model} above the peer on {r.source}",
                           "measured": f"{tables.pct(r.accuracy)} vs {tables.pct(theirs)} (McNemar p, Holm "
                                       f"{tables.p_value(p)})",
                           "verdict": analysis.better_verdict(r.accuracy, theirs, p)})
    return claims


def confirm_verdicts(summary: dict, peer_name: str = "peer") -> list[str]:
    """`confirm_claims` as sentences."""
    return [f"{c['claim']}: {c['measured']}: **{c['verdict']}**." for c in confirm_claims(summary, peer_name)]
