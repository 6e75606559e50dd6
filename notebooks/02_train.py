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
# # One run: a backbone and an iteration
# Computes (or reads from the cache) the frozen backbone's pooled features, trains the head with every seed
# of the parameters, evaluates on the validation and test splits, times end-to-end inference from the test
# JPEG files, and saves the run (head, manifest, history, predictions) under `runs_dir`.

# %% tags=["parameters"]
backbone = "ResNet50"
iteration = 1
data_dir = None          # None: $GFR_DATA_DIR
manifest = "reports/split.csv"
runs_dir = "reports/runs"
params_extra = []        # e.g. ["params/test.yaml"]
weights = None           # None: from params (imagenet); or a .h5 file / folder
cache_dir = None         # None: $GFR_CACHE_DIR or ~/.cache/gfr/features

# %%
import pandas as pd
from IPython.display import Markdown, display

from gfr.report.assemble import plots
from gfr.study import run
from gfr.params import load_params
from gfr.report.assemble.notebooks import use_project_root

use_project_root()  # default paths are relative to the project root
# %matplotlib inline
# %config InlineBackend.figure_formats = ["png"]
pd.set_option("display.precision", 4)

# %%
params = load_params(iteration, {"weights": weights} if weights else None, extra=params_extra)
name = run.run_name(backbone, iteration)
display(Markdown(f"### {backbone}, iteration {iteration}: {params.description}"))

# %%
record = run.execute(backbone, iteration, data_dir, manifest, runs_dir, params, cache_dir)

# %%
if record["status"] == "skipped":
    display(Markdown(f"**Skipped.** {record['reason']}\n\nThe code path is the same as for the other "
                     "backbones: give the weights (Keras download, `GFR_WEIGHTS_DIR` or `weights=`) and rerun."))
else:
    t, s, inf = record["test"], record["seeds"], record["inference"]
    load = " / ".join(f"{v:.1f}" for v in inf["load_average"])
    display(Markdown(f"Weights: {record['weights_origin']} (sha256 `{record['weights_sha256'][:12]}`); "
                     f"input {record['input_size'][0]} x {record['input_size'][1]}; "
                     f"features from cache: {record['feature_cache']['cache']}."))
    display(pd.DataFrame({
        "reported head (seed %d)" % record["primary_seed"]: {
            "train accuracy": record["train_accuracy"], "train loss": record["train_loss"],
            "validation accuracy": record["val_accuracy"], "validation loss": record["val_loss"],
            "test accuracy": t["accuracy"], "test ROC AUC": t["roc_auc"]},
        "mean over %d seeds" % len(params.head.seeds): {
            "train accuracy": s["train_accuracy_mean"], "train loss": s["train_loss_mean"],
            "validation accuracy": s["val_accuracy_mean"], "validation loss": s["val_loss_mean"],
            "test accuracy": s["test_accuracy_mean"], "test ROC AUC": s["test_roc_auc_mean"]},
        "std over seeds": {
            "train accuracy": s["train_accuracy_std"], "train loss": s["train_loss_std"],
            "validation accuracy": s["val_accuracy_std"], "validation loss": s["val_loss_std"],
            "test accuracy": s["test_accuracy_std"], "test ROC AUC": s["test_roc_auc_std"]},
    }))
    display(Markdown(
        f"Test accuracy {t['accuracy']:.2%} (95% CI {t['accuracy_ci_low']:.2%} to {t['accuracy_ci_high']:.2%}, "
        f"n = {t['n']}). End-to-end inference on the {inf['images']} test JPEGs (decode, resize, preprocess, "
        f"forward; median of {inf['repeats']} after warm-up): **{inf['median_s']:.2f} s**, "
        f"{inf['images_per_s']:.0f} images/s on {record['hardware']['cpu']} ({record['hardware']['cores']} cores"
        f"{', ' + record['hardware']['gpus'][0] if record['hardware']['gpus'] else ', no GPU'}), "
        f"Keras {record['hardware']['keras']} / {record['hardware']['keras_backend']}; 1-minute load average "
        f"before / after timing: {load} on "
        f"{record['hardware']['cores']} cores (a load above the core count means other work shared the CPU). "
        f"Full model vs cached-feature head, largest difference in P(male): "
        f"{record['full_model_vs_cached_max_abs_diff']:.1e}."))

# %%
if record.get("finetune_boundary"):
    ft = record["params"]["finetune"]
    augment = "each image mirrored with probability 1/2" if ft["augment"] else "no augmentation"
    display(Markdown(
        f"Fine-tuning: the head is first trained {record['params']['epochs']} epochs on the frozen pooled features, "
        f"then every layer above `{record['finetune_boundary']}` (BatchNorm kept in inference mode) is trained with "
        f"the head for {ft['epochs']} epochs, Adam lr {ft['learning_rate']:g}, batch {ft['batch_size']}, dropout "
        f"{ft['dropout']} on the pooled features, {augment}. "
        f"The activations at `{record['finetune_boundary']}` are computed once (plain and mirrored) and cached, so "
        f"the frozen layers are never recomputed. Kept: epoch {record['finetune_kept_epoch']} of fine-tuning, the one "
        f"with the best validation accuracy; one seed ({record['primary_seed']})."))

# %%
if record["status"] == "ok":
    history = pd.read_csv(f"{runs_dir}/{name}/history.csv")
    fig = plots.training_curves(history, f"{name}: accuracy and loss per epoch")

# %%
if record["status"] == "ok":
    fig = plots.confusion(record["test"]["confusion"], f"{name}: confusion matrix (test)")
