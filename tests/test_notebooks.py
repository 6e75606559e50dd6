"""gfr.pipeline.notebooks: papermill execution of a notebook (kept on failure, a clean stop kept as a success) and the
train notebook's fit on the page, which gives the heads `gfr run` gives."""

from __future__ import annotations

import json

import nbformat
import pytest

from conftest import REPO, TEST_PARAMS, small_params
from gfr.errors import GfrError
from gfr.pipeline import notebooks
from gfr.study import artefacts, run
from gfr.study.registry import TRAIN_NOTEBOOK


def _script(path, *cells: str):
    """A py:percent notebook of these code cells, the first tagged `parameters`."""
    text = "# %% tags=[\"parameters\"]\n" + cells[0] + "\n" + "".join(f"\n# %%\n{c}\n" for c in cells[1:])
    path.write_text(text)
    return path


def _printed(target) -> dict[str, str]:
    """What each code cell printed, by its source ('' for a cell that did not run)."""
    nb = nbformat.read(target, as_version=4)
    return {c.source: "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
            for c in nb.cells if c.cell_type == "code"}


def test_parameter_defaults_are_the_parameters_cell(tmp_path):
    defaults = notebooks.parameter_defaults(REPO / TRAIN_NOTEBOOK)
    assert defaults["backbone"] == "ResNet50" and defaults["iteration"] == 1 and defaults["data_dir"] is None
    assert defaults["params_extra"] == [] and defaults["runs_dir"] == "reports/runs"
    bare = tmp_path / "bare.py"
    bare.write_text("# %%\nx = 1\n")
    with pytest.raises(GfrError, match="no cell tagged `parameters`"):
        notebooks.parameter_defaults(bare)


def test_a_failed_notebook_is_kept_beside_its_target_and_named(tmp_path):
    source = _script(tmp_path / "fails.py", "n = 1", "print('before')", "raise ValueError(f'broken {n}')", "print('after')")
    target = tmp_path / "out" / "fails.ipynb"
    with pytest.raises(GfrError, match=r"failed in cell \d+: ValueError: broken 2"):
        notebooks.execute_notebook(source, target, {"n": 2}, progress=False)
    assert not target.exists()
    kept = artefacts.failed_path(target)
    assert _printed(kept)["print('before')"] == "before\n" and _printed(kept)["print('after')"] == ""  # stopped there


def test_a_clean_stop_keeps_the_notebook_as_a_success(tmp_path):
    source = _script(tmp_path / "stops.py", "stop = True", "print('before')", "if stop:\n    raise SystemExit(0)",
                     "print('after')")
    target = notebooks.execute_notebook(source, tmp_path / "stops.ipynb", {}, progress=False)
    assert _printed(target)["print('before')"] == "before\n" and _printed(target)["print('after')"] == ""  # ended there
    assert not artefacts.failed_path(target).exists()
    again = notebooks.execute_notebook(source, tmp_path / "stops.ipynb", {"stop": False}, progress=False)
    assert _printed(again)["print('after')"] == "after\n"


def test_the_train_notebook_fits_the_heads_gfr_run_fits(synth_root, synth_manifest, tmp_path):
    """The fit written out on the train notebook's page and `run.train_heads` (gfr run, verify) give the same heads,
    histories and predictions, bit for bit."""
    page, library = tmp_path / "page", tmp_path / "library"
    notebooks.execute_notebook(REPO / TRAIN_NOTEBOOK, page / "ResNet50-it1.ipynb",
                               {"backbone": "ResNet50", "iteration": 1, "data_dir": str(synth_root),
                                "manifest": str(synth_manifest), "runs_dir": str(page / "runs"),
                                "cache_dir": str(tmp_path / "cache"), "params_extra": [str(TEST_PARAMS)]},
                               progress=False)
    run.run_one("ResNet50", 1, synth_root, synth_manifest, library / "runs", small_params(1), tmp_path / "cache",
                progress=False)
    ours, theirs = page / "runs" / "ResNet50-it1", library / "runs" / "ResNet50-it1"
    for name in (artefacts.HEAD_FILE, artefacts.TEST_PREDICTIONS_FILE, "seeds.csv", "history.csv"):
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name
    a, b = (json.loads((d / artefacts.MANIFEST).read_text()) for d in (ours, theirs))
    assert a["head_sha256"] == b["head_sha256"] and a["test"] == b["test"] and a["seeds"] == b["seeds"]


def test_the_train_notebook_records_a_skipped_run_and_stops(synth_root, synth_manifest, tmp_path, monkeypatch):
    """No ImageNet weights here (an empty weights folder, Keras's download refused at once by a dead proxy): the run
    is recorded as skipped with the reason, and nothing after the data cell runs."""
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    target = notebooks.execute_notebook(REPO / TRAIN_NOTEBOOK, tmp_path / "VGG16-it1.ipynb",
                                        {"backbone": "VGG16", "iteration": 1, "data_dir": str(synth_root),
                                         "manifest": str(synth_manifest), "runs_dir": str(tmp_path / "runs"),
                                         "cache_dir": str(tmp_path / "cache"), "params_extra": [str(TEST_PARAMS)],
                                         "weights": "imagenet"}, progress=False)
    record = json.loads((tmp_path / "runs" / "VGG16-it1" / artefacts.MANIFEST).read_text())
    assert record["status"] == "skipped" and "VGG16" in record["reason"]
    cells = [c for c in nbformat.read(target, as_version=4).cells if c.cell_type == "code"]
    stopped = next(i for i, c in enumerate(cells) if any(o.get("ename") == "SystemExit" for o in c.outputs))
    assert "run.save_skipped" in cells[stopped].source
    assert all(c.execution_count is None for c in cells[stopped + 1:])  # the fit and the rest never ran
    assert not (tmp_path / "cache").exists()  # no features computed
