"""Prepare every notebook for nbval: a tiny synthetic dataset and the reduced parameter set injected."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gfr.data import split, synthetic  # noqa: E402
from gfr.params import load_params  # noqa: E402
from gfr.report import notebooks  # noqa: E402


def prepare(out: Path) -> None:
    out = out.resolve()
    data = synthetic.write_dataset(out / "data", 40, seed=7, size=(64, 52))
    common = {"params_extra": [str(ROOT / "params" / "test.yaml")]}
    manifest, runs, peer = str(out / "split.csv"), str(out / "runs"), str(out / "peer")
    params = load_params(1, extra=common["params_extra"])
    split.write_manifest(*split.make_manifest(data, params.seed, params.data, progress=False), manifest)
    parameters = {
        "01_data": {**common, "data_dir": str(data), "manifest": manifest, "sample_faces": 4},
        "02_train": {**common, "backbone": "ResNet50", "iteration": 1, "data_dir": str(data), "manifest": manifest,
                     "runs_dir": runs, "cache_dir": str(out / "cache")},
        "03_evaluate": {"data_dir": str(data), "manifest": manifest, "runs_dir": runs, "peer_dir": peer,
                        "gallery_size": 4},
        "04_compare": {"runs_dir": runs, "peer_dir": peer},
    }
    for name, params in parameters.items():
        notebooks.execute_notebook(ROOT / "notebooks" / f"{name}.py", out / f"{name}.ipynb", params, prepare_only=True,
                         progress=False)


if __name__ == "__main__":
    prepare(Path(sys.argv[1] if len(sys.argv) > 1 else "build/nbval"))
