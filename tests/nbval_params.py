"""Prepare every notebook for nbval: a tiny synthetic dataset, the reduced parameter set injected, and saved runs
of every kind (finished head runs, a fine-tuned run, a skipped run, a peer summary) so that every branch of the
evaluate and compare notebooks executes."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gfr.data import split, synthetic  # noqa: E402
from gfr.params import load_params  # noqa: E402
from gfr.pipeline import notebooks  # noqa: E402
from gfr import files  # noqa: E402
from gfr.study import peer, run, verify  # noqa: E402


def saved_runs(data, manifest, runs, cache, extra) -> None:
    """More finished head runs (augmented ones too), a fine-tuned run and a skipped run beside the one 02_train
    executes."""
    run.run_one("VGG16", 1, data, manifest, runs, load_params(1, {"input_size": [32, 32]}, extra=extra), cache,
                progress=False)
    tuned = load_params(4, {"input_size": [64, 64], "finetune": {"epochs": 2, "batch_size": 8}}, extra=extra)
    run.run_one("ResNet50", 4, data, manifest, runs, tuned, cache, progress=False)
    for backbone, iteration in (("VGG16", 3), ("VGG16", 5), ("ResNet50", 5)):  # augmentation, its effect, an ensemble
        run.run_one(backbone, iteration, data, manifest, runs,
                    load_params(iteration, {"input_size": [32, 32]}, extra=extra), cache, progress=False)
    skipped = run.prepare_run("InceptionV3", 1, data, manifest, runs, load_params(1, extra=extra), cache, False)
    skipped.weights, skipped.skipped_reason = None, "test fixture: no ImageNet weights for this run"
    run.save_skipped(skipped)


def wild_predictions(runs, out) -> str:
    """A tiny in-the-wild folder (synthetic faces of two sources) and the saved runs' (and the peer's) predictions
    on it, as `gfr wild` writes them; the default framing where dlib's models are installed, else none."""
    import numpy as np
    import pandas as pd

    from gfr import files
    from gfr.study import wild
    from gfr.data import synthetic

    root = out / "wild-dev"
    (root / wild.IMAGES).mkdir(parents=True, exist_ok=True)
    rng, rows = np.random.default_rng(3), []
    for k in range(12):
        name, male = f"{'utk' if k % 2 else 'lfw'}_{k}.jpg", int(k % 4 < 2)
        synthetic.face(bool(male), rng, (80, 70)).save(root / wild.IMAGES / name)
        rows.append({"file": name, "male": male, "source": "utkface" if k % 2 else "lfw-grayscale"})
    files.write_csv(root / wild.LABELS, pd.DataFrame(rows))
    predictions = out / "wild"
    try:
        from gfr.data import faces

        faces.model_file(faces.LANDMARKS_FILE)
        framings = ["landmarks", "none"]
    except Exception:  # dlib or its models not installed: the whole-image path only
        framings = ["none"]
    for name in wild.finished_runs(runs):
        for framing in framings:
            wild.predict_run(Path(runs) / name, root, predictions, framing, progress=False)
    if peer.available()[0]:
        wild.predict_peer(root, predictions, progress=False)
    return str(predictions)


def peer_summary(data, manifest, out) -> None:
    """The peer baseline on the synthetic test split, where its package is installed (CI installs it)."""
    if peer.available()[0]:
        peer.run_peer(data, manifest, out, progress=False)


def prepare(out: Path) -> None:
    out = out.resolve()
    data = synthetic.write_dataset(out / "data", 40, seed=7, size=(64, 52))
    common = {"params_extra": [str(ROOT / "params" / "test.yaml")]}
    manifest, runs, peer = str(out / "split.csv"), str(out / "runs"), str(out / "peer")
    params = load_params(1, extra=common["params_extra"])
    split.write_manifest(*split.make_manifest(data, params.seed, params.data, progress=False), manifest)
    saved_runs(data, manifest, runs, str(out / "cache"), common["params_extra"])
    peer_summary(data, manifest, peer)
    files.write_csv(out / "verify.csv", verify.compare(runs, runs))  # a verify table: the saved runs against themselves
    wild_dir = wild_predictions(runs, out)
    parameters = {
        "00_results": {"runs_dir": runs, "peer_dir": peer, "verify_table": str(out / "verify.csv"),
                       "confirm_summary": str(out / "no-confirm.json"), "predict_benchmark": str(out / "no-bench.json")},
        "01_data": {**common, "data_dir": str(data), "manifest": manifest, "sample_faces": 4},
        "02_train": {**common, "backbone": "ResNet50", "iteration": 1, "data_dir": str(data), "manifest": manifest,
                     "runs_dir": runs, "cache_dir": str(out / "cache")},
        "03_evaluate": {"data_dir": str(data), "manifest": manifest, "runs_dir": runs, "peer_dir": peer,
                        "gallery_size": 4},
        "04_compare": {"runs_dir": runs, "peer_dir": peer, "verify_table": str(out / "verify.csv"),
                       "manifest": manifest, "data_dir": str(data),
                       **{name: str(out / f"no-{name}.json")  # the committed measurements are the real study's
                          for name in ("wild_summary", "confirm", "face_finding", "face_locate", "face_check")}},
        "05_beyond_celeba": {"runs_dir": runs, "peer_dir": peer, "wild_predictions": wild_dir, "data_dir": str(data),
                             "manifest": manifest, "cache_dir": str(out / "cache"),
                             "face_locate": str(out / "no-face-locate.json"),
                             "ensemble_runs": ["VGG16-it5", "ResNet50-it5"]},
    }
    for name, params in parameters.items():
        notebooks.execute_notebook(ROOT / "notebooks" / f"{name}.py", out / f"{name}.ipynb", params, prepare_only=True,
                         progress=False)


if __name__ == "__main__":
    prepare(Path(sys.argv[1] if len(sys.argv) > 1 else "build/nbval"))
