"""Where dlib's descriptor should look for the face in CelebA's aligned images: the measured fixed box or a detection.

Both variants of gfr.models.face_descriptor.DescriptorExtractor (locate="box": landmarks predicted inside
faces.CELEBA_BOX; locate="detect": inside dlib's HOG box where it finds one) on the train and validation images of
the split manifest; the study's head (params/it3.yaml: units, seeds, epochs, best-validation epoch) is trained on
each, and the mean validation accuracy over the seeds decides (validation only; the test split is not read).
Writes reports/face-locate.json (a study measurement, not a benchmark ratio).

    GFR_DATA_DIR=../shared/celeba-5k .venv/bin/python benchmarks/face_locate.py
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from common import REPO, RESULTS_DIR  # noqa: F401  (puts the repository on sys.path)


def descriptors(extractor, paths, batch_size: int = 32) -> np.ndarray:
    from gfr.data.images import iter_batches
    from gfr.progress import meter

    out, bar = [], meter(len(paths), f"descriptors ({extractor.locate})")
    for batch in iter_batches(paths, (218, 178), batch_size):
        out.append(extractor.predict_on_batch(batch))
        bar.update(len(batch))
    bar.close()
    return np.concatenate(out)


def main() -> int:
    from gfr import files
    from gfr.data import celeba, faces, split
    from gfr.data.images import decode
    from gfr.models import backbones, face_descriptor
    from gfr.models.head import train_head
    from gfr.params import load_params

    params = load_params(3)
    manifest = split.read_manifest(REPO / "reports" / "split.csv")
    rows = manifest[manifest.split.isin(["train", "val"])].reset_index(drop=True)
    root = celeba.data_dir(None)
    paths = [celeba.image_path(root, i) for i in rows.image_id]
    weights = backbones.resolve_weights(backbones.get(face_descriptor.NAME), "imagenet")
    result = {"images": {"train": int((rows.split == "train").sum()), "val": int((rows.split == "val").sum())},
              "head": {"units": params.head.dense_units, "seeds": list(params.head.seeds), "epochs": params.epochs},
              "variants": {}}
    found = sum(bool(faces.detect(decode(p, None))) for p in paths)
    result["hog_faces_found"] = int(found)
    for locate in ("detect", "box"):
        start = time.perf_counter()
        if locate == face_descriptor.LOCATE:  # the study's own features: from the feature cache (as a run reads them)
            from gfr.study import run

            prepared = run.prepare_run(face_descriptor.NAME, 3, None, REPO / "reports" / "split.csv", forget_result=False)
            full, _ = prepared.extract()
            x = np.asarray(full)[manifest.split.isin(["train", "val"]).values]
        else:
            x = descriptors(face_descriptor.DescriptorExtractor(weights.path, locate), paths)
        seconds = time.perf_counter() - start
        tr, va = (rows.split == "train").values, (rows.split == "val").values
        vals = []
        for seed in params.head.seeds:
            _, history, kept = train_head(x[tr], rows.label.values[tr], x[va], rows.label.values[va],
                                          params.head.dense_units, params.head.learning_rate, params.head.batch_size,
                                          params.epochs, seed)
            vals.append(history["val_accuracy"][kept - 1])
        result["variants"][locate] = {"val_accuracy_per_seed": vals, "val_accuracy_mean": float(np.mean(vals)),
                                      "extraction_s": seconds}
        print(locate, result["variants"][locate], file=sys.stderr)
    best = max(result["variants"], key=lambda k: result["variants"][k]["val_accuracy_mean"])
    result["better_on_validation"] = best
    files.write_text(REPO / "reports" / "face-locate.json", json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
