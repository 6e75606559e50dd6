"""Flip averaging at test time, a declared option of the face runs, measured and settled on the validation split.

For each face-descriptor run with a saved model (the reported head; the fine-tuned run's reported seed), every
validation and test image of the split manifest is classified as it is and mirrored; the option's P(male) is the
mean of the two. The rule, fixed before measuring, is the study's (analysis.settle, paired: McNemar's exact test
on the same validation images): the option costs a second forward pass, so it is adopted only if it is right on
significantly more validation images. The test split is scored for the record and chooses nothing. Writes
reports/flip-averaging.json.

    GFR_DATA_DIR=../shared/celeba-5k .venv/bin/python benchmarks/flip_averaging.py
"""

from __future__ import annotations

import json
import sys

import numpy as np

from common import REPO, quiet_backends

OUT = REPO / "reports" / "flip-averaging.json"
FACE_RUNS = ("DlibFaceDescriptor-it3", "DlibFaceDescriptor-it4", "DlibFaceDescriptor-it5", "DlibFaceDescriptor-it6")
OPTIONS = ("plain", "flip-averaged")


def probabilities(loaded, paths, size) -> tuple[np.ndarray, np.ndarray]:
    """P(male) of every image as it is and mirrored, one forward pass of each per batch."""
    from gfr.data.images import iter_batches
    from gfr.models import backbones
    from gfr.progress import meter

    plain, mirrored = [], []
    bar = meter(len(paths), f"{loaded.record['run']} (plain + mirrored)")
    for batch in iter_batches(paths, size, 32):
        for out, images in ((plain, batch), (mirrored, batch[:, :, ::-1])):
            out.append(np.asarray(loaded.model.predict_on_batch(backbones.preprocess(loaded.backbone, images))).ravel())
        bar.update(len(batch))
    bar.close()
    return np.concatenate(plain), np.concatenate(mirrored)


def main() -> int:
    quiet_backends()
    from gfr import files
    from gfr.data import celeba, split
    from gfr.paths import RUNS, SPLIT_MANIFEST
    from gfr.study import analysis, hardware, metrics, saved

    frame, root = split.read_manifest(SPLIT_MANIFEST), celeba.data_dir(None)
    result = {"rule": "analysis.settle (paired, validation): the plain forward pass unless flip averaging is right on "
                      "significantly more validation images (McNemar's exact test); the test split chooses nothing",
              "runs": {}}
    for name in FACE_RUNS:
        loaded = saved.load_model(RUNS / name)
        size = tuple(loaded.record["input_size"])
        entry = {"head": f"reported seed {loaded.record['primary_seed']}"}
        right = {}
        for part in ("val", "test"):
            rows = frame[frame.split == part]
            p, m = probabilities(loaded, [celeba.image_path(root, i) for i in rows.image_id], size)
            y = rows.label.values
            right[part] = {"plain": metrics.is_correct(p, y), "flip-averaged": metrics.is_correct((p + m) / 2, y)}
            entry[part] = {o: float(right[part][o].mean()) for o in OPTIONS}
            entry[part]["mirrored only"] = float(metrics.is_correct(m, y).mean())
            entry[part]["images"] = int(len(y))
            entry[part]["mcnemar_p"] = metrics.mcnemar(*(right[part][o] for o in OPTIONS))["p_value"]
        settled = analysis.settle(right["val"], {"plain": 1.0, "flip-averaged": 2.0}, paired=True)
        entry.update(adopted=settled["chosen"] == "flip-averaged", chosen=settled["chosen"])
        result["runs"][name] = entry
        print(name, json.dumps(entry), file=sys.stderr)
    result["machine"] = hardware.describe()
    files.write_text(OUT, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
