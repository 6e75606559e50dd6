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
# ## The study
# ### Overview
# A reproduction, and extension, of a study that classified the gender of aligned CelebA faces with
# frozen ImageNet backbones (VGG16, InceptionV3, InceptionResNetV2) and a small trainable head, over training
# "iterations" (its cells are the "original write-up" column of the summary), comparing test accuracy and
# inference time. We add ResNet50 and a face-domain backbone
# (dlib's face descriptor) and iterations of our own (fine-tuning, photo-like augmentation), measure every model
# on faces outside CelebA, repeat every head over several seeds (each run's count is in its table), give
# confidence intervals, and analyse errors, calibration and a peer baseline.
# Every number below is computed by the code in this repository from the data; nothing is typed in.
#
# ### Goals
# 1. Train gender classifiers on top of frozen pretrained backbones.
# 2. Compare backbones and training iterations on test accuracy and inference time.
# 3. Choose a model, on the validation split, and say why.
# 4. Implications: where the chosen model errs (by CelebA attribute), how well calibrated it is, and how it
#    compares with an off-the-shelf gender classifier.

# %% tags=["parameters"]
data_dir = None          # CelebA-layout folder; None: $GFR_DATA_DIR
manifest = "reports/split.csv"
params_extra = []        # extra params files merged last, e.g. ["params/test.yaml"]
sample_faces = 16

# %%
import pandas as pd
from IPython.display import Markdown, display

from gfr.study import analysis, hardware
from gfr.data import celeba, split
from gfr.report import plots
from gfr.params import load_params
from gfr.paths import use_project_root

use_project_root()  # default paths are relative to the project root
# %matplotlib inline
# %config InlineBackend.figure_formats = ["png"]
pd.set_option("display.precision", 4)
pd.set_option("display.max_colwidth", None)

# %% [markdown]
# ## Dataset
# CelebA aligned and cropped faces (178 wide x 218 high), label = the attribute `Male`. The split is made
# once (`make split`, i.e. `python -m gfr split`) and written as a CSV manifest that every run reads, so all
# runs see identical images.

# %%
params = load_params(1, extra=params_extra)
root = celeba.data_dir(data_dir)
frame, excluded = split.read_manifest(manifest), split.read_excluded(manifest)  # written by `python -m gfr split`
sizes = frame.groupby("split").label.agg(images="size", male="sum").reindex(list(split.SPLITS))
sizes["male share"] = sizes.male / sizes.images
display(Markdown(
    f"{len(frame):,} images from `{root.name}`; split seed {params.seed}, "
    f"{params.data.test_fraction:.0%} test, {params.data.val_fraction:.0%} validation, the rest train; "
    f"{frame.label.mean():.2%} male overall."
))
sizes

# %% [markdown]
# Files excluded because they could not be read (none means every listed image decoded):

# %%
excluded if len(excluded) else Markdown("No file was excluded.")

# %%
fig = plots.sample_grid(root, frame, n=sample_faces, title="Sample faces with their labels")

# %%
fig = plots.class_balance(frame)

# %% [markdown]
# ## Model Architecture
# Each ImageNet backbone is a Keras application without its classifier, every layer frozen (BatchNorm in
# inference mode). Its own `preprocess_input` prepares the pixels. On top: global average pooling ->
# Dense(relu) -> Dense(1, sigmoid) = P(male). Because the base is frozen, its pooled output of an image is the
# same every epoch: gfr computes it once per (backbone, input size, weights hash, split; an augmented copy is an
# image of its own) and trains the heads on the cached features. A test checks that this gives the same
# predictions as the full frozen model. The fine-tuning iteration trains the backbone's top block(s) with the
# head instead (its section says which layers).
#
# One face-domain backbone sits beside them: `DlibFaceDescriptor`, dlib's ResNet face descriptor (128-d, trained
# for identity, CC0; provenance in "Beyond CelebA"). It takes CelebA's images at their own size, finds the 5
# landmarks inside CelebA's measured face box (rather than a HOG detection: a face-detection setting, chosen on
# in-the-wild-dev, see "Beyond CelebA") and describes dlib's aligned face chip (size in the table below); the same
# head trains on its cached 128-d output, in the iterations that feed CelebA's own size (the Training table's
# native ones; the report's departures list its runs).
#
# Sizes: Keras takes (height, width). The original write-up's "(178, 218)" is width x height; we feed the
# images in their own orientation, 218 high x 178 wide; in the iterations that feed that size an ImageNet
# backbone's model input shape is left at None x None. What each network sees, and the weights files it looks for:

# %%
analysis.architecture_table()

# %% [markdown]
# ## Hardware Specifications
# Detected on the machine that executed this notebook (each run records its own).

# %%
info = hardware.describe()
pd.Series({k: (", ".join(v) if isinstance(v, list) else v) or "none" for k, v in info.items()}, name="value").to_frame()

# %% [markdown]
# ## Training
# Parameters of each iteration, generated from `params/`:

# %%
analysis.params_table(extra=params_extra).T
