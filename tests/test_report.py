"""Report side: figures, report assembly ('not run' sections), end-to-end timing."""

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gfr.report import assemble, plots  # noqa: E402
from gfr.study import registry  # noqa: E402


def results_rows():
    return pd.DataFrame([
        {"run": "A-it1", "status": "ok", "test_accuracy": 0.9, "test_accuracy_ci_low": 0.88, "test_accuracy_ci_high": 0.92,
         "test_accuracy_seed_mean": 0.89, "test_accuracy_seed_ci_low": 0.87, "test_accuracy_seed_ci_high": 0.91,
         "original_test_accuracy": 89.7},
        {"run": "B-it4", "status": "ok", "test_accuracy": 0.93, "test_accuracy_ci_low": 0.91, "test_accuracy_ci_high": 0.95,
         "test_accuracy_seed_mean": 0.93, "test_accuracy_seed_ci_low": np.nan, "test_accuracy_seed_ci_high": np.nan,
         "original_test_accuracy": np.nan},
        {"run": "C-it1", "status": "skipped"},
    ])


def test_accuracy_plot_draws_no_interval_for_a_single_seed():
    fig = plots.accuracy_comparison(results_rows())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "ours: one seed (no interval)" in labels and "ours: seed mean, 95% CI" in labels
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A-it1", "B-it4"]  # skipped runs are not drawn


def test_training_curves_mark_the_fine_tuning_phase():
    history = pd.DataFrame({"seed": 1, "epoch": [1, 2, 3, 4], "accuracy": [.5, .6, .7, .8], "val_accuracy": [.5, .6, .6, .7],
                            "loss": [1, .8, .6, .5], "val_loss": [1, .9, .8, .7],
                            "phase": ["head warm-up"] * 2 + ["fine-tune"] * 2})
    fig = plots.training_curves(history, "t")
    assert len(fig.axes) == 2
    assert any("fine-tune starts" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_confusion_roc_and_reliability_figures():
    assert plots.confusion([[5, 1], [2, 7]]).axes[0].get_xlabel() == "predicted"
    roc = plots.roc_curves({"A": (np.array([0, 0.5, 1]), np.array([0, 0.8, 1]), 0.9)})
    assert "A (AUC 0.900)" in [t.get_text() for t in roc.axes[0].get_legend().get_texts()]
    rel = plots.reliability([{"mean_prob": 0.2, "frac_male": 0.25, "count": 10}], 0.05, "x")
    assert "ECE = 0.050" in rel.axes[0].get_title()


def minimal_notebook(path, text):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text), nbformat.v4.new_code_cell("1 + 1")]
    nbformat.write(nb, path)


def test_report_has_a_section_for_every_expected_run(tmp_path):
    for name in ("00_results", "01_data", "03_evaluate", "04_compare", "05_beyond_celeba"):
        minimal_notebook(tmp_path / f"{name}.ipynb", f"# {name}")
    (tmp_path / "runs").mkdir()
    first = registry.expected_runs()[0]
    minimal_notebook(tmp_path / "runs" / f"{first.name}.ipynb", f"### {first.name} ran")
    report = assemble.assemble(tmp_path)
    text = "\n".join(c.source for c in report.cells if c.cell_type == "markdown")
    not_run = [r for r in registry.expected_runs() if r != first]
    assert all(f"### {r.backbone}, iteration {r.iteration}" in text for r in not_run)
    assert text.count("**Not run**") == len(not_run)
    assert report.cells[0].source == "# 00_results"  # results at a glance come first
    html = assemble.to_html(report)
    assert "1 + 1" not in html  # code is hidden in the report


def test_end_to_end_timing_returns_the_model_probabilities(synth_root):

    from gfr.data import celeba
    from gfr.models import backbones
    from gfr.models.head import build_head, full_model
    from gfr.study import timing

    backbone = backbones.get("VGG16")
    model = full_model(backbones.build_extractor(backbone, (32, 32), False, backbones.RANDOM, 1024),
                       build_head(backbone.feature_dim, 4))
    paths = sorted((synth_root / celeba.IMAGES_DIR).glob("*.jpg"))[:10]
    timed = timing.time_end_to_end(model, backbone, paths, (32, 32), batch_size=4, warmup=1, repeats=3)
    assert timed["images"] == 10 and timed["repeats"] == 3 and len(timed["runs_s"]) == 3
    assert timed["median_s"] == sorted(timed["runs_s"])[1]
    assert timed["probabilities"].shape == (10,)


def test_readable_tables_show_percentages_and_p_values():
    from gfr.report import tables

    frame = pd.DataFrame({"run": ["A", "B"], "seeds": [5, 3], "val mean": [0.93456, 0.9],
                          "Welch p (validation)": [0.3105, float("nan")], "McNemar p (wild all) Holm": [3e-12, 1.0]})
    out = tables.readable(frame)
    assert out["val mean"].tolist() == ["93.46%", "90.00%"]
    assert out["Welch p (validation)"].tolist() == ["0.31", "–"]
    assert out["McNemar p (wild all) Holm"].tolist() == ["3e-12", "1"]
    assert out.seeds.tolist() == [5, 3] and out.run.tolist() == ["A", "B"]
