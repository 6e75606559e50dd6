"""The ensemble: judged on validation by the study's choice rule (analysis.settle), its summary and in-the-wild mean."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gfr.errors import GfrError
from gfr.study import analysis, ensemble, metrics


def seeds_table(ens, a=(.90, .91, .90), b=(.85, .85, .85)):
    rows = [{"model": m, "seed": s, "val_accuracy": v, "test_accuracy": .5}
            for m, values in (("A", a), ("B", b), ("E", ens)) for s, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_ensemble_verdict_applies_the_choice_rule():
    assert ensemble.verdict(seeds_table([.95, .96, .955]))["wins"]
    within_noise = ensemble.verdict(seeds_table([.90, .93, .91]))  # higher mean, but A is within its noise
    assert within_noise["best_member"] == "A" and not within_noise["wins"]
    assert not ensemble.verdict(seeds_table([.80, .81, .80]))["wins"]


def test_verdict_is_the_hand_written_rule_it_replaced_on_random_seeds():
    """Before analysis.settle: the ensemble wins iff its mean is higher than the best member's and Welch p < ALPHA."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        values = {m: rng.normal(0.9 + rng.normal(0, 0.01), rng.uniform(0.001, 0.02), 5) for m in "ABE"}
        judged = ensemble.verdict(seeds_table(values["E"], values["A"], values["B"]))
        best = max("AB", key=lambda m: values[m].mean())
        p = stats.ttest_ind(values["E"], values[best], equal_var=False).pvalue
        assert judged["best_member"] == best and judged["welch_p"] == pytest.approx(p, rel=1e-12)
        assert judged["wins"] == bool(values["E"].mean() > values[best].mean() and p < analysis.ALPHA)


def test_summary_gives_seed_mean_spread_and_t_interval_per_model():
    table = ensemble.summary(seeds_table([.95, .96, .955]))
    assert table.index.tolist() == ["A", "B", "E"] and table.loc["E", "seeds"] == 3
    low, high = metrics.seed_mean_ci([.95, .96, .955])
    assert (table.loc["E", "val_accuracy CI low"], table.loc["E", "val_accuracy CI high"]) == (low, high)
    assert table.loc["B", "val_accuracy CI low"] == table.loc["B", "val_accuracy CI high"] == .85  # no spread


def test_wild_predictions_average_the_members_on_the_same_photos():
    photos = pd.DataFrame({"file": ["b.jpg", "a.jpg"], "source": ["lfw", "utk"], "male": [1, 0], "detector": "hog"})
    members = {"A": photos.assign(p_male=[0.8, 0.2]), "B": photos.assign(p_male=[0.4, 0.6]).iloc[::-1]}
    mean = ensemble.wild_predictions(members, ["A", "B"])
    assert mean.file.tolist() == ["a.jpg", "b.jpg"] and mean.p_male.tolist() == pytest.approx([0.4, 0.6])
    with pytest.raises(GfrError, match="gfr wild --runs C"):
        ensemble.wild_predictions(members, ["A", "C"])
