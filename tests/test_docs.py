"""Generated blocks: README's numbers come from results.csv and the benchmark JSON, and the committed ones match."""

import pandas as pd
import pytest

from gfr.errors import GfrError
from gfr.report import docs, tables


def test_committed_blocks_are_what_the_code_generates():
    """Fails when README.md or benchmarks/README.md holds a number the committed results do not give."""
    assert docs.update(check=True) == []


def test_replace_block_rewrites_only_between_its_markers():
    text = "intro 1\n<!-- gfr:begin a -->\nold 2\n<!-- gfr:end a -->\noutro 3\n"
    assert docs.replace_block(text, "a", "new 4") == "intro 1\n<!-- gfr:begin a -->\nnew 4\n<!-- gfr:end a -->\noutro 3\n"
    with pytest.raises(GfrError, match="no generated block 'b'"):
        docs.replace_block(text, "b", "x", "README.md")


def results_frame(**chosen_row):
    base = {"run": "ResNet50-it3", "status": "ok", "reason": "", "test_accuracy": 0.936, "test_accuracy_ci_low": 0.919,
            "test_accuracy_ci_high": 0.950, "test_accuracy_seed_mean": 0.930, "test_accuracy_seed_std": 0.007,
            "test_accuracy_seed_ci_low": 0.921, "test_accuracy_seed_ci_high": 0.939, "val_accuracy_seed_mean": 0.92,
            "n_seeds": 5, "original_test_accuracy": float("nan"), "inference_s": 34.9, "inference_min_s": 33.0,
            "inference_max_s": 37.1, "images_per_s": 28.7,
            "hardware_id": "cpu", "chosen": True}
    skipped = {k: float("nan") for k in base} | {"run": "VGG16-it1", "status": "skipped", "reason": "no weights",
                                                  "original_test_accuracy": 76.9, "hardware_id": "", "chosen": False}
    return pd.DataFrame([base | chosen_row, skipped])


def test_results_block_shows_seed_means_first_and_dashes_for_the_unknown():
    block = docs.results_block(results_frame(), None)
    assert "93.0 ± 0.7 (5 seeds)" in block and "92.1–93.9" in block  # seed mean, spread, CI of the mean
    assert "ResNet50-it3 (chosen)" in block and "Chosen model" in block
    assert "skipped: no weights" in block and "76.9%" in block
    assert "34.9 s (33.0–37.1), 29 img/s" in block  # the timing pass: median (min–max)
    assert "not timed" in docs.results_block(results_frame(inference_s=float("nan")), None)
    one_seed = docs.results_block(results_frame(n_seeds=1, test_accuracy_seed_std=float("nan")), None)
    assert "93.0 (1 seed, no spread)" in one_seed and "± 0.0" not in one_seed


def test_face_model_block_says_when_nothing_is_measured_and_shows_what_is():
    import json

    from gfr.paths import REPORTS_DIR

    assert docs.face_model_block(None, None, None) == "No face-model measurements committed yet."
    port = json.loads((REPORTS_DIR / "descriptor-port.json").read_text())
    text = docs.face_model_block(port, None, None)
    assert "reports/descriptor-port.json" in text and f"{port['chips']:,}" in text
