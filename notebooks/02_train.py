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
# A frozen pretrained backbone (an ImageNet network, or dlib's face descriptor) turns each face into a vector of
# features; a small head learns
# P(male) from those vectors. This notebook shows the parameters, the data, the head being built, compiled and
# fitted (Keras, on this page), its history, then the evaluation on the test split, and saves the run (head,
# manifest, history, predictions) under `runs_dir`. `gfr.study.run` does the data and the bookkeeping (split,
# weights, cached features, evaluation, the saved run); `python -m gfr run` gives the same numbers.

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
from pathlib import Path

import keras
import pandas as pd
from IPython.display import Markdown, display

from gfr.models import backbones
from gfr.models.head import build_head, fit_outcome, full_model, keep_best_epoch, seed_everything
from gfr.paths import use_project_root
from gfr.report import departures, plots
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
net = backbones.get(backbone)
seen = net.network_input(params.image_size, params.native_input)
display(Markdown(f"### {backbone}, iteration {iteration}: {seen}\n\nIteration {iteration}: {params.description}."))
pd.Series({"image fed (H x W)": "x".join(map(str, params.image_size)), "the network sees": seen,
           "preprocessing": net.preprocessing, "epochs": params.epochs, "head units": params.head.dense_units,
           "learning rate": params.head.learning_rate, "batch size": params.head.batch_size,
           "head seeds": ", ".join(map(str, params.head.seeds)),
           "weights": backbones.weights_meaning(net, params.weights),
           "fine-tuning": "yes" if params.finetune else "no"}, name="value").to_frame()

# %% [markdown]
# ## Data and weights
# The split manifest says which image is in train, validation or test; the backbone's weights are looked up.
# A backbone whose ImageNet weights cannot be had here is recorded as skipped, with the reason, and the notebook
# ends in this cell: `SystemExit(0)` is papermill's clean stop (the executed notebook is kept as a success and
# the report shows the reason).

# %%
prepared = run.prepare_run(backbone, iteration, data_dir, manifest, runs_dir, params, cache_dir)
if prepared.skipped:
    record = run.save_skipped(prepared)
    display(Markdown(f"**Skipped.** {record['reason']}\n\nThe code path is the same as for the other "
                     "backbones: give the weights (Keras download, `GFR_WEIGHTS_DIR` or `weights=`) and rerun."))
    raise SystemExit(0)
used = Path(prepared.weights.path).name if prepared.weights.path else "none"
display(Markdown(f"Weights: `{used}`, {departures.weights_provenance(net, used)} (sha256 "
                 f"`{prepared.weights.sha256[:12]}`); "
                 f"{len(prepared.frame)} images: " + ", ".join(
                     f"{len(prepared.rows(s))} {s}" for s in ("train", "val", "test")) + "."))

# %% [markdown]
# ## Features
# The frozen backbone's pooled features of every image are computed once and cached on disk (keyed by
# backbone, input size, weights and split), so the head trains on vectors, not images.

# %%
features = run.load_features(prepared)
display(Markdown(f"Features from cache: {features.cache_info['cache']} "
                 f"({features.x['train'].shape[1]} per image, {features.seconds:.1f} s)."))

# %% [markdown]
# ## The fit
# One head per seed: built on the pooled features, compiled (Adam, binary cross-entropy, accuracy) and fitted on
# the training features with validation each epoch. The `keep_best_epoch` callback restores, when the fit ends, the
# weights of the epoch with the best validation accuracy (the study's one selection rule; it never stops early).
# The first seed's head is the reported one; the others show how much the seed alone moves the numbers.

# %%
h, x, y = params.head, features.x, features.y
start = time.perf_counter()
fits = []
for seed in h.seeds:
    seed_everything(seed)  # the head's initial weights and the batch order are a function of the seed
    head = build_head(x["train"].shape[1], h.dense_units)
    head.compile(optimizer=keras.optimizers.Adam(h.learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    keep = keep_best_epoch(params.epochs)
    history = head.fit(x["train"], y["train"].astype("float32"),
                       validation_data=(x["val"], y["val"].astype("float32")),
                       batch_size=h.batch_size, epochs=params.epochs, shuffle=True, verbose=0, callbacks=[keep])
    fits.append(run.HeadFit(seed, head, *fit_outcome(history, keep)))
fits[0].head.summary()
pd.DataFrame({"kept epoch": [f.kept_epoch for f in fits],
              "validation accuracy": [f.history["val_accuracy"][f.kept_epoch - 1] for f in fits]},
             index=pd.Index([f.seed for f in fits], name="seed"))

# %% [markdown]
# ## Fine-tuning (iterations with a `finetune` section)
# Each seed's fitted head and the backbone's top block(s) are trained together on activations cached at the
# freeze boundary (BatchNorm in inference mode); as for the heads, the epoch with the best validation accuracy is
# kept. Shown: the reported seed's fine-tuned model.

# %%
tuned = run.fine_tune_seeds(prepared, features, fits) if params.finetune else []
if tuned:
    tuned[0].model.summary(show_trainable=True)
    ft = params.finetune
    display(Markdown(
        f"Fine-tuned every layer above `{features.boundary['layer']}` with the head for {ft.epochs} epochs, Adam lr "
        f"{ft.learning_rate:g}, batch {ft.batch_size}, dropout {ft.dropout} on the pooled features, "
        f"{'each image mirrored with probability 1/2' if ft.augment else 'no augmentation'}. Kept epochs: "
        + ", ".join(f"{t.kept_epoch} (seed {t.seed})" for t in tuned) + "."))

# %% [markdown]
# ## History

# %%
history = pd.concat([t.history for t in tuned]) if tuned else run.history_frame(prepared, fits)
fig = plots.training_curves(history, f"{prepared.name}: accuracy and loss per epoch")

# %% [markdown]
# ## The model `gfr predict` rebuilds
# The frozen backbone and the reported head together: images -> backbone -> global average pooling -> head ->
# P(male) (dlib's descriptor: face chips -> its 128-d descriptor -> head; for a fine-tuned run, the backbone's top
# block(s) are the fine-tuned ones).

# %%
extractor = None if tuned else prepared.build_extractor()
if extractor is not None:
    full_model(extractor, fits[0].head).summary(expand_nested=False, show_trainable=True)

# %% [markdown]
# ## Evaluation
# Every head on the test split, the reported one also end to end from the test JPEG files (decode, resize,
# preprocess, forward) to time inference; then the run is saved.

# %%
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
