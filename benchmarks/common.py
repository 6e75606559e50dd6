"""Shared helpers of the benchmarks: paths, data, side-by-side timing, hardware, result files.

No TensorFlow (nor Keras) import at module level: every benchmark runs unchanged under
KERAS_BACKEND=tensorflow, jax or torch, and imports Keras only after the backend is set.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/bench_x.py` from anywhere
    sys.path.insert(0, str(REPO))

RESULTS_DIR = REPO / "benchmarks" / "results"
REAL_DATA = Path("/work/shared/celeba-5k")
DEFAULT_WEIGHTS = Path.home() / ".cache" / "gfr" / "weights"


def quiet_backends() -> None:
    """Less TensorFlow/XLA start-up chatter on stderr (set before the backend loads)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a ~1 minute smoke run (smaller sizes, fewer repeats)")
    p.add_argument("--repeats", type=int, help="alternating repetitions of each side (median is reported)")
    p.add_argument("--out", help="result JSON path (default: benchmarks/results/<name>-<device>.json)")
    p.add_argument("--no-write", action="store_true", help="print only, write no result file")
    return p


def data_root(path: str | None = None) -> tuple[Path, str]:
    """The CelebA-layout folder to use and its kind: the given one, $GFR_DATA_DIR, the real 5k subset, or None."""
    from gfr.data import celeba

    for candidate in (path, os.environ.get(celeba.DATA_ENV), REAL_DATA):
        if candidate and (Path(candidate) / celeba.ATTR_FILE).is_file() and (Path(candidate) / celeba.IMAGES_DIR).is_dir():
            return Path(candidate), "real CelebA" if "celeba" in str(candidate).lower() else "given"
    return None, "synthetic"


def synthetic_root(n: int, where: str | os.PathLike, seed: int = 0) -> Path:
    """A synthetic CelebA-layout dataset of at least `n` images under `where` (reused if already there)."""
    from gfr.data import celeba, synthetic

    where = Path(where)
    attr = where / celeba.ATTR_FILE
    if attr.is_file():
        with open(attr, encoding="ascii") as handle:
            if int(handle.readline().strip() or 0) >= n:
                return where
    return synthetic.write_dataset(where, n, seed=seed, progress=True)


def default_weights_dir() -> str | None:
    """Point $GFR_WEIGHTS_DIR at ~/.cache/gfr/weights when unset and that folder exists; return its value."""
    from gfr.models import backbones

    if not os.environ.get(backbones.WEIGHTS_ENV) and DEFAULT_WEIGHTS.is_dir():
        os.environ[backbones.WEIGHTS_ENV] = str(DEFAULT_WEIGHTS)
    return os.environ.get(backbones.WEIGHTS_ENV)


def resolve(backbone_name: str, want_real: bool = True):
    """(Weights, label): the backbone's ImageNet weights from $GFR_WEIGHTS_DIR if there, else random (weights none)."""
    from gfr.models import backbones
    from gfr.errors import GfrError

    backbone = backbones.get(backbone_name)
    if want_real:
        folder = default_weights_dir()
        if folder and backbones.find_weights_file(backbone, Path(folder).expanduser()):
            try:
                w = backbones.resolve_weights(backbone, "imagenet")
                return w, f"real ImageNet weights ({Path(w.path).name})"
            except GfrError:
                pass
    return backbones.RANDOM, "weights none (random initialisation: same compute, not the study's weights)"


def alternate(sides: dict, repeats: int, label: str = "") -> dict:
    """Run each side's callable `repeats` times, alternating the order (A B, B A, A B, ...).

    Each callable returns its measured seconds (or None to use its wall time). Returns
    {side: {"runs_s": [...], "median_s": m, "min_s": lo, "max_s": hi}} plus the order actually run.
    """
    names = list(sides)
    runs = {n: [] for n in names}
    order = []
    for rep in range(repeats):
        turn = names if rep % 2 == 0 else names[::-1]
        for name in turn:
            start = time.perf_counter()
            measured = sides[name]()
            wall = time.perf_counter() - start
            seconds = wall if measured is None else float(measured)
            runs[name].append(seconds)
            order.append(name)
            print(f"  {label}rep {rep + 1}/{repeats} {name}: {seconds:.2f} s", flush=True)
    out = {n: {"runs_s": runs[n], "median_s": statistics.median(runs[n]), "min_s": min(runs[n]), "max_s": max(runs[n])}
           for n in names}
    out["order"] = order
    return out


def verdict(value: float, target: float, kind: str) -> str:
    """'PASS' or 'MISS' for a ratio against its target (kind '>=', '<=', or 'within': |value - 1| <= target)."""
    ok = {">=": value >= target, "<=": value <= target, "within": abs(value - 1.0) <= target}[kind]
    return "PASS" if ok else "MISS"


def ratio(name: str, value: float, target: float, kind: str, unit: str = "x") -> dict:
    """Print one ratio against its target and return it as a dict for the result file."""
    v = verdict(value, target, kind)
    goal = f"1 +- {target:.0%}" if kind == "within" else f"{kind} {target}{unit}"
    print(f"RATIO {name}: {value:.3f}{unit} (target {goal}) {v}", flush=True)
    return {"name": name, "value": value, "target": target, "target_kind": kind, "verdict": v}


def device_kind() -> str:
    """'gpu' when the active Keras backend computes on a GPU, else 'cpu'."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return "gpu" if jax.devices()[0].platform == "gpu" else "cpu"
        if backend == "torch":
            import torch

            return "gpu" if torch.cuda.is_available() else "cpu"
        if backend == "tensorflow":
            import tensorflow as tf  # only when TensorFlow is the backend already loaded

            return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    except Exception:
        pass
    return "cpu"


def peak_rss_mib() -> dict:
    """This process's peak resident memory: ru_maxrss and /proc/self/status VmHWM, in MiB."""
    out = {"ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0] + "_mib"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def load_average() -> list[float] | None:
    """1/5/15-minute load average (other work on the machine shows here)."""
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def write_result(name: str, payload: dict, args, started: float, hardware: dict | None = None, device: str | None = None) -> Path | None:
    """Write benchmarks/results/<name>-<device>.json atomically (with hardware and run time); return its path."""
    from gfr import files
    from gfr.study import hardware as hw

    info = hardware or hw.describe()
    device = device or device_kind()
    record = {
        "benchmark": name,
        "device": device,
        "hardware": info,
        "hardware_id": hw.hardware_id(info),
        "quick": bool(getattr(args, "quick", False)),
        "argv": sys.argv[1:],
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runtime_s": time.perf_counter() - started,
        "load_average_at_end": load_average(),
        **payload,
    }
    print(f"{name}: total runtime {record['runtime_s']:.0f} s on {record['hardware_id']}", flush=True)
    if getattr(args, "no_write", False):
        return None
    suffix = "-quick" if record["quick"] else ""
    backend = info.get("keras_backend", "tensorflow")
    if backend in ("jax", "torch"):  # TensorFlow is the study's backend; others get their own files
        suffix = f"-{backend}{suffix}"
    path = Path(args.out) if getattr(args, "out", None) else RESULTS_DIR / f"{name}-{device}{suffix}.json"
    files.write_json(path, record)
    print(f"wrote {path}", flush=True)
    return path
