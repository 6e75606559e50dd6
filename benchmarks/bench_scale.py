"""Scale: feature-extraction throughput and peak memory at 5,000 and at 50,000 images.

A synthetic dataset in CelebA's layout (gfr.data.synthetic.write_dataset) is generated OUTSIDE the repo
(default /tmp/gfr-scale; reused when already there). Each extraction runs gfr.models.feature_cache.extract end to end
(a fresh, empty cache folder, so it computes: decode, resize, preprocess, forward, memory-mapped .npy
write, hash, sidecar) in a fresh subprocess, which reports its peak resident memory (ru_maxrss and
/proc/self/status VmHWM) and its throughput over the compute phase (after the first few batches, so the
one-off graph tracing/compilation is left out). The sizes alternate: 5k, 50k, 5k by default.

To stay inside the time budget the configuration is the cheapest the registry allows that still runs
the real pipeline: ResNet50, weights none (random initialisation, same compute), 32x32 input (the
smallest Keras accepts), batch 64. Decoding the 218x178 JPEGs is then a large share of the work, so the
numbers speak for the pipeline's scaling, not for a study-sized model's speed.

Prints throughput(50k) / throughput(5k) (target within +-10%) and peak memory of every run (target < 2 GiB).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "scale"
SKIP_BATCHES = 4  # left out of the throughput: the first call traces/compiles the model


# ---------------------------------------------------------------- dataset

def _write_part(part_root: str, n: int, seed: int, start_id: int, progress: bool) -> str:
    from gfr.data import synthetic

    synthetic.write_dataset(part_root, n, seed=seed, start_id=start_id, progress=progress)
    return part_root


def ensure_dataset(root: Path, n: int, workers: int) -> dict:
    """At least `n` synthetic images under `root` in CelebA's layout; generated in `workers` processes if missing."""
    from gfr import files
    from gfr.data import celeba

    attr = root / celeba.ATTR_FILE
    if attr.is_file():
        with open(attr, encoding="ascii") as handle:
            rows = int(handle.readline().strip() or 0)
        if rows >= n and len(os.listdir(root / celeba.IMAGES_DIR)) >= rows:
            print(f"reusing {rows} synthetic images in {root}", flush=True)
            return {"generated": False, "images": rows}
    t0 = time.perf_counter()
    print(f"generating {n} synthetic images in {root} with {workers} process(es) (one-off)", flush=True)
    parts_dir = root / ".parts"
    shutil.rmtree(parts_dir, ignore_errors=True)
    (root / celeba.IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    counts = [n // workers + (k < n % workers) for k in range(workers)]
    starts = [1 + sum(counts[:k]) for k in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        futures = [pool.submit(_write_part, str(parts_dir / str(k)), counts[k], k, starts[k], k == 0) for k in range(workers)]
        parts = [f.result() for f in futures]
    rows, names = [], None
    for part in parts:
        lines = (Path(part) / celeba.ATTR_FILE).read_text(encoding="ascii").splitlines()
        names = lines[1]
        rows.extend(line for line in lines[2:] if line.strip())
        for image in (Path(part) / celeba.IMAGES_DIR).iterdir():
            os.replace(image, root / celeba.IMAGES_DIR / image.name)
    files.write_text(attr, "\r\n".join([str(len(rows)), names, *rows]) + "\r\n")
    shutil.rmtree(parts_dir, ignore_errors=True)
    seconds = time.perf_counter() - t0
    print(f"generated {len(rows)} images in {seconds:.0f} s", flush=True)
    return {"generated": True, "images": len(rows), "seconds": seconds}


# ---------------------------------------------------------------- one extraction (fresh subprocess)

def child(args) -> int:
    import numpy as np

    from gfr.models import backbones, feature_cache

    stamps = []  # (time, rows written so far) when each batch has been written (feature_cache's on_batch)
    n = args.child
    ids = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    size = tuple(args.size)
    with tempfile.TemporaryDirectory(prefix="gfr-bench-scale-cache-", dir=args.cache_parent) as cache:
        t0 = time.perf_counter()
        feats, info = feature_cache.extract(args.backbone, ids, args.root, size, False, backbones.RANDOM, f"bench-scale-{n}",
                                            args.batch_size, cache, 1024, progress=False,
                                            on_batch=lambda rows: stamps.append((time.perf_counter(), rows)))
        extract_s = time.perf_counter() - t0
        shape, nbytes = list(feats.shape), os.path.getsize(info["path"])
        finite = bool(np.isfinite(feats[-1]).all())
        del feats
    memory = common.peak_rss_mib()
    counts = [rows - before for (_, rows), before in zip(stamps, [0] + [r for _, r in stamps[:-1]])]
    # edges[k]: when batch k starts (the previous batch is written; edges[0] is the call's start, so it
    # includes the model build); edges[-1]: when the last batch is written
    edges = [t0] + [t for t, _ in stamps]
    start = min(SKIP_BATCHES, len(stamps) - 1)
    # a last, smaller batch has a new shape, which the backend traces/compiles once more: a one-off cost
    # like the first batch's, so the steady phase ends where that batch starts
    last = len(stamps) - 1 if len(stamps) > start + 1 and counts[-1] != counts[0] else len(stamps)
    steady = sum(counts[start:last]) / (edges[last] - edges[start])
    segments = []
    seg_len = max(1, (last - start) // 10)
    for s in range(start, last, seg_len):
        stop = min(s + seg_len, last)
        segments.append(sum(counts[s:stop]) / (edges[stop] - edges[s]))
    print("@@" + json.dumps({"images": n, "extract_s": extract_s, "images_per_s": steady, "segment_images_per_s": segments,
                             "steady_images": sum(counts[start:last]), "last_batch_s": edges[-1] - edges[last],
                             "first_batches_s": edges[start] - t0, "cache": info["cache"], "shape": shape,
                             "cache_bytes": nbytes, "finite": finite, **memory}), flush=True)
    return 0


def run_child(n: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), "--root", str(args.root), "--size", *map(str, args.size),
           "--backbone", args.backbone, "--batch-size", str(args.batch_size), "--cache-parent", args.cache_parent]
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    wall = time.perf_counter() - t
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("@@")), None)
    if line is None:
        raise SystemExit(f"extraction of {n} images failed:\n{run.stderr[-3000:]}")
    return {"process_wall_s": wall, **json.loads(line[2:])}


# ---------------------------------------------------------------- parent

def main(argv=None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--root", help="synthetic dataset folder (default /tmp/gfr-scale; --quick: /tmp/gfr-scale-quick)")
    p.add_argument("--order", help="comma-separated image counts, run in this order (default 5000,50000,5000)")
    p.add_argument("--backbone", default="ResNet50")
    p.add_argument("--size", type=int, nargs=2, default=[32, 32], metavar=("H", "W"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--gen-workers", type=int, default=os.cpu_count() or 1, help="processes generating the dataset")
    p.add_argument("--cache-parent", default=tempfile.gettempdir(), help="where the throw-away feature caches go")
    p.add_argument("--prepare", action="store_true", help="only generate (or check) the synthetic dataset, then stop")
    p.add_argument("--child", type=int, help=__import__("argparse").SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    common.quiet_backends()
    started = time.perf_counter()
    if args.repeats:
        p.error("use --order to choose the runs (e.g. 5000,50000,5000,50000)")
    default_root = "/tmp/gfr-scale-quick" if args.quick else "/tmp/gfr-scale"
    args.root = Path(args.root or default_root)
    if common.REPO in args.root.resolve().parents:
        p.error("generate the scale dataset outside the repository")
    order = [int(v) for v in (args.order or ("500,2000,500" if args.quick else "5000,50000,5000")).split(",")]
    small, large = min(order), max(order)
    dataset = ensure_dataset(args.root, large, max(1, args.gen_workers))
    if args.prepare:
        return 0

    print(f"scale: gfr.models.feature_cache.extract of {args.backbone} (weights none) at {args.size[0]}x{args.size[1]}, batch "
          f"{args.batch_size}, fresh subprocess per run, order {order}", flush=True)
    runs = []
    for n in order:
        r = run_child(n, args)
        runs.append(r)
        print(f"  {n:>6} images: {r['images_per_s']:.1f} img/s (compute phase), extract {r['extract_s']:.1f} s, "
              f"peak RSS {r['ru_maxrss_mib']:.0f} MiB (VmHWM {r.get('VmHWM_mib', float('nan')):.0f} MiB), "
              f"cache file {r['cache_bytes'] / 2**20:.0f} MiB", flush=True)
    by_n = {n: [r for r in runs if r["images"] == n] for n in sorted(set(order))}
    thr = {n: statistics.median(r["images_per_s"] for r in rs) for n, rs in by_n.items()}
    peak = {n: max(r["ru_maxrss_mib"] for r in rs) for n, rs in by_n.items()}
    value = thr[large] / thr[small]
    ratios = [common.ratio(f"throughput {large} / {small} images", value, 0.10, "within")]
    for n in sorted(peak):
        ratios.append(common.ratio(f"peak RSS at {n} images", peak[n] / 1024, 2.0, "<=", unit=" GiB"))

    payload = {
        "config": {"order": order, "backbone": args.backbone, "weights": "none (random init; same compute)",
                   "image_size": list(args.size), "batch_size": args.batch_size, "root": str(args.root),
                   "throughput": f"compute phase after the first {SKIP_BATCHES} batches"},
        "dataset": dataset,
        "runs": runs,
        "images_per_s": {str(n): v for n, v in thr.items()},
        "peak_rss_mib": {str(n): v for n, v in peak.items()},
        "ratios": ratios,
    }
    common.write_result(NAME, payload, args, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
