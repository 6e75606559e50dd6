"""Inference: end-to-end test-split prediction from JPEG files against the model's compute floor.

Side by side in one process with one model (gfr.models.backbones.build_extractor + gfr.models.head.build_head joined by
gfr.models.head.full_model), alternating (E F, F E, E F), median of each:

  end-to-end  gfr.models.classifier.predict_files over the test split's JPEG files: decode + resize (threads,
              prefetching the next batches in gfr.data.images.iter_batches) + preprocess + forward.
  floor       the same model's forward pass alone (predict_on_batch, same batch size) over the same
              images already decoded and preprocessed in memory.

Prints end-to-end / floor (target <= 1.5x). Also single-image latency: a predict call on one JPEG with the
model already loaded (median of several), and with model loading included (fresh processes: imports,
weights hashing and loading, head loading, first prediction).
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "inference"

COLD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {repo!r})
import numpy as np
import keras
from gfr.models import backbones, classifier, head
t1 = time.perf_counter()
bb = backbones.get({backbone!r})
w = backbones.resolve_weights(bb, {weights!r})
h = head.load_head({head_file!r}, bb.feature_dim, {units}, {head_sha!r})
model = head.full_model(backbones.build_extractor(bb, {size}, {native}, w, init_seed=1024), h)
t2 = time.perf_counter()
p = classifier.predict_files(model, bb, [{image!r}], {size}, 1)
t3 = time.perf_counter()
print("@@" + json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "first_predict_s": t3 - t2, "p_male": float(p[0])}}))
"""


def ensure_split(manifest: Path, root: Path) -> None:
    """Write the split manifest with the CLI if it is not there yet."""
    if manifest.is_file():
        return
    print(f"writing {manifest} (python -m gfr split)", flush=True)
    env = dict(os.environ, GFR_DATA_DIR=str(root))
    subprocess.run([sys.executable, "-m", "gfr", "split", "--out", str(manifest)], cwd=common.REPO, env=env, check=True)


def main(argv=None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--manifest", default=str(common.REPO / "reports" / "split.csv"))
    p.add_argument("--data-dir", help="CelebA-layout folder (default: $GFR_DATA_DIR, else the real 5k subset)")
    p.add_argument("--backbone", default="ResNet50")
    p.add_argument("--size", type=int, nargs=2, default=[218, 178], metavar=("H", "W"))
    p.add_argument("--fixed-shape", action="store_true",
                   help="build the model with a fixed (H, W, 3) input (default: None x None, as iteration 3 does)")
    p.add_argument("--batch-size", type=int, default=32, help="as params timing.batch_size (default 32)")
    p.add_argument("--images", type=int, default=0, help="use the first N test images (default 0: the whole test split)")
    p.add_argument("--prefetch", type=int, help="gfr.data.images.iter_batches prefetch (default: its own)")
    p.add_argument("--workers", type=int, help="gfr.data.images.iter_batches decode threads (default: its own)")
    p.add_argument("--latency-calls", type=int, default=10, help="single-image predict calls, model loaded")
    p.add_argument("--latency-loads", type=int, default=3, help="fresh processes timing load + first prediction")
    args = p.parse_args(argv)
    common.quiet_backends()
    started = time.perf_counter()
    if args.quick:
        args.images = args.images or 96
        args.latency_calls, args.latency_loads = min(args.latency_calls, 3), min(args.latency_loads, 1)
    repeats = args.repeats or (1 if args.quick else 3)

    import keras

    from gfr.models import backbones
    from gfr.data import celeba, images, split
    from gfr.models.classifier import predict_files
    from gfr.models.head import build_head, full_model, save_head

    root, data_kind = common.data_root(args.data_dir)
    if root is None:
        root, data_kind = common.synthetic_root(300, Path(tempfile.gettempdir()) / "gfr-bench-synthetic"), "synthetic"
        args.manifest = str(Path(tempfile.gettempdir()) / "gfr-bench-synthetic-split.csv")
    manifest = Path(args.manifest)
    ensure_split(manifest, root)
    frame = split.read_manifest(manifest)
    test_ids = list(frame.image_id[frame.split == "test"])
    if args.images:
        test_ids = test_ids[: args.images]
    paths = [celeba.image_path(root, i) for i in test_ids]
    size = tuple(args.size)
    native = not args.fixed_shape
    backbone = backbones.get(args.backbone)
    weights, weights_label = common.resolve(backbone.name)
    units = 256
    bs = args.batch_size

    pipeline = {"workers": args.workers}  # decode threads and batches decoded ahead (None: predict_files's defaults)
    if args.prefetch is not None:
        pipeline["prefetch"] = args.prefetch

    keras.utils.set_random_seed(1024)
    model = full_model(backbones.build_extractor(backbone, size, native, weights, init_seed=1024),
                       build_head(backbone.feature_dim, units))
    print(f"inference: {len(paths)} {data_kind} test images ({manifest}), {backbone.name} {size[0]}x{size[1]} "
          f"({'None x None' if native else 'fixed'} input) with {weights_label}, batch {bs}, {keras.backend.backend()} "
          f"backend, {repeats} alternating repeats", flush=True)

    t0 = time.perf_counter()
    with images.ThreadPoolExecutor(min(8, os.cpu_count() or 2)) as pool:
        ready = backbones.preprocess(backbone, images.decode_batch(paths, size, pool))
    decode_all_s = time.perf_counter() - t0
    print(f"  decoded + preprocessed {len(paths)} images up front for the floor in {decode_all_s:.1f} s "
          f"({ready.nbytes / 2**20:.0f} MiB)", flush=True)

    def floor_pass(x):
        return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + bs])).ravel() for i in range(0, len(x), bs)])

    # warm-up: trace/compile for the full batch shape and the last (partial) one on both paths
    floor_pass(ready[: 2 * bs])
    predict_files(model, backbone, paths[: 2 * bs], size, bs, **pipeline)
    if len(paths) % bs:
        floor_pass(ready[-(len(paths) % bs):])

    probs = {}

    def end_to_end():
        probs["e2e"] = predict_files(model, backbone, paths, size, bs, **pipeline)

    def floor():
        probs["floor"] = floor_pass(ready)

    timed = common.alternate({"end_to_end": end_to_end, "floor": floor}, repeats)
    gap = float(np.max(np.abs(probs["e2e"] - probs["floor"])))
    e2e_s, floor_s = timed["end_to_end"]["median_s"], timed["floor"]["median_s"]
    print(f"end-to-end median {e2e_s:.1f} s ({len(paths) / e2e_s:.1f} img/s), floor median {floor_s:.1f} s "
          f"({len(paths) / floor_s:.1f} img/s); max |P difference| {gap:.2e}", flush=True)
    ratios = [common.ratio("end-to-end / forward-only floor time", e2e_s / floor_s, 1.5, "<=")]

    # single-image latency, model loaded
    predict_files(model, backbone, paths[:1], size, 1, **pipeline)  # trace the batch-of-1 shape once
    warm = []
    for k in range(args.latency_calls):
        t = time.perf_counter()
        predict_files(model, backbone, [paths[k % len(paths)]], size, 1, **pipeline)
        warm.append(time.perf_counter() - t)
    print(f"single-image predict, model loaded: median {1000 * statistics.median(warm):.0f} ms over {len(warm)} calls", flush=True)

    # single-image latency including model load, in fresh processes
    cold = []
    with tempfile.TemporaryDirectory(prefix="gfr-bench-head-") as tmp:
        head_file = Path(tmp) / "head.weights.h5"
        head_sha = save_head(model.get_layer("head"), head_file)
        script = COLD.format(repo=str(common.REPO), backbone=backbone.name, weights="imagenet" if weights.path else "none",
                             head_file=str(head_file), units=units, head_sha=head_sha, size=size, native=native,
                             image=str(paths[0]))
        for _ in range(args.latency_loads):
            t = time.perf_counter()
            run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy())
            wall = time.perf_counter() - t
            line = next((ln for ln in run.stdout.splitlines() if ln.startswith("@@")), None)
            if line is None:
                print(f"  cold predict failed: {run.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            cold.append({"process_wall_s": wall, **json.loads(line[2:])})
    if cold:
        med = {k: statistics.median(c[k] for c in cold) for k in ("process_wall_s", "import_s", "load_s", "first_predict_s")}
        print(f"single-image predict incl. model load (fresh process): median {med['process_wall_s']:.1f} s wall = "
              f"imports {med['import_s']:.1f} s + model load {med['load_s']:.1f} s + first predict {med['first_predict_s']:.2f} s "
              f"(+ interpreter start)", flush=True)
    else:
        med = {}

    payload = {
        "config": {"images": len(paths), "data": f"{data_kind} test split of {manifest}", "backbone": backbone.name,
                   "image_size": list(size), "input_shape": "None x None" if native else "fixed", "weights": weights_label,
                   "batch_size": bs, "repeats": repeats, "prefetch": args.prefetch, "workers": args.workers},
        "timings": timed,
        "images_per_s": {"end_to_end": len(paths) / e2e_s, "floor": len(paths) / floor_s},
        "decode_all_upfront_s": decode_all_s,
        "max_abs_probability_difference": gap,
        "latency": {"model_loaded_s": warm, "model_loaded_median_s": statistics.median(warm),
                    "with_model_load": cold, "with_model_load_median_s": med},
        "ratios": ratios,
    }
    common.write_result(NAME, payload, args, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
