"""Where `gfr predict`'s time goes with a descriptor run: each stage alone, per image, on this CPU (one thread).

CelebA-framed images (the test split's JPEGs): decode, the face-crop check (gfr.data.faces.looks_like_crop),
dlib's face chips (gfr.models.face_descriptor.chips), the model at batch 32 (chips + network + head).
In-the-wild-dev photos (--detect-faces): decode, face finding (FINDER), landmarks + alignment onto CelebA's frame.
A profile to decide what to speed up, not a comparison: the stages run one after another in one process; the
ratios against the peer come from bench_predict.py. Prints milliseconds per image; writes nothing.

    GFR_DATA_DIR=../shared/celeba-5k .venv/bin/python benchmarks/predict_stages.py [--run reports/runs/RUN] [--n 200]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from common import REPO, quiet_backends


def per_image_ms(fn, items) -> float:
    start = time.perf_counter()
    out = [fn(x) for x in items]
    del out
    return 1000 * (time.perf_counter() - start) / max(1, len(items))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="chosen")
    p.add_argument("--n", type=int, default=200)
    args = p.parse_args(argv)
    quiet_backends()
    from gfr import predict
    from gfr.data import celeba, faces, split
    from gfr.data.images import decode
    from gfr.models import face_descriptor
    from gfr.study import saved, wild

    manifest = split.read_manifest(REPO / "reports" / "split.csv")
    root = celeba.data_dir(None)
    paths = [celeba.image_path(root, i) for i in list(manifest[manifest.split == "test"].image_id)[:args.n]]
    loaded = saved.load_model(predict.resolve_run(args.run))
    images = [decode(path, faces.CELEBA_SIZE) for path in paths]
    batch = np.stack(images)
    loaded.model.predict_on_batch(batch[:32])  # warm-up (tracing)
    rows = {"decode (218x178 JPEG)": per_image_ms(lambda path: decode(path, faces.CELEBA_SIZE), paths),
            "face-crop check": per_image_ms(faces.looks_like_crop, images),
            "face chips (landmarks, get_face_chip)": per_image_ms(lambda im: face_descriptor.chips(im[None]), images),
            "model at batch 32 (chips + network + head)":
                per_image_ms(lambda k: loaded.model.predict_on_batch(batch[k:k + 32]), range(0, len(batch), 32))
                * len(range(0, len(batch), 32)) / len(batch)}  # per batch -> per image
    wild_root = wild.wild_dir(None)
    photo_paths = sorted((wild_root / wild.IMAGES).glob("*.jpg"))[::8][:args.n // 2]
    photos = [decode(path, None) for path in photo_paths]
    found = [faces.find_faces(photo) for photo in photos]
    rows.update({
        "photo decode (--detect-faces)": per_image_ms(lambda path: decode(path, None), photo_paths),
        f"face finding ({faces.FINDER})": per_image_ms(faces.find_faces, photos),
        "landmarks + alignment onto CelebA's frame": per_image_ms(
            lambda pair: faces.align(pair[0], faces.landmarks(pair[0], pair[1][0][0])) if pair[1][0] else None,
            list(zip(photos, found))),
    })
    print(f"run {loaded.record['run']}, {len(images)} CelebA-framed images, {len(photos)} in-the-wild-dev photos")
    for name, ms in rows.items():
        print(f"  {name:48s} {ms:6.2f} ms per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
