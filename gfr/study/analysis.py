"""Cross-run analysis for the report: parameter tables, noise between runs, model choice, error analysis."""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd

from gfr.data import celeba
from gfr.models import backbones
from gfr.params import NATIVE_SIZE, PARAMS_DIR, known_iterations, load_params
from gfr.study import artefacts, metrics


def params_table(params_dir: str | os.PathLike = PARAMS_DIR, extra: list | None = None) -> pd.DataFrame:
    """One row per iteration, generated from params/ (never typed by hand)."""
    rows = []
    for it in known_iterations(params_dir):
        p = load_params(it, params_dir=params_dir, extra=extra)
        h, w = p.image_size
        rows.append({
            "iteration": it,
            "description": p.description,
            "image size fed (H x W)": f"{h} x {w}",
            "model input shape": "None x None x 3" if p.native_input else f"{h} x {w} x 3",
            "epochs": p.epochs,
            "batch size": p.head.batch_size,
            "optimizer": f"Adam (lr {p.head.learning_rate:g})",
            "loss": "binary cross-entropy",
            "head": f"GAP -> Dense({p.head.dense_units}, relu) -> Dense(1, sigmoid)",
            "head seeds": ", ".join(map(str, p.head.seeds)),
            "split seed": p.seed,
            "weights": p.weights,
        })
    return pd.DataFrame(rows).set_index("iteration")


def architecture_table() -> pd.DataFrame:
    """The backbones of the registry: what the network sees at CelebA's size, pooled feature size, preprocessing,
    the weights files looked for (the one each run used is in its manifest and the report's departures)."""
    return pd.DataFrame([
        {"backbone": b.name, "at CelebA's size the network sees": b.network_input(NATIVE_SIZE, b.kind == "keras"),
         "pooled features": b.feature_dim, "preprocessing": b.preprocessing,
         "weights files looked for": " or ".join((b.weights_file, *b.alternate_files))}
        for b in backbones.REGISTRY.values()
    ]).set_index("backbone")


def reported_predictions(runs_dir: str | os.PathLike, run: str) -> pd.DataFrame:
    """A run's test predictions by its reported head: image_id, label, p_male (the primary seed's P(male))."""
    run_dir = Path(runs_dir) / run
    preds = artefacts.test_predictions(run_dir)
    column = artefacts.prob_column(artefacts.load_record(run_dir)["primary_seed"])
    return preds[["image_id", "label"]].assign(p_male=preds[column].values)


def seed_accuracies(runs_dir, run: str) -> np.ndarray:
    """Test accuracy of each head seed of a run."""
    return artefacts.seeds_table(Path(runs_dir) / run).test_accuracy.to_numpy()


ALPHA = 0.05
NOISE_RULE = (f"A difference between two runs counts as larger than the noise only when both tests say so at "
              f"{ALPHA:g} after Holm's correction for the number of pairs: Welch's t-test on the runs' per-seed "
              f"test accuracies, and McNemar's exact test on their reported heads' predictions of the same test "
              f"images. Where Welch's test is undefined (a run with one seed) the verdict is 'undetermined'.")


def target_verdict(estimate: float, low: float, target: float) -> str:
    """A stated 'at least `target`' against an estimate and the lower bound of its 95% interval."""
    if estimate < target:
        return "missed"
    return "met" if low >= target else "met as a point estimate only (the 95% interval reaches below the target)"


def better_verdict(ours: float, theirs: float, p: float) -> str:
    """A 'better than' claim against its test's p-value (already corrected where several are made)."""
    if ours <= theirs:
        return "not better"
    return "better, significant" if p < ALPHA else "better as a point estimate only (not significant)"


def noise_table(runs_dir, runs: list[str]) -> pd.DataFrame:
    """Every pair of runs: accuracy difference over seeds, Welch's t-test and McNemar (raw and Holm-adjusted)."""
    rows = []
    for a, b in itertools.combinations(runs, 2):
        acc_a, acc_b = seed_accuracies(runs_dir, a), seed_accuracies(runs_dir, b)
        pa = reported_predictions(runs_dir, a)
        pb = reported_predictions(runs_dir, b).set_index("image_id").loc[pa.image_id]
        mc = metrics.mcnemar(metrics.is_correct(pa.p_male, pa.label), metrics.is_correct(pb.p_male, pa.label))
        rows.append({"run A": a, "run B": b, "seeds A/B": f"{len(acc_a)}/{len(acc_b)}",
                     "mean acc A - B (pp)": 100 * (acc_a.mean() - acc_b.mean()),
                     "Welch p": metrics.welch_p(acc_a, acc_b), "McNemar p": mc["p_value"]})
    table = pd.DataFrame(rows, columns=["run A", "run B", "seeds A/B", "mean acc A - B (pp)", "Welch p", "McNemar p"])
    table["Welch p (Holm)"] = metrics.holm(table["Welch p"])
    table["McNemar p (Holm)"] = metrics.holm(table["McNemar p"])
    table["verdict"] = [
        "undetermined (one seed)" if np.isnan(w) else
        "larger than noise" if (w < ALPHA and m < ALPHA) else "within noise"
        for w, m in zip(table["Welch p (Holm)"], table["McNemar p (Holm)"])]
    return table


def peer_head_to_head(ours: pd.DataFrame, peer_predictions: pd.DataFrame) -> dict:
    """Our reported head vs the peer on the same images: who is right where, accuracies with CIs, McNemar."""
    theirs = peer_predictions.set_index("image_id").loc[ours.image_id]
    ours_right = metrics.is_correct(ours.p_male, ours.label)
    peer_right = theirs.pred.values == ours.label.values
    n = len(ours)
    return {"n": n, "ours_right": ours_right, "peer_right": peer_right,
            "ours_ci": metrics.wilson_ci(int(ours_right.sum()), n), "peer_ci": metrics.wilson_ci(int(peer_right.sum()), n),
            "mcnemar": metrics.mcnemar(ours_right, peer_right)}


MIN_SEEDS = 3
CHOICE_RULE = (f"The chosen model is the finished run with at least {MIN_SEEDS} seeds and the highest mean validation "
               f"accuracy over its seeds (each seed kept at its best-validation epoch; the test split plays no part). "
               f"Tie rule: if a cheaper run (more images/s end to end, as the timing pass measured every run side by side: "
               f"reports/timing.json) is within the noise of it, i.e. Welch's t-test on the two runs' per-seed "
               f"validation accuracies gives p >= {ALPHA:g}, the cheapest such run is chosen. A run the timing pass "
               f"did not time is never the cheaper one; with no timing of the best run the tie rule does not apply.")


def settle(scores: dict, cost: dict, paired: bool = False) -> dict:
    """The study's choice rule among options: the one with the highest mean score wins, unless options cheaper
    than it (lower `cost`) are within its noise (p >= ALPHA); then the cheapest of those. The noise test is Welch's
    t-test on per-seed scores, or with `paired` McNemar's exact test on right/wrong per image (the same images).

    Returns the best option, the chosen one, the cheaper options within its noise, each option's mean, each other
    option's p against the best, and the runner-up's (the second-highest mean) as `p_value`."""
    means = {k: float(np.mean(v)) for k, v in scores.items()}
    best = max(means, key=means.get)
    test = (lambda a, b: metrics.mcnemar(a, b)["p_value"]) if paired else metrics.welch_p
    p_values = {k: float(test(scores[best], v)) for k, v in scores.items() if k != best}
    within = [k for k, p in p_values.items() if p >= ALPHA and cost[k] < cost[best]]
    chosen = min(within, key=cost.get) if within else best
    runner_up = max(p_values, key=means.get, default=None)
    return {"best": best, "chosen": chosen, "cheaper_within_noise": within, "means": means, "p_values": p_values,
            "p_value": p_values.get(runner_up, float("nan"))}


def choice(results: pd.DataFrame, runs_dir) -> dict:
    """Apply CHOICE_RULE: the best run on validation, the runs within its noise, and the chosen (cheapest) one."""
    ok = results[(results.status == "ok") & (results.n_seeds.fillna(0) >= MIN_SEEDS)]
    if ok.empty:
        raise ValueError(f"no finished run with at least {MIN_SEEDS} seeds to choose from")
    speed = dict(zip(ok.run, ok.images_per_s.astype(float)))
    settled = settle({run: artefacts.seeds_table(Path(runs_dir) / run).val_accuracy.to_numpy() for run in ok.run},
                     cost={run: -s for run, s in speed.items()})  # cheaper: more images/s end to end
    ties = [{"run": run, "Welch p (validation)": settled["p_values"][run], "images_per_s": speed[run]}
            for run in settled["cheaper_within_noise"]]
    untimed = sorted(run for run, s in speed.items() if np.isnan(s))
    if np.isnan(speed[settled["best"]]):
        tie_rule = f"not applied: the best run {settled['best']} has no timing (reports/timing.json)"
    else:
        tie_rule = "applied on the timing pass's images/s" + (f"; not timed, so never the cheaper: {', '.join(untimed)}"
                                                                if untimed else "")
    return {"best": settled["best"], "cheaper_within_noise": ties, "chosen": settled["chosen"], "rule": CHOICE_RULE,
            "tie_rule": tie_rule}


def choose(results: pd.DataFrame, runs_dir) -> pd.Series:
    """The chosen run's results row (see CHOICE_RULE)."""
    return results[results.run == choice(results, runs_dir)["chosen"]].iloc[0]


def attribute_errors(predictions: pd.DataFrame, attributes: pd.DataFrame, prob_col: str, min_count: int = 10) -> pd.DataFrame:
    """Error rate (with 95% Wilson CI) by value of each CelebA attribute other than Male, on the test images."""
    attrs = attributes.loc[predictions.image_id].drop(columns=[celeba.LABEL])
    min_count = min(min_count, max(1, len(predictions) // 4))  # tiny test sets still get rows
    wrong = ~metrics.is_correct(predictions[prob_col], predictions.label)
    overall = wrong.mean()
    rows = []
    for name in attrs.columns:
        for value, label in ((1, "yes"), (-1, "no")):
            mask = attrs[name].values == value
            n = int(mask.sum())
            if n < min_count:
                continue
            errors = int(wrong[mask].sum())
            low, high = metrics.wilson_ci(errors, n)
            rows.append({"attribute": name, "value": label, "count": n, "errors": errors,
                         "error_rate": errors / n, "ci_low": low, "ci_high": high,
                         "vs overall": "higher" if low > overall else "lower" if high < overall else "within CI"})
    return pd.DataFrame(rows, columns=["attribute", "value", "count", "errors", "error_rate", "ci_low", "ci_high", "vs overall"])


def attribute_profile(image_ids, attributes: pd.DataFrame, reference_ids) -> pd.DataFrame:
    """Attributes over-represented in `image_ids` compared with `reference_ids` (share of 'yes' in each)."""
    a = (attributes.loc[list(image_ids)] == 1).mean()
    b = (attributes.loc[list(reference_ids)] == 1).mean()
    out = pd.DataFrame({"share in group": a, "share in test split": b, "difference": a - b})
    return out.drop(index=celeba.LABEL, errors="ignore").sort_values("difference", ascending=False)


def lever(before: int, after: int, params_dir: str | os.PathLike = PARAMS_DIR) -> str:
    """What changes from one iteration to the next, in words generated from their parameters."""
    a, b = load_params(before, params_dir=params_dir), load_params(after, params_dir=params_dir)
    changes = []
    if b.finetune is not None and a.finetune is None:
        changes.append(f"fine-tuning the top block(s) ({b.finetune.epochs} epochs)")
    if b.augment is not None and a.augment is None:
        changes.append(f"{b.augment.copies} photo-like augmented copies of each training image")
    elif b.augment is not None and a.augment != b.augment:
        changed = [f.name for f in dataclasses.fields(b.augment) if getattr(a.augment, f.name) != getattr(b.augment, f.name)]
        changes.append("augmentation " + ", ".join(f"{k} {getattr(a.augment, k):g} -> {getattr(b.augment, k):g}"
                                                   for k in changed))
    if a.image_size != b.image_size or a.native_input != b.native_input:
        changes.append(f"{'native ' if b.native_input else ''}{'x'.join(map(str, b.image_size))} input instead of "
                       f"{'x'.join(map(str, a.image_size))}")
    if a.epochs != b.epochs and b.finetune is None:
        changes.append(f"{'more' if b.epochs > a.epochs else 'fewer'} epochs ({a.epochs} -> {b.epochs})")
    return "; ".join(changes) or "no parameter change"


def builds_on(iteration: int, params_dir: str | os.PathLike = PARAMS_DIR) -> int | None:
    """The iteration `iteration` changes one lever of: the one before it, or for a head-only iteration the latest
    earlier head-only one (so iteration 5, augmented, builds on 3, not on the fine-tuned 4)."""
    head_only = load_params(iteration, params_dir=params_dir).finetune is None
    earlier = [k for k in known_iterations(params_dir)
               if k < iteration and (not head_only or load_params(k, params_dir=params_dir).finetune is None)]
    return max(earlier, default=None)


def paired_by_source(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Two sets of predictions of the same photos (file, source, male, p_male): per source and over all of them
    ("all", last), the accuracy of each and McNemar's exact test on the same photos."""
    a = a.sort_values("file").reset_index(drop=True)
    b = b.set_index("file").loc[a.file].reset_index()
    rows = []
    for source, mask in metrics.source_masks(a.source).items():
        right_a = metrics.is_correct(a.p_male.values[mask], a.male.values[mask])
        right_b = metrics.is_correct(b.p_male.values[mask], b.male.values[mask])
        rows.append({"source": source, "accuracy_a": right_a.mean(), "accuracy_b": right_b.mean(),
                     "mcnemar_p": metrics.mcnemar(right_a, right_b)["p_value"]})
    return pd.DataFrame(rows)


def iteration_effect(results: pd.DataFrame, runs_dir, wild_predictions: dict[str, pd.DataFrame],
                     after: int) -> pd.DataFrame:
    """Per backbone finished in iteration `after` and in the one it builds on: seed-mean validation and test
    accuracy of both, Welch's t-test on their per-seed validation accuracies; in-the-wild accuracy of both reported
    heads per source, with McNemar's exact test on the same photos (Holm over every test of the table)."""
    before = builds_on(after)
    ok = results[results.status == "ok"].set_index(["backbone", "iteration"])
    rows = []
    for backbone in ok.index.get_level_values(0).unique():
        if (backbone, before) not in ok.index or (backbone, after) not in ok.index:
            continue
        a, b = ok.loc[(backbone, before)], ok.loc[(backbone, after)]
        val = [artefacts.seeds_table(Path(runs_dir) / r.run).val_accuracy.to_numpy() for r in (a, b)]
        row = {"backbone": backbone, "before": a.run, "after": b.run,
               "val mean before": a.val_accuracy_seed_mean, "val mean after": b.val_accuracy_seed_mean,
               "test mean before": a.test_accuracy_seed_mean, "test mean after": b.test_accuracy_seed_mean,
               "Welch p (validation)": metrics.welch_p(val[1], val[0])}
        if a.run in wild_predictions and b.run in wild_predictions:
            for r in paired_by_source(wild_predictions[a.run], wild_predictions[b.run]).itertuples():
                row[f"wild {r.source} before"], row[f"wild {r.source} after"] = r.accuracy_a, r.accuracy_b
                row[f"McNemar p (wild {r.source})"] = r.mcnemar_p
        rows.append(row)
    table = pd.DataFrame(rows)
    tests = [c for c in table.columns if c.endswith(")") and " p (" in c]
    if tests:  # one family: every test in the table
        flat = metrics.holm(table[tests].to_numpy(dtype=float).ravel())
        for k, col in enumerate(tests):
            table[f"{col} Holm"] = flat.reshape(len(table), len(tests))[:, k]
    return table


def lever_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per backbone, mean validation/test accuracy change (percentage points) from the iteration each one builds
    on to it: k-1, or for a head-only iteration the latest earlier head-only one (iteration 5 builds on 3, not on
    the fine-tuned 4)."""
    ok = results[results.status == "ok"].set_index(["backbone", "iteration"])
    rows = []
    for (backbone, it), r in ok.iterrows():
        before = builds_on(it)
        if before is None or (backbone, before) not in ok.index:
            continue
        p = ok.loc[(backbone, before)]
        rows.append({"backbone": backbone, "from": f"it{before}", "to": f"it{it}", "lever": lever(before, it),
                     "val acc change (pp)": 100 * (r.val_accuracy_seed_mean - p.val_accuracy_seed_mean),
                     "test acc change (pp)": 100 * (r.test_accuracy_seed_mean - p.test_accuracy_seed_mean)})
    return pd.DataFrame(rows)
