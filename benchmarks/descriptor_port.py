"""Proof that gfr's Keras port of dlib's face descriptor is dlib's network: both on every CelebA face chip.

Every image of the data folder (the 5,000 of ../shared/celeba-5k) is cut into its face chip once, as the study cuts
it (gfr.models.face_descriptor.chips: 5 landmarks in CelebA's face box, dlib's get_face_chip); the chips then go
through dlib's C++ network (`compute_face_descriptor`) and through the port (gfr.models.face_network, Keras, batch
64). Recorded: the largest and mean absolute difference per descriptor component, the smallest cosine, and the
two sides' throughput on the chips (side by side, sides alternating over blocks of chips). Expected: max <= 1e-3,
cosine >= 0.99999 (float32 rounding gives about 1e-6).
Writes reports/descriptor-port.json (a study measurement, shown in the report).

`--heads REV` adds the head comparison to that file: the run DlibFaceDescriptor-it3 as committed at git revision
REV (features from dlib's own network) against the run in the working tree (features from the port), on the test
split: each seed's accuracy, the seed means, and the share of test images with the same label, seed by seed.

    GFR_DATA_DIR=../shared/celeba-5k .venv/bin/python benchmarks/descriptor_port.py [--limit N]
    .venv/bin/python benchmarks/descriptor_port.py --heads a35f1df
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time

import numpy as np

from common import REPO, quiet_backends

OUT = REPO / "reports" / "descriptor-port.json"
BLOCK = 256  # chips per alternation block
RUN = "reports/runs/DlibFaceDescriptor-it3"


def compare_heads(revision: str) -> dict:
    """The committed dlib-feature run at `revision` against the port-feature run in the working tree (test split)."""
    import pandas as pd

    from gfr.study import metrics

    def at(rev: str | None) -> pd.DataFrame:
        path = f"{RUN}/test_predictions.csv"
        if rev is None:
            return pd.read_csv(REPO / path)
        text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, check=True, capture_output=True, text=True)
        return pd.read_csv(io.StringIO(text.stdout))

    old, new = at(revision), at(None)
    if not old.image_id.equals(new.image_id):
        raise SystemExit("the two runs' test images differ: not comparable")
    seeds = [c for c in old.columns if c.startswith("prob_seed")]
    acc = {side: {c: float(metrics.is_correct(f[c], f.label).mean()) for c in seeds} for side, f in (("dlib", old), ("port", new))}
    same = {c: float((metrics.predicted_male(old[c]) == metrics.predicted_male(new[c])).mean()) for c in seeds}
    mean = {side: float(np.mean(list(v.values()))) for side, v in acc.items()}
    return {"revision": revision, "run": RUN, "test_images": int(len(old)), "accuracy_per_seed": acc,
            "seed_mean": mean, "seed_mean_diff_points": 100 * (mean["port"] - mean["dlib"]),
            "same_label_share_per_seed": same, "same_label_share_min": min(same.values()),
            "targets": {"seed_mean_diff_points": 0.1, "same_label_share_min": 0.999},
            "met": bool(abs(mean["port"] - mean["dlib"]) <= 0.001 and min(same.values()) >= 0.999)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, help="only the first N images (a smoke run; writes nothing)")
    p.add_argument("--heads", metavar="REV", help="add the head comparison against the run committed at REV")
    args = p.parse_args(argv)
    if args.heads:
        from gfr import files

        result = json.loads(OUT.read_text()) if OUT.is_file() else {}
        result["heads"] = compare_heads(args.heads)
        files.write_text(OUT, json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["heads"], indent=2))
        return 0 if result["heads"]["met"] else 1
    quiet_backends()
    import keras

    from gfr import files
    from gfr.data import celeba
    from gfr.data.images import iter_batches
    from gfr.models import backbones, face_descriptor
    from gfr.progress import meter
    from gfr.study import hardware

    root = celeba.data_dir(None)
    paths = [celeba.image_path(root, i) for i in sorted(celeba.read_attributes(root).index)]
    paths = paths[: args.limit] if args.limit else paths
    weights = backbones.resolve_weights(backbones.get(face_descriptor.NAME), "imagenet")
    port = face_descriptor.DescriptorExtractor(weights.path, impl_name="keras", weights_sha256=weights.sha256)
    ref = face_descriptor.DescriptorExtractor(weights.path, impl_name="dlib")

    chips, bar = [], meter(len(paths), "face chips")
    for batch in iter_batches(paths, (218, 178), 64):
        chips.append(face_descriptor.chips(batch))
        bar.update(len(batch))
    bar.close()
    chips = np.concatenate(chips)
    port.descriptors(chips[:64])  # warm-up (graph tracing) outside the timing
    a, b = np.empty((len(chips), 128), np.float32), np.empty((len(chips), 128), np.float32)
    seconds = {"keras": 0.0, "dlib": 0.0}
    bar = meter(len(chips), "descriptors (dlib, port)")
    for k, start in enumerate(range(0, len(chips), BLOCK)):
        block = slice(start, start + BLOCK)
        order = (("dlib", ref, b), ("keras", port, a)) if k % 2 == 0 else (("keras", port, a), ("dlib", ref, b))
        for side, extractor, out in order:
            t = time.perf_counter()
            out[block] = np.concatenate([extractor.descriptors(chips[i:i + 64])
                                         for i in range(block.start, min(block.stop, len(chips)), 64)])
            seconds[side] += time.perf_counter() - t
        bar.update(len(chips[block]))
    bar.close()
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    diff = np.abs(a64 - b64)
    cosine = np.sum(a64 * b64, axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    result = {
        "chips": int(len(chips)),
        "data": str(root.name),
        "weights_file": os.path.basename(weights.path), "weights_sha256": weights.sha256,
        "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
        "max_abs_diff_per_chip_p99": float(np.quantile(diff.max(axis=1), 0.99)),
        "min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean()),
        "max_descriptor_abs": float(np.abs(b).max()),
        "targets": {"max_abs_diff": 1e-3, "min_cosine": 0.99999},
        "met": bool(diff.max() <= 1e-3 and cosine.min() >= 0.99999),
        "chips_per_s": {side: len(chips) / s for side, s in seconds.items()},
        "port_speedup": seconds["dlib"] / seconds["keras"],
        "timing": f"descriptor network only (chips precomputed), blocks of {BLOCK} chips, sides alternating; "
                  "the port at batch 64",
        "keras_backend": keras.backend.backend(),
        "machine": hardware.describe(),
        "load_1min_at_end": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    if not args.limit:
        files.write_text(OUT, json.dumps(result, indent=2) + "\n")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
