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
# # Face gender recognition by transfer learning: a reproduction, and beyond
# ## Results at a glance
# Frozen ImageNet backbones with a small head on a 5,000-image CelebA subset, as in the original write-up, plus
# what this study adds (ResNet50, dlib's face descriptor, fine-tuning, augmentation). Everything on this page is
# computed from the committed runs and result files; the body of the report mirrors the original write-up and
# shows how each number was made.

# %% tags=["parameters"]
runs_dir = "reports/runs"
peer_dir = "reports/peer"
verify_table = "reports/verify.csv"  # written by `make verify`
confirm_summary = "reports/wild-confirm.json"  # written by `make confirm`
predict_benchmark = "benchmarks/results/predict-cpu.json"  # written by `make bench-predict`

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from gfr.paths import use_project_root
from gfr.report import glance, tables
from gfr.study import last_epoch, peer, results, timing_pass, verify

use_project_root()  # default paths are relative to the project root
pd.set_option("display.max_colwidth", None)
table = results.collect(runs_dir)

# %% [markdown]
# ### The original's table beside ours
# The original trained each head for a fixed number of epochs and tested the last one; we keep each head at its
# best-validation epoch (the declared protocol) and also test its last epoch (the original's protocol). Our
# numbers are means over the head's training seeds; the original's are one training each.

# %%
display(Markdown(glance.INTERVALS))
display(glance.original_beside_ours(table))
timed = timing_pass.read(timing_pass.default_path(runs_dir))
display(Markdown(timing_pass.describe(timed) if timed else "No timing pass here (`make timing`): no inference times."))
protocol_file = last_epoch.table_path(runs_dir)  # written by `gfr last-epoch` (make last-epoch)
if protocol_file.is_file():
    display(Markdown(glance.iteration_two_note(last_epoch.protocol_table(last_epoch.read(protocol_file)))))
else:
    display(Markdown("The original's protocol (last epoch) has not been evaluated here (`make last-epoch`)."))

# %% [markdown]
# ### The chosen model, and every stated target

# %%
display(Markdown(glance.chosen_line(table, runs_dir)))
peer_file = Path(peer_dir) / "test_predictions.csv"
glance.target_rows(table, runs_dir, peer.read_predictions(peer_file) if peer_file.is_file() else None,
                   glance.read_json(confirm_summary), glance.read_json(predict_benchmark))

# %% [markdown]
# in-the-wild-confirm (1,200 UTKFace and LFW photos) chose nothing: the final chosen model and the peer were
# scored on it once. Numbers on in-the-wild-dev (in the body) are optimistic where that set chose a setting
# (face finding, framing).

# %% [markdown]
# ### Reproducibility, and what could not run

# %%
display(Markdown(glance.reproducibility_line(Path(verify_table), table, runs_dir) + " " + verify.environment_note(runs_dir)))
display(Markdown("\n".join(glance.not_run_lines(table)) or "Every run of the study finished."))
