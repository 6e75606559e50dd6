"""Shared fixtures: a hermetic environment, a small synthetic CelebA-layout dataset and its split manifest.

Everything runs on synthetic JPEGs with random-weight backbones (weights=none) at small sizes, so the
suite needs neither the real data nor ImageNet weights. Tests that do need them use the `real_data` /
`real_weights` fixtures, which skip (with the reason) when they are absent.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PARAMS_DIR = REPO / "params"
TEST_PARAMS = PARAMS_DIR / "test.yaml"
PYTHON = sys.executable

# The real data and weights, as the caller's environment names them, captured before it is made hermetic.
REAL_DATA = Path(os.environ.get("GFR_DATA_DIR") or REPO.parent / "shared" / "celeba-5k")
REAL_WEIGHTS = Path(os.environ.get("GFR_WEIGHTS_DIR") or Path.home() / ".cache" / "gfr" / "weights").expanduser()

# Hermetic environment, set before anything imports Keras: TensorFlow backend, quiet logs, and every cache
# (features, Keras downloads) in a private temporary folder, so tests never touch ~/.cache or ~/.keras.
_SCRATCH = Path(tempfile.mkdtemp(prefix="gfr-tests-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ["GFR_CACHE_DIR"] = str(_SCRATCH / "feature-cache")
os.environ["KERAS_HOME"] = str(_SCRATCH / "keras-home")
os.environ.pop("GFR_DATA_DIR", None)
os.environ.pop("GFR_WEIGHTS_DIR", None)

SYNTH_N = 40
SYNTH_SIZE = (64, 52)  # height, width of the synthetic JPEGs (the test params resize them to 48x48)


def small_params(iteration: int = 1, overrides: dict | None = None):
    """The reduced parameter set (params/test.yaml) for one iteration."""
    from gfr.params import load_params

    return load_params(iteration, overrides, extra=[TEST_PARAMS])


def gfr_cli(*args, cwd=None, env=None, timeout=300, check=False) -> subprocess.CompletedProcess:
    """Run `python -m gfr ...` in a fresh process and capture its output."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.run([PYTHON, "-m", "gfr", *map(str, args)], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"gfr {' '.join(map(str, args))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch):
    """Each test starts with no data or weights folder configured (a test may set its own)."""
    monkeypatch.delenv("GFR_DATA_DIR", raising=False)
    monkeypatch.delenv("GFR_WEIGHTS_DIR", raising=False)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """40 synthetic face-like JPEGs (64x52) with a CelebA-layout attribute file. Read-only for tests."""
    from gfr.data import synthetic

    return synthetic.write_dataset(tmp_path_factory.mktemp("synth") / "data", SYNTH_N, seed=0, size=SYNTH_SIZE)


@pytest.fixture(scope="session")
def synth_manifest(synth_root, tmp_path_factory) -> Path:
    """The seeded 60/20/20 split manifest of `synth_root`, written with the test parameters."""
    from gfr.data import split

    params = small_params(1)
    manifest, excluded = split.make_manifest(synth_root, params.seed, params.data, progress=False)
    return split.write_manifest(manifest, excluded, tmp_path_factory.mktemp("split") / "split.csv")


@pytest.fixture
def real_data() -> Path:
    """The real 5,000-image CelebA subset (../shared/celeba-5k or $GFR_DATA_DIR); skips when absent."""
    if not (REAL_DATA / "list_attr_celeba.txt").is_file() or not (REAL_DATA / "img_align_celeba").is_dir():
        pytest.skip(f"real CelebA data not found at {REAL_DATA} (set GFR_DATA_DIR)")
    return REAL_DATA


@pytest.fixture
def real_weights() -> Path:
    """A folder holding Keras's ResNet50 no-top ImageNet weights ($GFR_WEIGHTS_DIR); skips when absent."""
    name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if not (REAL_WEIGHTS / name).is_file():
        pytest.skip(f"real ResNet50 weights {name} not found in {REAL_WEIGHTS} (set GFR_WEIGHTS_DIR)")
    return REAL_WEIGHTS


def run_args(data, manifest, runs_dir, cache_dir, backbone="ResNet50", iteration=1, *extra):
    """Arguments of `gfr run` on synthetic data with the test parameters and a random backbone."""
    return ["run", backbone, str(iteration), "--data-dir", data, "--manifest", manifest, "--params", TEST_PARAMS,
            "--weights", "none", "--runs-dir", runs_dir, "--cache-dir", cache_dir, *extra]


@pytest.fixture(scope="session")
def cli_run(synth_root, tmp_path_factory) -> dict:
    """`gfr split` then `gfr run ResNet50 1` (test params, weights none) on the synthetic set, in fresh processes."""
    work = tmp_path_factory.mktemp("cli-run")
    manifest = work / "split.csv"
    split_proc = gfr_cli("split", "--data-dir", synth_root, "--params", TEST_PARAMS, "--out", manifest, cwd=work)
    assert split_proc.returncode == 0, split_proc.stderr
    run_proc = gfr_cli(*run_args(synth_root, manifest, work / "runs", work / "cache"), cwd=work)
    assert run_proc.returncode == 0, f"{run_proc.stdout}\n{run_proc.stderr}"
    return {"work": work, "manifest": manifest, "split": split_proc, "run": run_proc,
            "run_dir": work / "runs" / "ResNet50-it1", "cache": work / "cache"}


@pytest.fixture(scope="session")
def saved_run(synth_root, synth_manifest, tmp_path_factory) -> Path:
    """A finished run (VGG16, random weights, 32x32) saved by gfr.study.run.run_one on the synthetic set."""
    from gfr.study import run

    work = tmp_path_factory.mktemp("saved-run")
    params = small_params(1, {"input_size": [32, 32]})
    record = run.run_one("VGG16", 1, synth_root, synth_manifest, work / "runs", params, work / "cache", progress=False)
    assert record["status"] == "ok"
    return work / "runs" / "VGG16-it1"


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray (2 CPUs, on 127.0.0.1 only) for the tests that use one; skips when Ray is not installed."""
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray is first imported: loopback only
    pytest.importorskip("ray", reason="Ray is not installed (the optional extra: pip install -e '.[ray]')")
    from gfr.pipeline import cluster

    ray = cluster.connect(num_cpus=2)
    yield cluster
    ray.shutdown()


def predict_rows(run_dir, inputs, weights=None, detect_faces: bool = False, batch_size: int = 32,
                 no_face: str = "skip") -> list[dict]:
    """Every row `gfr predict` would stream for `inputs`, as a list (the inputs checked first, as the CLI does)."""
    from gfr import predict
    from gfr.study import saved

    inputs = predict.check_inputs(inputs)
    return list(predict.stream(saved.load_model(run_dir, weights), inputs, detect_faces, batch_size, no_face=no_face))


@pytest.fixture
def run_copy(saved_run, tmp_path) -> Path:
    """A copy of the saved run, free to edit."""
    out = tmp_path / "VGG16-it1"
    shutil.copytree(saved_run, out)
    return out


def edit_record(run_dir: Path, **change) -> None:
    """Change keys of a run's manifest in place."""
    from gfr.study import artefacts

    path = run_dir / artefacts.MANIFEST
    record = json.loads(path.read_text())
    record.update(change)
    path.write_text(json.dumps(record))


FAKE_HARDWARE = {"cpu": "Test CPU", "cores": 2, "gpus": [], "keras_backend": "tensorflow"}


def fake_manifest(runs_dir, name, status="ok", weights_file=None, sha="0" * 64, input_size=(128, 128), native=False,
                  accuracy=0.85):
    """A run manifest as gfr.study.run writes it, with the fields the report's departures, caveats and results read
    (no head or predictions: for tables of runs, not for predicting)."""
    from gfr.study import artefacts

    backbone, _, iteration = name.rpartition("-it")
    record = {"run": name, "backbone": backbone, "iteration": int(iteration), "status": status,
              "input_size": list(input_size), "native_input": native, "hardware": FAKE_HARDWARE,
              "params": {"epochs": 1, "head": {"seeds": [1]}}}
    if status == "ok":
        record.update(weights_file=str(weights_file) if weights_file else None, weights_sha256=sha,
                      weights_origin="test", train_accuracy=0.9, train_loss=0.1, val_accuracy=0.9, val_loss=0.1,
                      test={"accuracy": accuracy, "accuracy_ci_low": accuracy - 0.02, "accuracy_ci_high": accuracy + 0.02,
                            "roc_auc": 0.9},
                      seeds={"val_accuracy_mean": 0.9, "val_accuracy_std": 0.0, "test_accuracy_mean": accuracy,
                             "test_accuracy_std": 0.001, "test_accuracy_ci_low": accuracy - 0.002,
                             "test_accuracy_ci_high": accuracy + 0.002},
                      inference={"median_s": 1.0, "images_per_s": 100.0, "load_average": [3.0, 3.0, 3.0]})
    else:
        record["reason"] = f"{backbone}: no ImageNet weights here"
    (runs_dir / name).mkdir(parents=True, exist_ok=True)
    artefacts.write_manifest(runs_dir / name, record)
    return record


def squeezed(markdown):
    """Markdown text (or a dict of it) with each table row's padding squeezed out, '| a | b |', to match rows by
    their cells whatever the column widths."""
    if isinstance(markdown, dict):
        return {k: squeezed(v) for k, v in markdown.items()}
    lines = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            line = "|" + "---|" * len(cells) if all(set(c) <= set("-:") and c for c in cells) else \
                "| " + " | ".join(cells) + " |"
        lines.append(line)
    return "\n".join(lines)
