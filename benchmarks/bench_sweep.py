"""Sweep cost: cached features + heads (gfr's way) against fitting a full frozen-base model on images every epoch.

Both sides do the same reduced job, side by side in one process, alternating (C O, O C, C O, ...), median of each:

  cached   gfr.models.feature_cache.extract over all images once (a fresh, empty cache each time, so it is computed),
           then gfr.models.head.train_head for E epochs on the train features (validation each epoch, best
           validation epoch kept), then P(male) for the test features.
  original keras Model = frozen base + GAP + head (gfr.models.head.full_model), compiled like the head, fitted for
           E epochs on images decoded from JPEG every epoch (validation each epoch, the same best-epoch
           callback), then P(male) for the test images.

Both sides read their JPEGs through the same loader, gfr.data.images.iter_batches (threaded decode and
resize, prefetch), with the same number of decode threads; the original way's keras PyDataset only wraps it.
Each side trains the same number of heads (--seeds), so nothing is extrapolated.

Prints original / cached wall time (target >= 10x): the ratio of the medians, and the spread (min-max) of the
paired per-repeat ratios. A full run needs at least 3 repeats. With --manifests, also summarises a finished
sweep's reports/runs/*/manifest.json by stage (features, heads, inference_timing).
"""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "sweep"


def summarise_manifests(patterns: list[str]) -> dict:
    """Wall time of a finished sweep by stage, from its runs' manifest.json files."""
    paths = sorted({p for pattern in patterns for p in glob.glob(pattern)} | {p for p in patterns if Path(p).is_file()})
    paths = [str(Path(p) / "manifest.json") if Path(p).is_dir() else p for p in paths]
    rows, totals = [], {}
    for path in paths:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"  skipped {path}: {exc}", file=sys.stderr)
            continue
        stages = record.get("stage_seconds") or {}
        rows.append({"run": record.get("run", Path(path).parent.name), "status": record.get("status"),
                     "input_size": record.get("input_size"), "feature_cache": (record.get("feature_cache") or {}).get("cache"),
                     "stage_seconds": stages, "total_s": sum(stages.values())})
        for stage, seconds in stages.items():
            totals[stage] = totals.get(stage, 0.0) + seconds
    total = sum(totals.values())
    print(f"\nfinished sweep: {len(rows)} run manifest(s)")
    print(f"  {'run':<28} {'status':<8} {'cache':<5} " + " ".join(f"{s:>17}" for s in sorted(totals)) + f" {'total':>9}")
    for row in rows:
        cells = " ".join(f"{row['stage_seconds'].get(s, 0.0):>16.1f}s" for s in sorted(totals))
        print(f"  {row['run']:<28} {str(row['status']):<8} {str(row['feature_cache']):<5} {cells} {row['total_s']:>8.1f}s")
    if total:
        print(f"  {'all runs':<44} " + " ".join(f"{totals[s]:>10.1f}s {100 * totals[s] / total:4.1f}%" for s in sorted(totals))
              + f" {total:>8.1f}s")
    return {"manifests": paths, "runs": rows, "stage_totals_s": totals, "total_s": total,
            "stage_fractions": {s: v / total for s, v in totals.items()} if total else {}}


def loader_workers() -> int:
    """Decode threads of gfr.data.images.iter_batches by default (its `workers or min(8, cpu_count)`)."""
    return min(8, (os.cpu_count() or 2))


def image_dataset(keras, paths, labels, size, batch_size, backbone, workers, shuffle_seed=None):
    """A keras PyDataset that decodes (and preprocesses) its JPEG files on every pass, like the original pipeline.

    The decoding is gfr.data.images.iter_batches, the cached side's loader (`workers` threads, prefetch), run
    over the epoch's order; Keras reads a PyDataset in index order (workers=1, fit(shuffle=False): the dataset
    reshuffles itself after each epoch), and an out-of-order index restarts the loader there.
    """
    from gfr.models import backbones
    from gfr.data.images import iter_batches

    class Images(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = np.arange(len(paths))
            self.rng = np.random.default_rng(shuffle_seed)
            if shuffle_seed is not None:
                self.rng.shuffle(self.order)
            self.batches, self.next_index = None, None
            self.jumps = 0  # out-of-order reads (Keras peeks at the first batches for the tensor spec): loader restarts

        def __len__(self):
            return (len(paths) + batch_size - 1) // batch_size

        def restart(self, i):
            self.close()
            self.batches = iter_batches([paths[r] for r in self.order[i * batch_size:]], size, batch_size, workers=workers)
            self.next_index = i

        def close(self):
            if self.batches is not None:
                self.batches.close()
            self.batches, self.next_index = None, None

        def __getitem__(self, i):
            if self.batches is None or i != self.next_index:
                self.jumps += self.batches is not None
                self.restart(i)
            batch = next(self.batches)
            self.next_index = i + 1
            rows = self.order[i * batch_size:(i + 1) * batch_size]
            return backbones.preprocess(backbone, batch), np.asarray(labels, dtype="float32")[rows]

        def on_epoch_end(self):
            self.close()
            if shuffle_seed is not None:
                self.rng.shuffle(self.order)

    return Images()


def main(argv=None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=300, help="images in the reduced split (default 300)")
    p.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("H", "W"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--backbone", default="ResNet50")
    p.add_argument("--seeds", type=int, default=1, help="heads per side (the real sweep trains 5; default 1)")
    p.add_argument("--data-dir", help="CelebA-layout folder (default: $GFR_DATA_DIR, else the real 5k subset, else synthetic)")
    p.add_argument("--manifests", nargs="+", metavar="PATH",
                   help="a finished sweep's run manifests (files, folders or globs, e.g. 'reports/runs/*/manifest.json')")
    p.add_argument("--summary-only", action="store_true", help="only summarise --manifests; run no benchmark")
    args = p.parse_args(argv)
    common.quiet_backends()
    started = time.perf_counter()
    if args.quick:
        args.images, args.size, args.epochs = min(args.images, 100), [64, 64], min(args.epochs, 4)
    repeats = args.repeats or (1 if args.quick else 3)

    summary = summarise_manifests(args.manifests) if args.manifests else None
    if args.summary_only:
        if summary is None:
            p.error("--summary-only needs --manifests")
        return 0
    if repeats < 3 and not (args.quick or args.no_write or args.out):
        p.error("a full run needs --repeats 3 or more (median and spread); use --quick, --no-write or --out for fewer")

    import keras

    from gfr.models import backbones, feature_cache
    from gfr.data import celeba
    from gfr.files import object_sha256
    from gfr.models.head import (build_head, compile_binary, full_model, keep_best_epoch, predict_proba,
                                 seed_everything, train_head)
    from gfr.params import DataParams, load_params
    from gfr.data.split import assign_splits

    params = load_params(1)
    h = params.head
    size = tuple(args.size)
    backbone = backbones.get(args.backbone)
    weights, weights_label = common.resolve(backbone.name)
    root, data_kind = common.data_root(args.data_dir)
    if root is None:
        root = common.synthetic_root(args.images, Path(tempfile.gettempdir()) / "gfr-bench-synthetic")
    attrs = celeba.read_attributes(root)
    data = DataParams(subset=args.images, test_fraction=0.2, val_fraction=0.2, official_partition=False, on_bad_image="stop")
    splits = assign_splits(attrs.index, params.seed, data)
    ids = list(splits.index)
    labels = (attrs.loc[ids, celeba.LABEL].values == 1).astype(int)
    part = {s: np.flatnonzero(splits.values == s) for s in ("train", "val", "test")}
    paths = [celeba.image_path(root, i) for i in ids]
    manifest_sha = object_sha256({"ids": ids, "splits": list(splits.values)})
    seeds = [h.seeds[0] + k for k in range(args.seeds)]
    workers = loader_workers()
    load_at_start = common.load_average()
    print(f"sweep cost: {len(ids)} {data_kind} images from {root} (train/val/test {len(part['train'])}/{len(part['val'])}/"
          f"{len(part['test'])}), {size[0]}x{size[1]}, {args.epochs} epochs, {backbone.name} with {weights_label}, "
          f"{len(seeds)} head(s) per side, {keras.backend.backend()} backend, {repeats} alternating repeats, "
          f"loader iter_batches with {workers} decode threads on both sides", flush=True)

    detail = {"cached": [], "original": []}

    def cached():
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="gfr-bench-cache-") as cache:
            feats, info = feature_cache.extract(backbone.name, ids, root, size, False, weights, manifest_sha,
                                           params.feature_batch_size, cache, params.seed, progress=False)
            x = np.asarray(feats)
            assert info["cache"] == "miss"
        t1 = time.perf_counter()
        accs = []
        for seed in seeds:
            head, history, *_ = train_head(x[part["train"]], labels[part["train"]], x[part["val"]], labels[part["val"]],
                                       h.dense_units, h.learning_rate, h.batch_size, args.epochs, seed)
            prob = predict_proba(head, x[part["test"]])
            accs.append(float(np.mean((prob >= 0.5) == labels[part["test"]])))
        t2 = time.perf_counter()
        detail["cached"].append({"features_s": t1 - t0, "heads_s": t2 - t1, "test_accuracy": accs,
                                 "best_val_accuracy": max(history["val_accuracy"])})
        return t2 - t0

    def original():
        t0 = time.perf_counter()
        accs, jumps = [], 0
        for seed in seeds:
            # the backbone as the cached side's (random weights drawn from params.seed), then the head from `seed`
            extractor = backbones.build_extractor(backbone, size, False, weights, init_seed=params.seed)
            seed_everything(seed)
            model = full_model(extractor, build_head(backbone.feature_dim, h.dense_units))
            compile_binary(model, h.learning_rate)
            sel = lambda s: ([paths[r] for r in part[s]], labels[part[s]])  # noqa: E731
            train = image_dataset(keras, *sel("train"), size, h.batch_size, backbone, workers, shuffle_seed=seed)
            val = image_dataset(keras, *sel("val"), size, h.batch_size, backbone, workers)
            history = model.fit(train, validation_data=val, epochs=args.epochs, shuffle=False, verbose=0,
                                callbacks=[keep_best_epoch(args.epochs)])
            test = image_dataset(keras, *sel("test"), size, h.batch_size, backbone, workers)
            prob = np.asarray(model.predict(test, verbose=0)).ravel()
            for dataset in (train, val, test):
                dataset.close()
                jumps += dataset.jumps
            accs.append(float(np.mean((prob >= 0.5) == labels[part["test"]])))
            del model
        detail["original"].append({"test_accuracy": accs, "best_val_accuracy": float(max(history.history["val_accuracy"])),
                                   "loader_restarts": jumps})
        return time.perf_counter() - t0

    timed = common.alternate({"cached": cached, "original": original}, repeats)
    value = timed["original"]["median_s"] / timed["cached"]["median_s"]
    # repeat k's original over repeat k's cached (the two ran back to back): the spread of the ratio
    paired = [o / c for o, c in zip(timed["original"]["runs_s"], timed["cached"]["runs_s"])]
    print(f"cached median {timed['cached']['median_s']:.1f} s (features "
          f"{np.median([d['features_s'] for d in detail['cached']]):.1f} s + heads {np.median([d['heads_s'] for d in detail['cached']]):.1f} s), "
          f"original median {timed['original']['median_s']:.1f} s; per-repeat ratios "
          + ", ".join(f"{r:.2f}x" for r in paired))
    result = common.ratio("original / cached wall time", value, 10.0, ">=")
    payload = {
        "config": {"images": len(ids), "split_sizes": {s: len(v) for s, v in part.items()}, "image_size": list(size),
                   "epochs": args.epochs, "backbone": backbone.name, "weights": weights_label, "data": f"{data_kind} ({root})",
                   "heads_per_side": len(seeds), "head_batch_size": h.batch_size, "feature_batch_size": params.feature_batch_size,
                   "repeats": repeats, "loader": "gfr.data.images.iter_batches on both sides",
                   "loader_workers": workers, "cpu_count": os.cpu_count()},
        "timings": timed,
        "ratio_per_repeat": paired,
        "ratio_spread": {"min": min(paired), "max": max(paired), "median": float(np.median(paired))},
        "load_average_at_start": load_at_start,
        "detail": detail,
        "ratios": [result],
    }
    if summary is not None:
        payload["real_sweep"] = summary
    common.write_result(NAME, payload, args, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
