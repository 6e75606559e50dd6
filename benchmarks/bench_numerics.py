"""Where runs drift between machines: backbone features under the CPU settings that can change their bits.

The same images through the same frozen backbone (real ImageNet weights when $GFR_WEIGHTS_DIR has them),
each setting in a fresh process (the settings are read when TensorFlow loads):

  onednn-native   oneDNN kernels, the instruction set this CPU offers (TensorFlow's default)
  onednn-avx2     oneDNN kernels limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2): what an AVX2-only CPU runs
  eigen           TF_ENABLE_ONEDNN_OPTS=0: TensorFlow's own (Eigen) kernels, compiled once into the wheel
  eigen-avx2      the same with ONEDNN_MAX_CPU_ISA=AVX2 (should change nothing if Eigen ignores the CPU)
  eigen-1thread   Eigen kernels on one intra-op thread (a machine with another core count)

For each: the SHA-256 of the feature bytes, the largest difference from onednn-native and from eigen,
and the throughput (median of alternating repeats, as a ratio to onednn-native).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "numerics"
SETTINGS = {
    "onednn-native": {},
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "eigen-avx2": {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "eigen-1thread": {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "1"},
}


def child(args) -> int:
    """Extract the features once (timed) in this process and save them to args.child_out."""
    from gfr.data import celeba, images, split
    from gfr.models import backbones

    common.default_weights_dir()
    frame = split.read_manifest(args.manifest)
    ids = list(frame.image_id[frame.split == "test"])[: args.images]
    paths = [celeba.image_path(args.data_dir, i) for i in ids]
    backbone = backbones.get(args.backbone)
    weights, _ = common.resolve(backbone.name)
    extractor = backbones.build_extractor(backbone, tuple(args.size), False, weights, 1024)
    decoded = [backbones.preprocess(backbone, b) for b in images.iter_batches(paths, tuple(args.size), 32)]
    extractor.predict_on_batch(decoded[0])  # warm-up
    start = time.perf_counter()
    feats = np.concatenate([np.asarray(extractor.predict_on_batch(b)) for b in decoded])
    seconds = time.perf_counter() - start
    np.save(args.child_out, feats)
    print("@@" + json.dumps({"seconds": seconds, "images": len(paths)}))
    return 0


def run_setting(name: str, args, out: Path) -> dict:
    env = {**os.environ, **SETTINGS[name], "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(common.REPO)}
    cmd = [sys.executable, __file__, "--child-out", str(out), "--backbone", args.backbone, "--images", str(args.images),
           "--size", *map(str, args.size), "--manifest", args.manifest, "--data-dir", str(args.data_dir)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("@@"))
    return json.loads(line[2:])


def main() -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--backbone", default="ResNet50")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--size", type=int, nargs=2, default=[128, 128])
    p.add_argument("--manifest", default=str(common.REPO / "reports" / "split.csv"))
    p.add_argument("--data-dir")
    p.add_argument("--child-out")
    args = p.parse_args()
    if args.child_out:
        return child(args)
    started = time.perf_counter()
    args.data_dir, kind = common.data_root(args.data_dir)
    if args.data_dir is None:
        raise SystemExit("bench_numerics needs CelebA-layout data ($GFR_DATA_DIR) and reports/split.csv")
    repeats = args.repeats or (1 if args.quick else 3)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "gfr-bench-numerics"
    tmp.mkdir(parents=True, exist_ok=True)
    timings = {name: [] for name in SETTINGS}
    for r in range(repeats):  # alternate the settings, reversing the order every other repeat
        for name in (list(SETTINGS) if r % 2 == 0 else list(reversed(SETTINGS))):
            timings[name].append(run_setting(name, args, tmp / f"{name}.npy")["seconds"])
            print(f"  repeat {r + 1}: {name} {timings[name][-1]:.2f} s", flush=True)
    feats = {name: np.load(tmp / f"{name}.npy") for name in SETTINGS}
    median = {name: float(np.median(t)) for name, t in timings.items()}
    rows = {}
    for name, f in feats.items():
        rows[name] = {
            "env": SETTINGS[name],
            "sha256": hashlib.sha256(f.tobytes()).hexdigest(),
            "max_abs_diff_vs_onednn_native": float(np.max(np.abs(f - feats["onednn-native"]))),
            "max_abs_diff_vs_eigen": float(np.max(np.abs(f - feats["eigen"]))),
            "identical_to_onednn_native": bool(np.array_equal(f, feats["onednn-native"])),
            "identical_to_eigen": bool(np.array_equal(f, feats["eigen"])),
            "seconds": timings[name], "median_s": median[name],
            "time_ratio_vs_onednn_native": median[name] / median["onednn-native"],
        }
        print(f"{name:14s} identical to onednn-native: {rows[name]['identical_to_onednn_native']!s:5s} "
              f"to eigen: {rows[name]['identical_to_eigen']!s:5s} max diff vs native "
              f"{rows[name]['max_abs_diff_vs_onednn_native']:.2e}; time x{rows[name]['time_ratio_vs_onednn_native']:.2f}")
    payload = {"backbone": args.backbone, "images": args.images, "size": args.size, "data": kind,
               "repeats": repeats, "settings": rows}
    common.write_result(NAME, payload, args, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
