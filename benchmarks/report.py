"""Print the results table (Markdown) of benchmarks/results/*.json: every ratio against its target, with the hardware.

    .venv/bin/python benchmarks/report.py            # the full runs
    .venv/bin/python benchmarks/report.py --quick    # the --quick smoke runs
    .venv/bin/python benchmarks/report.py --celeba   # also: the full-CelebA projection from the measured throughput
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ("sweep", "backends", "inference", "scale")

# Full CelebA: 202,599 images; list_eval_partition.txt's official split
CELEBA = {"train": 162_770, "val": 19_867, "test": 19_962}
FEATURE_DIM = {"VGG16": 512, "InceptionV3": 2048, "InceptionResNetV2": 1536, "ResNet50": 2048}
# the sweep's iterations: (input size, epochs); iterations 1 and 2 share one 128x128 feature cache entry
ITERATIONS = {1: ("128x128", 20), 2: ("128x128", 50), 3: ("218x178", 20)}
HEAD_SEEDS = 5
TIMING_PASSES = 3  # params timing.repeats over the test split (the warm-up is two batches only)


def celeba_estimate(results: Path, device: str = "cpu") -> None:
    """Cache sizes and stage times of the sweep on the full CelebA, from the measured throughputs."""
    n = sum(CELEBA.values())
    backends = json.loads((results / f"backends-{device}.json").read_text())
    speed = {(c["backbone"], f"{c['size'][0]}x{c['size'][1]}"): c["images_per_s"].get("tensorflow") for c in backends["cells"]}
    sweep = json.loads((results / f"sweep-{device}.json").read_text())
    # head training cost per (row x epoch), from the benchmark's cached side (train + val rows pass every epoch)
    split = sweep["config"]["split_sizes"]
    heads_s = sorted(d["heads_s"] for d in sweep["detail"]["cached"])[len(sweep["detail"]["cached"]) // 2]
    per_row_epoch = heads_s / ((split["train"] + split["val"]) * sweep["config"]["epochs"] * sweep["config"]["heads_per_side"])
    real = sweep.get("real_sweep", {}).get("runs", [])
    if real and real[0]["stage_seconds"].get("heads"):
        r = real[0]  # a finished study run on the 5k subset (3,000 train + 1,000 val rows, 5 seeds)
        per_row_epoch = r["stage_seconds"]["heads"] / (4000 * 20 * HEAD_SEEDS)
        basis = f"head cost from finished run {r['run']}: {per_row_epoch * 1e6:.0f} us per row-epoch"
    else:
        basis = f"head cost from bench_sweep's cached side: {per_row_epoch * 1e6:.0f} us per row-epoch"
    print(f"\nFull CelebA: {n:,} images (official split {CELEBA['train']:,} / {CELEBA['val']:,} / {CELEBA['test']:,});"
          f" TensorFlow throughput from backends-{device}.json ({backends['hardware_id']}); {basis}\n")
    print("| backbone | cache per input size (N x dim x 4 B) | features 128x128 | features 218x178 | heads it1+it2+it3 (5 seeds) | inference timing it1-3 | total |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    grand = 0.0
    for bb, dim in FEATURE_DIM.items():
        size_gib = n * dim * 4 / 2**30
        f128 = n / speed[(bb, "128x128")] if speed.get((bb, "128x128")) else float("nan")
        f218 = n / speed[(bb, "218x178")] if speed.get((bb, "218x178")) else float("nan")
        heads = sum(per_row_epoch * (CELEBA["train"] + CELEBA["val"]) * ep * HEAD_SEEDS for _, ep in ITERATIONS.values())
        infer = sum(CELEBA["test"] * TIMING_PASSES / speed[(bb, sz)] for sz, _ in ITERATIONS.values() if speed.get((bb, sz)))
        total = f128 + f218 + heads + infer
        grand += total
        h = lambda s: f"{s / 3600:.1f} h"  # noqa: E731
        print(f"| {bb} | {size_gib:.2f} GiB ({n * dim * 4 / 1e9:.2f} GB) | {h(f128)} | {h(f218)} | {h(heads)} | {h(infer)} | {h(total)} |")
    print(f"\nWhole sweep (4 backbones x 3 iterations): about {grand / 3600:.0f} h on this machine; feature caches "
          f"{sum(n * d * 4 for d in FEATURE_DIM.values()) * 2 / 2**30:.1f} GiB (two input sizes).")


def goal(r: dict) -> str:
    if r["target_kind"] == "within":
        return f"1 ± {r['target']:.0%}"
    unit = " GiB" if "RSS" in r["name"] else "x"
    return f"{r['target_kind']} {r['target']}{unit}"


def value(r: dict) -> str:
    unit = " GiB" if "RSS" in r["name"] else "x"
    return f"{r['value']:.2f}{unit}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--dir", default=str(RESULTS))
    p.add_argument("--celeba", action="store_true", help="also print the full-CelebA projection")
    args = p.parse_args(argv)
    files = sorted(Path(args.dir).glob("*.json"))
    files = [f for f in files if f.stem.endswith("-quick") == args.quick]
    files.sort(key=lambda f: (ORDER.index(f.stem.split("-")[0]) if f.stem.split("-")[0] in ORDER else 99, f.name))
    print("| benchmark | device | ratio | measured | target | verdict | run time | hardware |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for f in files:
        d = json.loads(f.read_text())
        for r in d.get("ratios", []):
            print(f"| {d['benchmark']} | {d['device']} | {r['name']} | {value(r)} | {goal(r)} | {r['verdict']} | "
                  f"{d['runtime_s'] / 60:.1f} min | {d['hardware_id']} |")
    if args.celeba:
        celeba_estimate(Path(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
