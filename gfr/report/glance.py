"""Results at a glance, the report's first page: the original beside ours, the chosen model, targets, reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gfr.report import beyond, tables
from gfr.study import analysis, published

CHOSEN_TEST_TARGET = 0.985  # issue 19: the chosen model's test seed mean

INTERVALS = ("Two intervals, two questions. **Seed 95% CI**: how far the mean over training seeds could move with "
             "other seeds, on the same 1,000 test images (Student t over seeds). **Test-sampling 95% interval**: how "
             "far it could move with another draw of 1,000 test images, the seeds held fixed (bootstrap over the test "
             "images, BCa). The second is the wider one and the one to read before calling two runs different; the "
             "pairwise tests (Welch over seeds and McNemar on the same images, Holm-corrected) are in the body.")


def _cell(row: pd.Series, prefix: str) -> str:
    """'mean (low–high)' from `<prefix>_seed_mean` / `_seed_ci_low` / `_seed_ci_high` columns, or a dash."""
    mean = row.get(f"{prefix}_seed_mean")
    if not tables.known(mean):
        return tables.DASH
    return tables.pct_ci(mean, row.get(f"{prefix}_seed_ci_low"), row.get(f"{prefix}_seed_ci_high"))


def original_beside_ours(results: pd.DataFrame) -> pd.DataFrame:
    """The original's iterations of every backbone: its published accuracy, ours under its protocol (last epoch)
    and under ours (best-validation epoch), both as seed means with their seed 95% CI, the test-sampling interval,
    and the timing pass's inference time."""
    rows = []
    for _, r in results[results.iteration.isin(published.ITERATIONS)].iterrows():
        ok = r.status == "ok"
        original = r.get("original_test_accuracy")
        rows.append({
            "backbone": r.backbone, "iteration": int(r.iteration),
            "original write-up": f"{original:.1f}%" if tables.known(original) else "not in the original",
            "ours, original protocol (last epoch)": _cell(r, "last_epoch_test_accuracy") if ok else
            f"{r.status}: {tables.short_reason(r.backbone, r.reason)}",
            "ours, declared protocol (best-validation epoch)": _cell(r, "test_accuracy") if ok else "",
            "test-sampling 95% interval": tables.pct_range(r.test_sampling_ci_low, r.test_sampling_ci_high) if ok else "",
            "inference, test split (timing pass)": inference_cell(r) if ok else "",
        })
    return pd.DataFrame(rows).set_index(["backbone", "iteration"])


def iteration_two_note(protocol: pd.DataFrame) -> str:
    """What best-epoch keeping does to iteration 2 (iteration 1's head trained 50 epochs instead of 20), from
    last_epoch.protocol_table: how many seeds kept iteration 1's very head, and both protocols' it1 -> it2 change."""
    lines, original = [], "original's test %"
    for backbone, rows in protocol.groupby("backbone", sort=False):
        by_it = rows.set_index("iteration")
        if not {1, 2} <= set(by_it.index):
            continue
        one, two = by_it.loc[1], by_it.loc[2]
        kept = two["seeds keeping iteration 1's head"]
        lines.append(f"{backbone}: {kept} of {int(two.seeds)} seeds kept iteration 1's very head (their best validation "
                     f"epoch lies within iteration 1's {int(one.epochs)}), so the declared protocol moves "
                     f"{one['test % at kept epoch']:.2f}% -> {two['test % at kept epoch']:.2f}%; tested after the last "
                     f"epoch, as the original did: {one['test % at last epoch']:.2f}% -> "
                     f"{two['test % at last epoch']:.2f}%"
                     + (f" (the original: {one[original]:.1f}% -> {two[original]:.1f}%)" if tables.known(one[original]) else "")
                     + ".")
    if not lines:
        return ""
    return ("**What keeping the best-validation epoch does to iteration 2.** Iteration 2 is iteration 1 trained for "
            "more epochs; keeping each head's best-validation epoch returns iteration 1's head whenever that epoch "
            "comes early, so the original's it1 -> it2 change cannot show under the declared protocol. "
            + " ".join(lines))


def inference_cell(row: pd.Series) -> str:
    """'median s (min–max), img/s' of the timing pass, or why there is no time."""
    if not tables.known(row.get("inference_s")):
        return "not timed"
    low, high = row.get("inference_min_s"), row.get("inference_max_s")
    spread = f" ({low:.1f}–{high:.1f})" if tables.known(low) and tables.known(high) else ""
    return f"{row.inference_s:.1f} s{spread}, {row.images_per_s:.0f} img/s"


def chosen_line(results: pd.DataFrame, runs_dir) -> str:
    """The chosen model, the rule that chose it, and its test accuracy with both intervals."""
    choice = analysis.choice(results, runs_dir)
    c = results[results.run == choice["chosen"]].iloc[0]
    return (f"**Chosen model: {c.run}** ({int(c.n_seeds)} seeds), by the one validation rule (the test split plays "
            f"no part): validation seed mean {tables.pct(c.val_accuracy_seed_mean, 2)}. Test seed mean "
            f"**{tables.pct(c.test_accuracy_seed_mean, 2)}** (seed 95% CI "
            f"{tables.pct_range(c.test_accuracy_seed_ci_low, c.test_accuracy_seed_ci_high, 2)}; test-sampling 95% "
            f"interval {tables.pct_range(c.test_sampling_ci_low, c.test_sampling_ci_high, 2)}); inference "
            f"{inference_cell(c)} in the timing pass. The original chose "
            f"{published.CHOSEN[0]} iteration {published.CHOSEN[1]} "
            f"({published.test_accuracy(*published.CHOSEN)}% on its test images).")


def target_rows(results: pd.DataFrame, runs_dir, peer_predictions: pd.DataFrame | None, confirm: dict | None,
                predict_bench: dict | None) -> pd.DataFrame:
    """Every stated target and every 'better than' of the study, with the measured number and its verdict."""
    choice = analysis.choice(results, runs_dir)
    c = results[results.run == choice["chosen"]].iloc[0]
    rows = [{"claim": f"chosen model's test seed mean >= {CHOSEN_TEST_TARGET:.1%}",
             "measured": f"{tables.pct(c.test_accuracy_seed_mean, 2)} (test-sampling "
                         f"{tables.pct_range(c.test_sampling_ci_low, c.test_sampling_ci_high, 2)})",
             "verdict": analysis.target_verdict(c.test_accuracy_seed_mean, c.test_sampling_ci_low, CHOSEN_TEST_TARGET)}]
    if peer_predictions is not None:
        h2h = analysis.peer_head_to_head(analysis.reported_predictions(runs_dir, c.run), peer_predictions)
        ours, theirs, p = h2h["ours_right"].mean(), h2h["peer_right"].mean(), h2h["mcnemar"]["p_value"]
        rows.append({"claim": f"{c.run} (reported head) better than the peer on the {h2h['n']:,} CelebA test images",
                     "measured": f"{tables.pct(ours)} vs {tables.pct(theirs)}, McNemar p {tables.p_value(p)}",
                     "verdict": analysis.better_verdict(ours, theirs, p)})
    if confirm is not None:
        rows += [{"claim": f"in-the-wild-confirm: {line['claim']}", "measured": line["measured"],
                  "verdict": line["verdict"]} for line in beyond.confirm_claims(confirm)]
    for ratio in (predict_bench or {}).get("ratios", []):
        if ratio.get("target") is None:
            continue
        met = ratio["value"] >= ratio["target"] if ratio["target_kind"] == ">=" else ratio["value"] <= ratio["target"]
        rows.append({"claim": f"{ratio['name']} {ratio['target_kind']} {ratio['target']:g}",
                     "measured": f"{ratio['value']:.2f} (benchmarks/results/predict-cpu.json, ratio of medians)",
                     "verdict": "met" if met else "missed"})
    return pd.DataFrame(rows).set_index("claim")


def reproducibility_line(verify_table: Path, results: pd.DataFrame, runs_dir=None) -> str:
    """How many finished runs the last `make verify` reproduced bit for bit, and which it did not check (a run
    committed anew since its check, another head in `runs_dir`, counts as not checked)."""
    from gfr.study import verify

    finished = list(results[results.status == "ok"].run)
    if not Path(verify_table).is_file():
        return f"`make verify` has not been run: none of the {len(finished)} finished runs is checked."
    table = pd.read_csv(verify_table)
    if runs_dir is not None:
        table = table[~table.run.isin(verify.changed_since(table, runs_dir))]
    checked = table[table.run.isin(finished) & (table.rule != "shown only")]
    exact = [run for run, rows in checked.groupby("run") if rows.ok.astype(bool).all()
             and (rows.rule == "bit-exact").all()]
    broken = sorted(set(checked[~checked.ok.astype(bool)].run))
    missing = [run for run in finished if run not in set(checked.run)]
    return (f"**Reproducibility**: `make verify` reran {len(set(checked.run))} of the {len(finished)} finished runs "
            f"from an empty feature cache; {len(exact)} reproduced bit for bit (heads, every test prediction, every "
            f"metric)" + (f"; outside tolerance: {', '.join(broken)}" if broken else "")
            + (f"; not checked: {', '.join(missing)}" if missing else "") + ".")


def not_run_lines(results: pd.DataFrame) -> list[str]:
    """One line per backbone with runs that did not finish: which iterations and why."""
    lines = []
    for backbone, rows in results[results.status != "ok"].groupby("backbone", sort=False):
        its = ", ".join(str(int(i)) for i in rows.iteration)
        reasons = sorted({tables.short_reason(backbone, r) for r in rows.reason})
        lines.append(f"- **{backbone}** (iterations {its}): {rows.status.iloc[0]}: {'; '.join(reasons)}.")
    return lines


def read_json(path) -> dict | None:
    """A committed JSON result, or None where it has not been made."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
