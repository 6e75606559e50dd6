"""Where dlib's descriptor should look for the face in CelebA's aligned images: the measured fixed box or a detection.

Both variants of gfr.models.face_descriptor.DescriptorExtractor (locate="box": landmarks predicted inside
faces.CELEBA_BOX; locate="detect": inside dlib's HOG box where it finds one) on the train and validation images of
the split manifest; the study's head (params/it3.yaml: units, seeds, epochs, best-validation epoch) is trained on
each and measured on the validation split and on in-the-wild-dev (photos framed as `gfr predict --detect-faces`
frames them; reported head). Where to look for the face is a face-detection setting, so in-the-wild-dev decides,
as it decides the photo framing (its purpose; never used for training): analysis.settle (paired), the variant with
more photos right unless the cheaper fixed box is within its noise (McNemar's exact test on the same photos). The
validation numbers (Welch's t-test over seeds, McNemar on the images) are recorded beside it. The test split is not
read. Needs GFR_WILD_DIR.
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
    from gfr.study import wild
    from gfr.models.head import predict_proba
    from gfr.study import analysis, metrics

    wild_root = wild.wild_dir(None)
    photos, _ = wild.framed(str(wild_root), faces.FRAMINGS[0], True, str(wild.OUT_DIR))  # as --detect-faces frames
    photo_labels = wild.labels(wild_root)
    val_right, wild_right = {}, {}
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
        vals, heads = [], []
        for seed in params.head.seeds:
            head, history, kept, _ = train_head(x[tr], rows.label.values[tr], x[va], rows.label.values[va],
                                                params.head.dense_units, params.head.learning_rate,
                                                params.head.batch_size, params.epochs, seed)
            vals.append(history["val_accuracy"][kept - 1])
            heads.append(head)
        extractor = face_descriptor.DescriptorExtractor(weights.path, locate)
        val_right[locate] = metrics.is_correct(predict_proba(heads[0], x[va]), rows.label.values[va])
        wild_p = predict_proba(heads[0], np.concatenate([extractor.predict_on_batch(photos[k:k + 32])
                                                          for k in range(0, len(photos), 32)]))
        wild_right[locate] = metrics.is_correct(wild_p, photo_labels.male.values)
        by_source = {src: float(wild_right[locate][mask].mean())
                     for src, mask in metrics.source_masks(photo_labels.source).items() if src != "all"}
        result["variants"][locate] = {"val_accuracy_per_seed": vals, "val_accuracy_mean": float(np.mean(vals)),
                                      "extraction_s": seconds,
                                      "wild_accuracy": float(wild_right[locate].mean()), "wild_by_source": by_source}
        print(locate, result["variants"][locate], file=sys.stderr)
    cost = {"box": 0, "detect": 1}  # the known box is cheaper than running a detector
    settled = analysis.settle({k: v["val_accuracy_per_seed"] for k, v in result["variants"].items()}, cost)
    result["better_on_validation"], result["welch_p"] = settled["best"], settled["p_value"]
    result["val_mcnemar_p"] = metrics.mcnemar(val_right["detect"], val_right["box"])["p_value"]
    on_photos = analysis.settle(wild_right, cost, paired=True)
    result["better_on_photos"] = on_photos["best"]
    result["wild_mcnemar_p"] = on_photos["p_value"]
    result["wild_images"] = int(len(photo_labels))
    result["chosen"] = on_photos["chosen"]  # a face-detection setting: in-the-wild-dev decides (its purpose)
    files.write_text(REPO / "reports" / "face-locate.json", json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
