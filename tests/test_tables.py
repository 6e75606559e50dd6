"""Result tables as people read them: percent cells, intervals, p-values and the one markdown writer."""

import math

import pandas as pd

from gfr.report import tables
from conftest import squeezed
from test_docs import results_frame


def test_markdown_has_a_header_and_one_row_per_run_with_the_index_first():
    md = tables.markdown(tables.summary(results_frame()))
    assert md.count("\n") == 3 and md.splitlines()[1].startswith("|---")
    rows = squeezed(md).splitlines()
    assert rows[0].startswith("| run | status | test accuracy, seed mean ± std |")
    assert rows[2].startswith("| ResNet50-it3 (chosen) | ok | 93.0 ± 0.7 (5 seeds) | 92.1–93.9 |")
    assert rows[3].startswith("| VGG16-it1 | skipped |")


def test_markdown_writes_cells_as_given_never_reformatting_numbers():
    frame = pd.DataFrame({"a": ["0.10", "1e-05", "007"], "b": [0.1, 12, "–"]}, index=pd.Index(["x", "y", "z"], name="k"))
    assert squeezed(tables.markdown(frame)).splitlines() == ["| k | a | b |", "|---|---|---|", "| x | 0.10 | 0.1 |",
                                                             "| y | 1e-05 | 12 |", "| z | 007 | – |"]
    assert squeezed(tables.markdown(frame, index=False)).splitlines()[0] == "| a | b |"


def test_markdown_of_a_frame_without_rows_is_its_header():
    assert squeezed(tables.markdown(pd.DataFrame(columns=["a", "b"]), index=False)).splitlines()[0] == "| a | b |"


def test_pct_ci_is_the_accuracy_with_its_interval_and_dashes_when_unknown():
    assert tables.pct_ci(0.9675, 0.9541, 0.9770) == "96.8% (95.4–97.7)"
    assert tables.pct_ci(0.5, 0.4, 0.6, digits=2) == "50.00% (40.00–60.00)"
    assert tables.pct_ci(math.nan, 0.1, 0.2) == "– (10.0–20.0)"
    assert tables.pct_ci(0.5, math.nan, 0.6) == "50.0% (–)"


def test_pct_agrees_with_percent_formatting_for_every_proportion_of_small_counts():
    assert all(tables.pct(k / n) == f"{k / n:.1%}" for n in range(1, 400) for k in range(n + 1))


def test_readable_formats_p_values_and_proportions():
    out = tables.readable(pd.DataFrame({"Welch p (validation)": [0.01234], "accuracy": [0.9675], "n": [3]}))
    assert out.iloc[0].tolist() == ["0.012", "96.75%", 3]


def test_mean_spread_says_when_the_spread_is_unknown():
    assert tables.mean_spread(0.93, 0.007, 5) == "93.0 ± 0.7 (5 seeds)"
    assert tables.mean_spread(0.93, math.nan, 1) == "93.0 (1 seed, no spread)"
    assert tables.mean_spread(math.nan, 0.1, 3) == tables.DASH
