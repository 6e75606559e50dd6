"""Sweep cost: cached features + heads (gfr's way) against fitting a full frozen-base model on images every epoch.

Both sides do the same reduced job, side by side in one process, alternating (C O, O C, C O), median of each:

  cached   gfr.models.feature_cache.extract over all images once (a fresh, empty cache each time, so it is computed),
           then gfr.models.head.train_head for E epochs on the train features (validation each epoch),
           then P(male) for the test features.
  original keras Model = frozen base + GAP + head (gfr.models.head.full_model), compiled like the head, fitted for
           E epochs on images decoded from JPEG every epoch (a keras PyDataset, validation each epoch,
           as the original study's Keras pipeline did), then P(male) for the test images.

Prints original / cached wall time (target >= 10x). With --manifests, also summarises a finished sweep's
reports/runs/*/manifest.json by stage (features, heads, inference_timing).
"""

from __future__ import annotations

import glob
import json
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


def image_dataset(keras, paths, labels, size, batch_size, backbone, shuffle_seed=None):
    """A keras PyDataset that decodes (and preprocesses) its JPEG files on every pass, like the original pipeline."""
    from gfr.models import backbones
    from gfr.data.images import decode_batch

    class Images(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = np.arange(len(paths))
            self.rng = np.random.default_rng(shuffle_seed)
            if shuffle_seed is not None:
                self.rng.shuffle(self.order)

        def __len__(self):
            return (len(paths) + batch_size - 1) // batch_size

        def __getitem__(self, i):
            rows = self.order[i * batch_size:(i + 1) * batch_size]
            x = backbones.preprocess(backbone, decode_batch([paths[r] for r in rows], size))
            return x, np.asarray(labels, dtype="float32")[rows]

        def on_epoch_end(self):
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

    import keras

    from gfr.models import backbones, feature_cache
    from gfr.data import celeba
    from gfr.files import object_sha256
    from gfr.models.head import build_head, compile_binary, full_model, predict_proba, seed_everything, train_head
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
    print(f"sweep cost: {len(ids)} {data_kind} images from {root} (train/val/test {len(part['train'])}/{len(part['val'])}/"
          f"{len(part['test'])}), {size[0]}x{size[1]}, {args.epochs} epochs, {backbone.name} with {weights_label}, "
          f"{len(seeds)} head(s) per side, {keras.backend.backend()} backend, {repeats} alternating repeats", flush=True)

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
            head, history = train_head(x[part["train"]], labels[part["train"]], x[part["val"]], labels[part["val"]],
                                       h.dense_units, h.learning_rate, h.batch_size, args.epochs, seed)
            prob = predict_proba(head, x[part["test"]])
            accs.append(float(np.mean((prob >= 0.5) == labels[part["test"]])))
        t2 = time.perf_counter()
        detail["cached"].append({"features_s": t1 - t0, "heads_s": t2 - t1, "test_accuracy": accs,
                                 "val_accuracy": history["val_accuracy"][-1]})
        return t2 - t0

    def original():
        t0 = time.perf_counter()
        accs = []
        for seed in seeds:
            # the backbone as the cached side's (random weights drawn from params.seed), then the head from `seed`
            extractor = backbones.build_extractor(backbone, size, False, weights, init_seed=params.seed)
            seed_everything(seed)
            model = full_model(extractor, build_head(backbone.feature_dim, h.dense_units))
            compile_binary(model, h.learning_rate)
            sel = lambda s: ([paths[r] for r in part[s]], labels[part[s]])  # noqa: E731
            train = image_dataset(keras, *sel("train"), size, h.batch_size, backbone, shuffle_seed=seed)
            val = image_dataset(keras, *sel("val"), size, h.batch_size, backbone)
            history = model.fit(train, validation_data=val, epochs=args.epochs, verbose=0)
            prob = np.asarray(model.predict(image_dataset(keras, *sel("test"), size, h.batch_size, backbone), verbose=0)).ravel()
            accs.append(float(np.mean((prob >= 0.5) == labels[part["test"]])))
            del model
        detail["original"].append({"test_accuracy": accs, "val_accuracy": float(history.history["val_accuracy"][-1])})
        return time.perf_counter() - t0

    timed = common.alternate({"cached": cached, "original": original}, repeats)
    value = timed["original"]["median_s"] / timed["cached"]["median_s"]
    print(f"cached median {timed['cached']['median_s']:.1f} s (features "
          f"{np.median([d['features_s'] for d in detail['cached']]):.1f} s + heads {np.median([d['heads_s'] for d in detail['cached']]):.1f} s), "
          f"original median {timed['original']['median_s']:.1f} s")
    result = common.ratio("original / cached wall time", value, 10.0, ">=")
    payload = {
        "config": {"images": len(ids), "split_sizes": {s: len(v) for s, v in part.items()}, "image_size": list(size),
                   "epochs": args.epochs, "backbone": backbone.name, "weights": weights_label, "data": f"{data_kind} ({root})",
                   "heads_per_side": len(seeds), "head_batch_size": h.batch_size, "feature_batch_size": params.feature_batch_size,
                   "repeats": repeats},
        "timings": timed,
        "detail": detail,
        "ratios": [result],
    }
    if summary is not None:
        payload["real_sweep"] = summary
    common.write_result(NAME, payload, args, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
