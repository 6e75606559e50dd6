"""Backends: feature-extraction throughput (img/s) per backbone and input size under TensorFlow, JAX and PyTorch.

The Keras backend is fixed per process, so each backend runs in its own long-lived worker subprocess
(KERAS_BACKEND=...), driven over a pipe. For each (backbone, size) cell every worker builds the extractor
(gfr.models.backbones.build_extractor, weights none: random initialisation has the same compute as ImageNet
weights, and VGG16/InceptionResNetV2 weights are not on this machine) and warms it up; then the parent
alternates the backends repetition by repetition (rotating their order) while the others wait idle.
Each repetition is gfr.models.feature_cache.compute over the same real JPEG files (decode + resize + preprocess +
forward), timed in the worker. Reported: median img/s per backend and cell, and each backend's speed
relative to TensorFlow (e.g. jax/tensorflow = 2.0 means JAX is twice as fast).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "backends"
BACKENDS = ("tensorflow", "jax", "torch")
BACKBONES = ("ResNet50", "InceptionV3", "VGG16", "InceptionResNetV2")
SIZES = ((128, 128), (218, 178))
MARK = "@@bench@@ "


# ---------------------------------------------------------------- worker (one per backend)

def worker(data_dir: str, n_paths: int) -> int:
    """Answer JSON commands on stdin, one JSON line (prefixed with MARK) per command on stdout."""
    import gc

    import numpy as np

    out_stream = sys.stdout
    sys.stdout = sys.stderr  # anything the libraries print goes to stderr, keeping the answer channel clean

    def answer(obj):
        out_stream.write(MARK + json.dumps(obj) + "\n")
        out_stream.flush()

    try:
        import keras

        from gfr.models import backbones, feature_cache
        from gfr.data import celeba
        from gfr.study import hardware
    except Exception as exc:  # a backend that is not installed
        answer({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    root = Path(data_dir)
    ids = sorted(p.name for p in (root / celeba.IMAGES_DIR).iterdir())[:n_paths]
    paths = [celeba.image_path(root, i) for i in ids]
    state = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "hello":
                answer({"backend": keras.backend.backend(), "hardware": hardware.describe(), "device": common.device_kind()})
            elif op == "build":
                state.clear()
                gc.collect()
                keras.backend.clear_session()
                keras.utils.set_random_seed(1024)
                bb = backbones.get(cmd["backbone"])
                size = tuple(cmd["size"])
                t0 = time.perf_counter()
                extractor = backbones.build_extractor(bb, size, False, backbones.RANDOM, init_seed=1024)
                t1 = time.perf_counter()
                batch = cmd["batch"]
                out = np.zeros((len(paths), bb.feature_dim), np.float32)
                feature_cache.compute(extractor, bb, paths[: batch * cmd["warmup_batches"]], size, batch, out, False)
                t2 = time.perf_counter()
                state.update(extractor=extractor, bb=bb, size=size, batch=batch, out=out)
                answer({"build_s": t1 - t0, "warmup_s": t2 - t1})
            elif op == "time":
                n = cmd["images"]
                t0 = time.perf_counter()
                feature_cache.compute(state["extractor"], state["bb"], paths[:n], state["size"], state["batch"], state["out"], False)
                seconds = time.perf_counter() - t0
                answer({"seconds": seconds, "images": n, "checksum": float(np.abs(state["out"][:n]).sum())})
            elif op == "quit":
                answer({"bye": True})
                return 0
        except Exception as exc:
            answer({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"})
    return 0


class Worker:
    """The parent's handle on one backend's worker subprocess."""

    def __init__(self, backend: str, data_dir: Path, n_paths: int, log_dir: Path):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        self.backend = backend
        self.log = open(log_dir / f"{backend}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--data-dir", str(data_dir), "--worker-paths", str(n_paths)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, bufsize=1,
        )

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        return {"error": f"worker exited (code {self.proc.wait()}); see {self.log.name}"}

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.ask(op="quit")
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
        self.log.close()


# ---------------------------------------------------------------- parent

def main(argv=None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    p.add_argument("--sizes", nargs="+", default=[f"{h}x{w}" for h, w in SIZES], help="HxW input sizes")
    p.add_argument("--images", type=int, default=96,
                   help="timed images per cell and backend, over all repeats (default 96: keeps the full run near 10 minutes)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--data-dir", help="CelebA-layout folder (default: the real 5k subset, else synthetic)")
    p.add_argument("--worker", action="store_true", help=argparse_hidden())
    p.add_argument("--worker-paths", type=int, default=256, help=argparse_hidden())
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.data_dir, args.worker_paths)
    started = time.perf_counter()
    if args.quick:
        args.backbones = [b for b in args.backbones if b == "VGG16"] or args.backbones[:1]
        args.sizes = args.sizes[:1]
        args.images = min(args.images, 32)
    repeats = args.repeats or (2 if args.quick else 3)
    batch = args.batch_size
    per_rep = max(batch, (args.images // repeats) // batch * batch)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]

    root, data_kind = common.data_root(args.data_dir)
    if root is None:
        root, data_kind = common.synthetic_root(per_rep, Path(tempfile.gettempdir()) / "gfr-bench-synthetic"), "synthetic"
    print(f"backends: {', '.join(args.backends)}; {', '.join(args.backbones)} at {', '.join(args.sizes)}; weights none; "
          f"{repeats} alternating repeats x {per_rep} {data_kind} images (batch {batch}) per cell and backend", flush=True)

    log_dir = Path(tempfile.mkdtemp(prefix="gfr-bench-backends-"))
    workers, info = {}, {}
    for backend in args.backends:
        w = Worker(backend, root, per_rep, log_dir)
        hello = w.ask(op="hello")
        if "error" in hello:
            print(f"  {backend}: unavailable ({hello['error']}); skipped", flush=True)
            info[backend] = hello
            w.close()
            continue
        workers[backend], info[backend] = w, hello
        extra = {k: v for k, v in hello["hardware"].items() if k in ("tensorflow", "jax", "torch")}
        print(f"  {backend} worker ready on {hello['device']} {extra}", flush=True)
    names = list(workers)
    cells = []
    try:
        for backbone in args.backbones:
            for size in sizes:
                cell = {"backbone": backbone, "size": list(size), "build": {}, "runs_s": {n: [] for n in names}, "errors": {}}
                for name in names:
                    built = workers[name].ask(op="build", backbone=backbone, size=list(size), batch=batch, warmup_batches=1)
                    if "error" in built:
                        cell["errors"][name] = built["error"]
                    else:
                        cell["build"][name] = built
                live = [n for n in names if n not in cell["errors"]]
                for rep in range(repeats):
                    order = live[rep % len(live):] + live[: rep % len(live)] if live else []
                    for name in order:
                        res = workers[name].ask(op="time", images=per_rep)
                        if "error" in res:
                            cell["errors"][name] = res["error"]
                        else:
                            cell["runs_s"][name].append(res["seconds"])
                cell["images_per_rep"] = per_rep
                cell["images_per_s"] = {n: per_rep / statistics.median(r) for n, r in cell["runs_s"].items() if r}
                base = cell["images_per_s"].get("tensorflow")
                cell["speed_vs_tensorflow"] = {n: v / base for n, v in cell["images_per_s"].items()} if base else {}
                cells.append(cell)
                line = "  ".join(f"{n} {v:6.1f} img/s" + (f" ({cell['speed_vs_tensorflow'][n]:.2f}x tf)" if n in cell["speed_vs_tensorflow"] and n != "tensorflow" else "")
                                 for n, v in cell["images_per_s"].items())
                errs = "".join(f"  {n} failed: {e}" for n, e in cell["errors"].items())
                print(f"{backbone:>17} {size[0]}x{size[1]}: {line}{errs}", flush=True)
    finally:
        for w in workers.values():
            w.close()

    ratios = []
    for cell in cells:
        if cell["backbone"] == "VGG16" and tuple(cell["size"]) == (128, 128) and "jax" in cell["speed_vs_tensorflow"]:
            ratios.append(common.ratio("VGG16 128x128 jax / tensorflow img/s (claim: ~2x)",
                                       cell["speed_vs_tensorflow"]["jax"], 2.0, ">="))
    for name in names:
        if name == "tensorflow":
            continue
        speeds = [c["speed_vs_tensorflow"][name] for c in cells if name in c["speed_vs_tensorflow"]]
        if speeds:
            geo = float(__import__("math").exp(statistics.fmean(__import__("math").log(s) for s in speeds)))
            print(f"{name} / tensorflow, geometric mean over {len(speeds)} cells: {geo:.2f}x", flush=True)
    hw = info[names[0]]["hardware"] if names else {}
    if names:
        hw = dict(hw, keras_backend="+".join(names), **{k: v for n in names for k, v in info[n]["hardware"].items()
                                                       if k in ("tensorflow", "jax", "torch", "jax_devices")})
    device = "gpu" if any(info[n].get("device") == "gpu" for n in names) else "cpu"
    payload = {
        "config": {"backends": names, "backbones": args.backbones, "sizes": [list(s) for s in sizes], "weights": "none (random init; speed only)",
                   "batch_size": batch, "images_per_rep": per_rep, "repeats": repeats, "data": f"{data_kind} ({root})",
                   "input_shape": "fixed (H, W, 3) for both sizes"},
        "backend_devices": {n: info[n].get("device") for n in names},
        "unavailable": {n: v["error"] for n, v in info.items() if "error" in v},
        "cells": cells,
        "ratios": ratios,
        "worker_logs": str(log_dir),
    }
    common.write_result(NAME, payload, args, started, hardware=hw, device=device)
    return 0


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
