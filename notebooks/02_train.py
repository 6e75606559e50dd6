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
# A frozen ImageNet backbone turns each face into a vector of pooled features; a small head learns
# P(male) from those vectors. This notebook shows the parameters, the model, the fit and its history, then
# the evaluation on the test split, and saves the run (head, manifest, history, predictions) under `runs_dir`.
# The work is done by `gfr.study.run`, step by step, exactly as `python -m gfr run` does it.

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
import time

import pandas as pd
from IPython.display import Markdown, display

from gfr.models.head import build_head, full_model
from gfr.report import plots
from gfr.paths import use_project_root
from gfr.study import run

use_project_root()  # default paths are relative to the project root
# %matplotlib inline
# %config InlineBackend.figure_formats = ["png"]
pd.set_option("display.precision", 4)

# %% [markdown]
# ## Parameters
# `params/base.yaml` merged with this iteration's file (and any extra file given as a parameter).

# %%
params = run.notebook_params(iteration, weights, params_extra)
display(Markdown(f"### {backbone}, iteration {iteration}: {params.description}"))
pd.Series({"input (H x W)": "x".join(map(str, params.image_size)),
           "model input shape": "None x None x 3" if params.native_input else "fixed",
           "epochs": params.epochs, "head units": params.head.dense_units,
           "learning rate": params.head.learning_rate, "batch size": params.head.batch_size,
           "head seeds": ", ".join(map(str, params.head.seeds)), "weights": params.weights,
           "fine-tuning": "yes" if params.finetune else "no"}, name="value").to_frame()

# %% [markdown]
# ## Data and weights
# The split manifest says which image is in train, validation or test; the backbone's weights are looked up
# (a backbone whose ImageNet weights cannot be had here is recorded as skipped, with the reason).

# %%
prepared = run.prepare_run(backbone, iteration, data_dir, manifest, runs_dir, params, cache_dir)
if prepared.skipped:
    record = run.save_skipped(prepared)
    display(Markdown(f"**Skipped.** {record['reason']}\n\nThe code path is the same as for the other "
                     "backbones: give the weights (Keras download, `GFR_WEIGHTS_DIR` or `weights=`) and rerun."))
else:
    display(Markdown(f"Weights: {prepared.weights.origin} (sha256 `{prepared.weights.sha256[:12]}`); "
                     f"{len(prepared.frame)} images: " + ", ".join(
                         f"{len(prepared.rows(s))} {s}" for s in ("train", "val", "test")) + "."))

# %% [markdown]
# ## The model
# The backbone stays frozen; only the head is trained. Together they are the classifier that `gfr predict`
# rebuilds: images -> backbone -> global average pooling -> head -> P(male).

# %%
if not prepared.skipped:
    extractor = prepared.build_extractor()
    classifier = full_model(extractor, build_head(prepared.backbone.feature_dim, params.head.dense_units))
    classifier.summary(expand_nested=False, show_trainable=True)

# %% [markdown]
# ## Features
# The frozen backbone's pooled features of every image are computed once and cached on disk (keyed by
# backbone, input size, weights and split), so the head trains on vectors, not images.

# %%
if not prepared.skipped:
    features = run.load_features(prepared)
    display(Markdown(f"Features from cache: {features.cache_info['cache']} "
                     f"({features.x['train'].shape[1]} per image, {features.seconds:.1f} s)."))

# %% [markdown]
# ## The fit
# One head per seed (`head.fit` on the training features, validation each epoch), each kept at the epoch with
# the best validation accuracy (the study's one selection rule); the first seed's head is the reported one,
# the others show how much the seed alone moves the numbers.

# %%
if not prepared.skipped:
    start = time.perf_counter()
    fits = run.train_heads(prepared, features)
    fits[0].head.summary()

# %% [markdown]
# ## Fine-tuning (iterations with a `finetune` section)
# Each seed's warmed-up head and the backbone's top block(s) are trained together on activations cached at
# the freeze boundary (BatchNorm in inference mode); as for the heads, the epoch with the best validation
# accuracy is kept.

# %%
tuned = []
if not prepared.skipped and params.finetune:
    run.build_finetune_model(prepared, features, fits[0]).summary(show_trainable=True)
    tuned = run.fine_tune_seeds(prepared, features, fits)
    ft = params.finetune
    display(Markdown(
        f"Fine-tuned every layer above `{features.boundary['layer']}` with the head for {ft.epochs} epochs, Adam lr "
        f"{ft.learning_rate:g}, batch {ft.batch_size}, dropout {ft.dropout} on the pooled features, "
        f"{'each image mirrored with probability 1/2' if ft.augment else 'no augmentation'}. Kept epochs: "
        + ", ".join(f"{t.kept_epoch} (seed {t.seed})" for t in tuned) + "."))

# %% [markdown]
# ## History

# %%
if not prepared.skipped:
    history = pd.concat([t.history for t in tuned]) if tuned else run.history_frame(prepared, fits)
    fig = plots.training_curves(history, f"{prepared.name}: accuracy and loss per epoch")

# %% [markdown]
# ## Evaluation
# Every head on the test split, the reported one also end to end from the test JPEG files (decode, resize,
# preprocess, forward) to time inference; then the run is saved.

# %%
if not prepared.skipped:
    seconds = time.perf_counter() - start
    record = (run.finish_finetune_run(prepared, features, tuned, seconds) if tuned else
              run.finish_head_run(prepared, features, fits, extractor, seconds))
    t, s, inf, hw = record["test"], record["seeds"], record["inference"], record["hardware"]
    display(pd.DataFrame({
        f"reported head (seed {record['primary_seed']})": {
            "train accuracy": record["train_accuracy"], "train loss": record["train_loss"],
            "validation accuracy": record["val_accuracy"], "validation loss": record["val_loss"],
            "test accuracy": t["accuracy"], "test ROC AUC": t["roc_auc"]},
        f"mean over {len(params.head.seeds)} seeds": {
            "train accuracy": s["train_accuracy_mean"], "train loss": s["train_loss_mean"],
            "validation accuracy": s["val_accuracy_mean"], "validation loss": s["val_loss_mean"],
            "test accuracy": s["test_accuracy_mean"], "test ROC AUC": s["test_roc_auc_mean"]},
        "std over seeds": {
            "train accuracy": s["train_accuracy_std"], "train loss": s["train_loss_std"],
            "validation accuracy": s["val_accuracy_std"], "validation loss": s["val_loss_std"],
            "test accuracy": s["test_accuracy_std"], "test ROC AUC": s["test_roc_auc_std"]},
    }))

# %%
if not prepared.skipped:
    load = " / ".join(f"{v:.1f}" for v in inf["load_average"])
    display(Markdown(
        f"Test accuracy {t['accuracy']:.2%} (95% CI {t['accuracy_ci_low']:.2%} to {t['accuracy_ci_high']:.2%}, "
        f"n = {t['n']}). End-to-end inference on the {inf['images']} test JPEGs (median of {inf['repeats']} after "
        f"warm-up): **{inf['median_s']:.2f} s**, {inf['images_per_s']:.0f} images/s on {hw['cpu']} ({hw['cores']} "
        f"cores{', ' + hw['gpus'][0] if hw['gpus'] else ', no GPU'}), Keras {hw['keras']} / {hw['keras_backend']}; "
        f"1-minute load average before / after timing: {load} (above the core count, other work shared the CPU). "
        f"Full model vs cached-feature head, largest difference in P(male): "
        f"{record['full_model_vs_cached_max_abs_diff']:.1e}."))
    fig = plots.confusion(t["confusion"], f"{prepared.name}: confusion matrix (test)")
    display(Markdown(f"Saved under `{prepared.run_dir}`: " + ", ".join(
        f"`{name}`" for name in sorted(p.name for p in prepared.run_dir.iterdir())) + "."))
