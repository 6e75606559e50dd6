"""Staleness by content: fingerprints of a run's and a product's inputs, stamps, records, adoption, FORCE."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import TEST_PARAMS, gfr_cli, small_params
from gfr.data import celeba, split
from gfr.params import load_params
from gfr.study import artefacts, inputs
from gfr.study.registry import RunId, expected_runs

RUN = RunId("ResNet50", 1)
WEIGHTS = {"sha256": "0" * 64}


def _fingerprint(params, manifest: Path, data: Path, weights=WEIGHTS) -> str:
    ids = list(split.read_manifest(manifest).image_id)
    images = inputs.images_part(data / celeba.IMAGES_DIR, ids)
    return inputs.run_inputs(params, split.manifest_hash(manifest), images, weights)["fingerprint"]


@pytest.fixture
def copies(synth_root, synth_manifest, tmp_path):
    """Copies of the synthetic data, its split manifest and the test params, free to edit."""
    data, manifest, extra = tmp_path / "data", tmp_path / "split.csv", tmp_path / "extra.yaml"
    shutil.copytree(synth_root, data)
    shutil.copy(synth_manifest, manifest)
    extra.write_text("epochs: 2\n")
    return data, manifest, extra


def test_a_run_fingerprint_follows_every_part_and_ignores_file_times(copies, monkeypatch, tmp_path):
    data, manifest, extra = copies
    code = tmp_path / "module.py"
    code.write_text("x = 1\n")
    monkeypatch.setattr(inputs, "source_files", lambda *starts: [code])
    params = load_params(1, extra=[TEST_PARAMS, extra])
    before = _fingerprint(params, manifest, data)

    for path in (extra, manifest, code, data / celeba.IMAGES_DIR / "000001.jpg"):
        os.utime(path, ns=(1, 1))  # a touch (or a fresh clone's checkout times) changes nothing
    assert _fingerprint(params, manifest, data) == before

    changed = {}
    extra.write_text("epochs: 3\n")
    changed["params"] = _fingerprint(params, manifest, data)
    extra.write_text("epochs: 2\n")
    code.write_text("x = 2\n")
    changed["code"] = _fingerprint(params, manifest, data)
    code.write_text("x = 1\n")
    changed["weights"] = _fingerprint(params, manifest, data, {"sha256": "1" * 64})
    changed["no weights"] = _fingerprint(params, manifest, data, inputs.weights_part(None, "no weights here"))
    image = data / celeba.IMAGES_DIR / "000001.jpg"
    original = image.read_bytes()
    image.write_bytes(original + b"\0")
    changed["image"] = _fingerprint(params, manifest, data)
    image.write_bytes(original)
    text = manifest.read_text()
    manifest.write_text(text.replace(",train,", ",val,", 1))
    changed["split"] = _fingerprint(params, manifest, data)
    manifest.write_text(text)

    assert _fingerprint(params, manifest, data) == before  # every part back as it was
    assert before not in changed.values() and len(set(changed.values())) == len(changed), changed


def test_a_run_records_its_inputs_as_the_stamps_compute_them(saved_run, synth_root, synth_manifest):
    from gfr.models import backbones

    record = artefacts.load_record(saved_run)
    assert record["inputs_recorded"] == inputs.RECORDED_AT_RUN
    params = small_params(1, {"input_size": [32, 32]})
    weights = inputs.weights_part(backbones.resolve_weights(backbones.get("VGG16"), "none"))
    assert record["inputs"]["fingerprint"] == _fingerprint(params, synth_manifest, synth_root, weights)
    assert record["inputs"]["parts"]["params"]["overrides: effective values"]["input_size"] == [32, 32]
    assert "notebooks/02_train.py" in record["inputs"]["parts"]["code"]


@pytest.fixture
def project(synth_root, synth_manifest, tmp_path, monkeypatch):
    """A project folder (reports/ only; code and params are this checkout's) with the synthetic data, every
    weights file known, the split recorded and one run, ResNet50-it1, saved with today's inputs."""
    monkeypatch.setenv(celeba.DATA_ENV, str(synth_root))
    monkeypatch.setattr(inputs.Today, "weights", lambda self, backbone, spec: WEIGHTS)
    root = tmp_path / "project"
    (root / "reports" / "runs" / RUN.name).mkdir(parents=True)
    shutil.copy(synth_manifest, root / "reports" / "split.csv")
    inputs.record_product("split", root=root)
    save_run(root, RUN, inputs.Today(root).run(RUN))
    return root


def save_run(root: Path, run: RunId, recorded: dict | None, **more) -> Path:
    folder = root / "reports" / "runs" / run.name
    folder.mkdir(parents=True, exist_ok=True)
    artefacts.write_manifest(folder, {"run": run.name, "status": "ok", **({"inputs": recorded} if recorded else {}),
                                      **more})
    (folder.parent / f"{run.name}.ipynb").write_text("{}")
    return folder / artefacts.MANIFEST


def stamps(root: Path, **options) -> tuple[dict[str, bool], str]:
    """{name: stamp is current (dated OLD_NS)} after writing the stamps, and the make lines."""
    lines = inputs.write_stamps(root / "build" / "inputs", root=root, **options)
    return {p.stem: p.stat().st_mtime_ns == inputs.OLD_NS for p in (root / "build" / "inputs").glob("*.stamp")}, lines


def test_a_stamp_is_old_exactly_when_the_manifest_records_todays_inputs(project):
    current, _ = stamps(project)
    assert current[RUN.name] and current["split"]
    assert not any(current[r.name] for r in expected_runs() if r != RUN)  # never run: stale
    stamp = project / "build" / "inputs" / f"{RUN.name}.stamp"
    assert stamp.read_text().strip() == inputs.Today(project).run(RUN)["fingerprint"]
    written = {p: p.stat().st_mtime_ns for p in stamp.parent.glob("*.stamp")}
    stamps(project)
    assert {p: p.stat().st_mtime_ns for p in stamp.parent.glob("*.stamp")} == written  # nothing changed: untouched

    manifest = project / "reports" / "runs" / RUN.name / artefacts.MANIFEST
    save_run(project, RUN, {**inputs.Today(project).run(RUN), "fingerprint": "other inputs"})
    assert not stamps(project)[0][RUN.name]
    save_run(project, RUN, inputs.Today(project).run(RUN))
    (project / "reports" / "runs" / f"{RUN.name}.ipynb").unlink()
    assert not stamps(project)[0][RUN.name]  # no executed notebook: stale
    assert manifest.is_file()


def test_a_stale_split_makes_every_run_stale(project):
    records = json.loads((project / inputs.RECORDS).read_text())
    records["split"]["fingerprint"] = "the split of other inputs"
    (project / inputs.RECORDS).write_text(json.dumps(records))
    current, _ = stamps(project)
    assert not current["split"] and not current[RUN.name]


def test_force_dates_every_stamp_now(project):
    assert stamps(project)[0][RUN.name]
    forced, _ = stamps(project, force=True)
    assert not any(forced.values())
    assert stamps(project)[0][RUN.name]  # without force again: back to old


def record_collected(project):
    """The timing pass and the last-epoch table (what every reader of the results comes after), made and recorded."""
    for name in inputs.COLLECTED_BY:
        (project / inputs.PRODUCTS[name].target).write_text("{}")
        inputs.record_product(name, root=project)


def test_a_product_is_stale_when_its_inputs_change_or_a_run_is(project):
    results = project / "reports" / "results.csv"
    results.write_text("run\n")
    for r in expected_runs():  # every run current: the results too, once recorded (after the timing pass they read)
        save_run(project, r, inputs.Today(project).run(r))
    assert not stamps(project)[0]["results"]
    record_collected(project)
    inputs.record_product("results", root=project)
    assert stamps(project)[0]["results"]
    os.utime(results, ns=(1, 1))
    assert stamps(project)[0]["results"]  # file times play no part
    save_run(project, RUN, inputs.Today(project).run(RUN), status="skipped")  # a run's outputs changed
    assert not stamps(project)[0]["results"]
    record_collected(project)
    inputs.record_product("results", root=project)
    assert stamps(project)[0]["results"]
    save_run(project, RUN, None, status="skipped")  # the run is stale (no inputs recorded): so are the results
    assert not stamps(project)[0]["results"]
    save_run(project, RUN, inputs.Today(project).run(RUN), status="skipped")
    record_collected(project)
    inputs.record_product("results", root=project)
    tuned = [r for r in expected_runs() if r not in expected_runs(False)][0]
    save_run(project, tuned, None)  # a stale fine-tuned run counts only when the fine-tuned runs are made
    assert not stamps(project)[0]["results"]
    assert stamps(project, finetune=False)[0]["results"]


def test_the_wild_cache_is_needed_only_by_a_stale_notebook(project):
    notebook = project / inputs.PRODUCTS["05_beyond_celeba"].target
    _, lines = stamps(project)
    assert f"{notebook.relative_to(project)}: | reports/wild/.done" in lines  # 05 not built yet
    for r in expected_runs():
        save_run(project, r, inputs.Today(project).run(r))
    record_collected(project)
    notebook.write_text("{}")
    inputs.record_product("05_beyond_celeba", root=project)
    current, lines = stamps(project)
    assert current["05_beyond_celeba"] and not current["wild"] and lines == ""  # the cache is absent, not needed


def test_adopt_marks_what_has_no_inputs_and_never_overwrites(project):
    kept = save_run(project, RunId("VGG16", 2), {"fingerprint": "recorded at run time", "parts": {}},
                    inputs_recorded=inputs.RECORDED_AT_RUN)
    before = kept.read_bytes()
    adopted = save_run(project, RunId("VGG16", 1), None, test={"accuracy": 0.5})
    (project / "reports" / "results.csv").write_text("run\n")

    done = inputs.adopt(project)
    assert "VGG16-it1: adopted" in done and "VGG16-it2: kept (recorded at run time)" in done
    assert "results: adopted" in done and "split: kept (recorded at build time)" in done
    assert kept.read_bytes() == before
    record = json.loads(adopted.read_text())
    assert record["inputs_recorded"] == inputs.ADOPTED and record["test"] == {"accuracy": 0.5}
    assert record["inputs"] == inputs.Today(project).run(RunId("VGG16", 1))
    assert json.loads((project / inputs.RECORDS).read_text())["results"]["recorded"] == inputs.ADOPTED
    assert stamps(project)[0]["VGG16-it1"]

    again = inputs.adopt(project)
    assert "VGG16-it1: kept (recorded adopted)" in again and "results: kept (recorded adopted)" in again
    assert json.loads(adopted.read_text()) == record


def test_recording_an_unknown_product_is_one_clear_error():
    proc = gfr_cli("runs", "--record", "nonsense")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("gfr: error: 'nonsense' is not a product")


def test_why_names_the_parts_that_differ(project):
    assert inputs.why(RUN.name, project) == []
    recorded = inputs.Today(project).run(RUN)
    params = dict(recorded["parts"]["params"], **{"params/base.yaml": "an older base"})
    save_run(project, RUN, {**recorded, "parts": {**recorded["parts"], "split_manifest": "another split",
                                                  "params": params}})
    today = recorded["parts"]
    assert inputs.why(RUN.name, project) == [
        f"params / params/base.yaml: recorded an older base, today {today['params']['params/base.yaml']}",
        f"split_manifest: recorded another split, today {today['split_manifest']}"]
    assert inputs.why("results", project) == ["results: no inputs recorded"]
    assert inputs.why("wild", project) == ["reports/wild/.done: absent (its inputs' parts are not kept)"]
