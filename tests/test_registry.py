"""The run registry: expected runs, run names, derived sources, make rules; results list every expected run."""

import pandas as pd
import pytest

from gfr.errors import GfrError
from gfr.study import registry, results
from gfr.study.registry import RunId


def test_run_names_round_trip_and_order():
    run = RunId.parse("InceptionResNetV2-it3")
    assert (run.backbone, run.iteration, run.name) == ("InceptionResNetV2", 3, "InceptionResNetV2-it3")
    assert RunId("ResNet50", 4).name == "ResNet50-it4" and RunId.parse("ResNet50-it4") == RunId("ResNet50", 4)
    names = ["ResNet50-it1", "VGG16-it2", "VGG16-it1", "InceptionV3-it3"]
    assert sorted(names, key=registry.run_order) == ["VGG16-it1", "VGG16-it2", "InceptionV3-it3", "ResNet50-it1"]
    for bad in ("ResNet50", "ResNet50-itx", "-it3"):
        with pytest.raises(GfrError, match="not a run name"):
            RunId.parse(bad)


def test_expected_runs_come_from_backbones_and_params():
    head_only = [r.name for r in registry.expected_runs(finetune=False)]
    assert len(head_only) == 23 and head_only[0] == "VGG16-it1" and "InceptionResNetV2-it3" in head_only
    # the augmented iterations 5 and 6 strengthen every backbone, dlib's descriptor included
    for it in (5, 6):
        assert [n for n in head_only if n.endswith(f"-it{it}")] == [f"{b}-it{it}" for b in (
            "VGG16", "InceptionV3", "InceptionResNetV2", "ResNet50", "DlibFaceDescriptor")]
    # dlib's descriptor takes CelebA's native size only: iterations 3, 5 and 6 (input_size null), not the
    # resizing it1/it2
    assert [n for n in head_only if n.startswith("DlibFaceDescriptor")] == [
        "DlibFaceDescriptor-it3", "DlibFaceDescriptor-it5", "DlibFaceDescriptor-it6"]
    everything = [r.name for r in registry.expected_runs()]
    assert everything == (head_only[:18] + ["ResNet50-it4", "ResNet50-it5", "ResNet50-it6", "DlibFaceDescriptor-it3",
                                            "DlibFaceDescriptor-it4", "DlibFaceDescriptor-it5", "DlibFaceDescriptor-it6"])
    assert registry.finetune_iterations() == [4]


def test_sources_are_derived_from_imports():
    sources = {str(p) for p in registry.source_files()}
    assert {"gfr/study/run.py", "gfr/models/feature_cache.py", "gfr/models/head.py", "gfr/data/split.py"} <= sources
    assert not any(s.startswith("gfr/report/") for s in sources)  # report changes never rerun the sweep
    assert "gfr/cli.py" not in sources


def test_make_rules_name_every_run():
    rules = registry.make_rules("build/inputs")
    for run in registry.expected_runs():
        assert f"reports/runs/{run.name}.ipynb: RUN_ARGS := -p backbone {run.backbone} -p iteration {run.iteration}" in rules
        assert f"reports/runs/{run.name}.ipynb: build/inputs/{run.name}.stamp" in rules
    assert "FINETUNE_RUNS := ResNet50-it4" in rules


def test_results_list_a_run_that_never_ran_as_not_run(tmp_path):
    frame = results.collect(tmp_path)  # no run at all
    assert list(frame.run) == [r.name for r in registry.expected_runs()]
    assert set(frame.status) == {results.NOT_RUN}
    assert frame.set_index("run").loc["VGG16-it1", "original_test_accuracy"] == pytest.approx(76.9)
    assert "not run" in results.summary_text(frame)


def test_results_keep_a_finished_run_and_mark_the_rest(saved_run):
    frame = results.collect(saved_run.parent)
    by_run = frame.set_index("run")
    assert by_run.loc["VGG16-it1", "status"] == "ok"
    assert (by_run.drop(index="VGG16-it1").status == results.NOT_RUN).all()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(registry.expected_runs())


def test_the_face_descriptor_has_no_random_weights():
    from gfr.models import backbones

    with pytest.raises(GfrError, match="DlibFaceDescriptor has no random initialisation"):
        backbones.resolve_weights(backbones.get("DlibFaceDescriptor"), "none")
