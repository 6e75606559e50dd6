"""How `gfr predict --detect-faces` looks for faces, settled on in-the-wild-dev for accuracy and speed.

Each finder of gfr.data.faces.FINDERS frames every in-the-wild-dev photo as `--detect-faces` does (landmarks
framing, the whole photo where no face is found); the two finders alternate over blocks of photos, so their
times are measured side by side. The chosen run (reports/results.csv) classifies each finder's crops. The rule,
fixed before measuring: analysis.settle over the photos (paired: McNemar's exact test), the faster finder kept
unless the other is right on significantly more photos. in-the-wild-dev is the set for such choices;
in-the-wild-confirm is not read. Writes reports/face-finding.json.

    GFR_WILD_DIR=../shared/in-the-wild-dev .venv/bin/python benchmarks/face_finding.py
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from common import REPO, quiet_backends

OUT = REPO / "reports" / "face-finding.json"
BLOCK = 50


def main() -> int:
    quiet_backends()
    from gfr import files
    from gfr.study import saved, wild
    from gfr.data import faces
    from gfr.data.images import decode
    from gfr.progress import meter
    from gfr.study import analysis, hardware, metrics

    root = wild.wild_dir(None)
    table = wild.labels(root)
    photos = [decode(root / wild.IMAGES / name, None) for name in table.file]
    crops = {f: [None] * len(photos) for f in faces.FINDERS}
    found_by = {f: [None] * len(photos) for f in faces.FINDERS}
    seconds = {f: 0.0 for f in faces.FINDERS}
    for f in faces.FINDERS:  # warm-up: detector and landmark models loaded, first calls
        faces.crops_or_whole(photos[0], faces.CELEBA_SIZE, "landmarks", f)
    bar = meter(len(photos), "framing (both finders)")
    for k, start in enumerate(range(0, len(photos), BLOCK)):
        order = faces.FINDERS if k % 2 == 0 else faces.FINDERS[::-1]
        for f in order:
            t = time.perf_counter()
            for i in range(start, min(start + BLOCK, len(photos))):
                got, by = faces.crops_or_whole(photos[i], faces.CELEBA_SIZE, "landmarks", f)
                crops[f][i], found_by[f][i] = got[0], by
            seconds[f] += time.perf_counter() - t
        bar.update(min(BLOCK, len(photos) - start))
    bar.close()
    from gfr import predict

    run_dir = predict.resolve_run("chosen")
    loaded = saved.load_model(run_dir)
    size = tuple(loaded.record["input_size"])
    right, result = {}, {"photos": len(photos), "run": run_dir.name, "finders": {}}
    for f in faces.FINDERS:
        p = saved.forward(loaded, [faces.resize(c, size) for c in crops[f]], 32)
        right[f] = metrics.is_correct(p, table.male.values)
        result["finders"][f] = {
            "accuracy": float(right[f].mean()),
            "by_source": {s: float(right[f][(table.source == s).values].mean()) for s in sorted(table.source.unique())},
            "found_by": {d: found_by[f].count(d) for d in ("hog", "cnn", "none")},
            "framing_s": seconds[f], "photos_per_s": len(photos) / seconds[f],
        }
    fastest = min(faces.FINDERS, key=lambda f: seconds[f])
    settled = analysis.settle(right, {f: seconds[f] for f in faces.FINDERS}, paired=True)
    result.update(fastest=fastest, chosen=settled["chosen"], better_on_photos=settled["best"],
                  mcnemar_p=metrics.mcnemar(*(right[f] for f in faces.FINDERS))["p_value"],
                  rule="analysis.settle (paired): the faster finder unless the other is right on significantly more "
                       "photos (McNemar's exact test)",
                  timing=f"framing only (detection, landmarks, alignment), blocks of {BLOCK} photos, finders "
                         "alternating", machine=hardware.describe())
    files.write_text(OUT, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
