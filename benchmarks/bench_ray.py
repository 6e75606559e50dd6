"""Ray on a 2-node localhost cluster against the serial path: a synthetic sweep and a 50,000-image sharded extraction.

A Ray cluster of two nodes of one CPU each is started on 127.0.0.1 (`ray start --head`, then a second node
joining it: `ray_localhost.LocalCluster`). On the same work, each side in a fresh process (its wall time,
imports and Ray connection included, is the side's time; `ray-1`'s is less the start of its holder actor):

* sweep: RUNS, the train notebook executed by `gfr.pipeline.sweep.run_sweep` on a synthetic CelebA-layout set
  (SWEEP_PARAMS: random weights, 64x64 input, three head seeds), serially, or on Ray (the feature cache
  prefilled by sharded extraction, then one task per run);
* extraction: `feature_cache.extract` (serial) or `sharded_extraction.extract` (Ray) of `--images` synthetic
  images (218x178 JPEGs, bench_scale's generator) with ResNet50, random weights, 32x32 input, batch 64: the cheapest
  configuration of the pipeline, so JPEG decoding is a large share of the work.

Three sides, alternating repeat by repeat (serial, ray-2, ray-1, then the reverse): `serial`; `ray-2`, Ray on both
nodes (two workers: the speed-up); `ray-1`, Ray with the second node's CPU held by an idle actor, so every task
runs on one worker (Ray's overhead, like for like with the serial path). Outputs are compared with the serial
side's by SHA-256: the feature-cache files, each run's head weights (manifest's head_sha256) and test predictions.
After the first repeat, one Ray worker computing a shard is killed (SIGKILL, by pid) mid-extraction: Ray retries
its task and the cache file must still be the serial one. Writes benchmarks/results/ray-cpu.json after every
repeat (atomically), with every repeat's numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from bench_scale import ensure_dataset  # noqa: E402
from ray_localhost import LocalCluster, worker_pids  # noqa: E402

NAME = "ray"
SIDES = ("serial", "ray-2", "ray-1")
WORKLOADS = ("sweep", "extraction")
RUNS = ("ResNet50-it1", "VGG16-it1")
SWEEP_PARAMS = """# bench_ray.py's sweep: the study's pipeline on synthetic data, small enough for a benchmark
weights: none
feature_batch_size: 32
input_size: [64, 64]
head:
  dense_units: 32
  seeds: [1024, 1025, 1026]
timing:
  warmup: 0
  repeats: 1
  batch_size: 32
"""
BACKBONE, SIZE, BATCH, INIT_SEED = "ResNet50", (32, 32), 64, 1024
KILL_AFTER_SHARDS = 2  # the worker is killed once this many shards are finished


# ---------------------------------------------------------------- one side (fresh process)

def hold_second_node() -> None:
    """Take the non-head node's CPU with an idle actor, so every task of this driver runs on the head's one worker."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from gfr.pipeline import cluster

    ray = cluster.connect()
    others = [n for n in ray.nodes() if n.get("Alive") and "node:__internal_head__" not in n.get("Resources", {})]
    if not others:
        raise SystemExit("ray-1 needs a cluster of two nodes")

    class Holder:
        def ready(self) -> bool:
            return True

    strategy = NodeAffinitySchedulingStrategy(others[0]["NodeID"], soft=False)
    holder = ray.remote(num_cpus=1)(Holder).options(scheduling_strategy=strategy).remote()
    ray.get(holder.ready.remote())
    hold_second_node.holder = holder  # kept alive for the driver's lifetime


def child(args) -> int:
    workload, side = args.child
    work = Path(args.work)
    start = time.perf_counter()
    if side == "ray-1":
        hold_second_node()
    held = time.perf_counter() - start  # scaffolding of this benchmark, not Ray's overhead: left out of the side's time
    start = time.perf_counter()
    if workload == "extraction":
        from gfr.models import backbones, feature_cache
        from gfr.pipeline import sharded_extraction

        fn = feature_cache.extract if side == "serial" else sharded_extraction.extract
        ids = [f"{i:06d}.jpg" for i in range(1, args.images + 1)]
        _, info = fn(BACKBONE, ids, args.data, SIZE, False, backbones.RANDOM, f"bench-ray-{args.images}", BATCH,
                     work / "cache", INIT_SEED, progress=True)
        out = {"shards": info.get("shards"), "shards_reused": info.get("shards_reused")}
    else:
        from gfr.pipeline import sweep

        parameters = {"data_dir": args.data, "manifest": str(args.manifest), "runs_dir": str(work / "runs"),
                      "cache_dir": str(work / "cache"), "params_extra": [str(args.params)], "weights": "none"}
        jobs = [sweep.job_for(work / "notebooks" / f"{run}.ipynb", parameters) for run in args.runs]
        outcomes = sweep.run_sweep(jobs, "serial" if side == "serial" else "ray")
        out = {"ok": [o.ok for o in outcomes], "errors": [o.error for o in outcomes if not o.ok],
               "nodes": sorted({o.node for o in outcomes})}
    print("@@" + json.dumps({"work_s": time.perf_counter() - start, "holder_s": held, **out}), flush=True)
    return 0


def outputs(work: Path, runs) -> dict[str, str]:
    """SHA-256 of what a side produced: every feature-cache file, and each run's head weights and test predictions."""
    from gfr import files
    from gfr.study.artefacts import MANIFEST, TEST_PREDICTIONS_FILE

    found = {f"cache/{p.name}": files.file_sha256(p) for p in sorted((work / "cache").glob("*.npy"))}
    for run in runs:
        manifest = work / "runs" / run / MANIFEST
        if manifest.is_file():
            found[f"{run}/head_sha256"] = json.loads(manifest.read_text()).get("head_sha256")
            found[f"{run}/{TEST_PREDICTIONS_FILE}"] = files.file_sha256(work / "runs" / run / TEST_PREDICTIONS_FILE)
    return found


def shards_done(work: Path) -> int:
    """How many shards of the extraction under `work` are finished (their sidecar is written last)."""
    return len(list((work / "cache").glob("*.shards/rows-*.json")))


def run_side(workload: str, side: str, work: Path, args, cluster: LocalCluster, kill: bool = False) -> dict:
    """Run one side in a fresh process; return its times and outputs (and, with `kill`, the worker killed)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--child", workload, side, "--work", str(work), "--images", str(args.images),
           "--data", str(args.sweep_data if workload == "sweep" else args.data), "--manifest", str(args.manifest),
           "--params", str(args.params), "--runs", *args.runs]
    env = cluster.env() if side != "serial" else {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    load = common.load_average()
    print(f"-- {workload} {side}{' (a worker killed mid-way)' if kill else ''}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=common.REPO)
    killed = None
    while kill and killed is None and proc.poll() is None:
        time.sleep(1)
        pids = sorted(set(worker_pids("compute_shard")) & set(cluster.pids()))  # this cluster's workers only
        if shards_done(work) >= KILL_AFTER_SHARDS and pids:
            os.kill(pids[0], signal.SIGKILL)
            killed = {"pid": pids[0], "at_s": time.perf_counter() - start, "shards_done_before": shards_done(work),
                      "workers_running": len(pids)}
            print(f"   killed Ray worker {pids[0]} at {killed['at_s']:.0f} s ({killed['shards_done_before']} shards done)",
                  flush=True)
    stdout, _ = proc.communicate()
    wall = time.perf_counter() - start
    line = next((ln for ln in stdout.splitlines() if ln.startswith("@@")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{workload} {side} failed (exit {proc.returncode}); its output is above")
    result = json.loads(line[2:])
    record = {"workload": workload, "side": side, "wall_s": wall - result["holder_s"], "process_wall_s": wall,
              "load_average_at_start": load, **result, "outputs": outputs(work, args.runs)}
    if kill:
        record["killed"] = killed
    print(f"   {workload} {side}: {wall:.1f} s", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return record


# ---------------------------------------------------------------- parent

def spread(values: list[float]) -> dict:
    return {"runs_s": values, "median_s": statistics.median(values), "min_s": min(values), "max_s": max(values)}


def summarise(records: list[dict], kill: dict | None, args, config: dict) -> dict:
    """The result payload: every side's times, their spread, identity with serial, the ratios."""
    repeats = max((r["repeat"] for r in records), default=0)
    done = [k for k in range(1, repeats + 1) if len([r for r in records if r["repeat"] == k]) == len(SIDES) * len(WORKLOADS)]
    by = {(r["repeat"], r["workload"], r["side"]): r for r in records if r["repeat"] in done}
    timings = {w: {s: spread([by[k, w, s]["wall_s"] for k in done]) for s in SIDES} for w in WORKLOADS}
    both = {s: [by[k, "sweep", s]["wall_s"] + by[k, "extraction", s]["wall_s"] for k in done] for s in SIDES}
    timings["sweep+extraction"] = {s: spread(v) for s, v in both.items()}
    identical = {w: {s: all(by[k, w, s]["outputs"] == by[k, w, "serial"]["outputs"] and by[k, w, s]["outputs"]
                            for k in done) for s in SIDES[1:]} for w in WORKLOADS}
    serial_same = {w: len({json.dumps(by[k, w, "serial"]["outputs"], sort_keys=True) for k in done}) == 1 for w in WORKLOADS}
    median = {s: statistics.median(v) for s, v in both.items()}
    per_workload = {w: {s: timings[w][s]["median_s"] / timings[w]["serial"]["median_s"] for s in SIDES[1:]}
                    for w in WORKLOADS}
    return {
        "config": {**config, "repeats": len(done)},
        "records": records,
        "timings": timings,
        "identical_to_serial": identical,
        "serial_outputs_same_every_repeat": serial_same,
        "ratio_to_serial": per_workload,
        "ratio_per_repeat": [a / b for a, b in zip(both["ray-1"], both["serial"])],
        "ratio_per_repeat_ray2": [a / b for a, b in zip(both["ray-2"], both["serial"])],
        "kill": kill,
        "ratios": [common.ratio("Ray, 1 worker / serial wall time, sweep + extraction (overhead)",
                                median["ray-1"] / median["serial"], 1.10, "<="),
                   common.ratio("Ray, 2 nodes / serial wall time, sweep + extraction",
                                median["ray-2"] / median["serial"], 1.10, "<=")] if done else [],
    }


def prepare(args) -> dict:
    """The two synthetic datasets (reused when there), the sweep's params file and split manifest."""
    from gfr import files
    from gfr.data import split
    from gfr.params import load_params

    root = Path(args.root)
    args.data = root / "extraction-data"
    data = ensure_dataset(args.data, args.images, 2)
    args.sweep_data = common.synthetic_root(args.sweep_images, root / f"sweep-{args.sweep_images}", seed=3)
    args.params = root / "sweep.yaml"
    files.write_text(args.params, SWEEP_PARAMS)
    args.manifest = root / f"split-{args.sweep_images}.csv"
    params = load_params(1, extra=[args.params])
    files.write_csv(args.manifest, split.make_manifest(args.sweep_data, params.seed, params.data, progress=False)[0])
    return data


def child_args(argv: list[str]):
    """The options of one side's process (given by `run_side`)."""
    import argparse

    q = argparse.ArgumentParser()
    q.add_argument("--child", nargs=2, metavar=("WORKLOAD", "SIDE"))
    q.add_argument("--runs", nargs="+")
    for flag in ("--work", "--data", "--manifest", "--params"):
        q.add_argument(flag)
    q.add_argument("--images", type=int)
    return q.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(child_args(argv))
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--root", default="/tmp/gfr-ray-bench", help="where the synthetic data and the scratch outputs go")
    p.add_argument("--images", type=int, help="images of the extraction (default 50000; --quick 2000)")
    p.add_argument("--sweep-images", type=int, help="images of the sweep's synthetic set (default 600; --quick 300)")
    p.add_argument("--runs", nargs="+", help=f"the sweep's runs (default {' '.join(RUNS)}; --quick the first)")
    p.add_argument("--port", type=int, default=6390, help="the head's GCS port on 127.0.0.1")
    p.add_argument("--no-kill", action="store_true", help="leave out the killed-worker run")
    args = p.parse_args(argv)
    common.quiet_backends()
    started = time.perf_counter()
    args.images = args.images or (2000 if args.quick else 50000)
    args.sweep_images = args.sweep_images or (300 if args.quick else 600)
    args.runs = args.runs or list(RUNS[:1] if args.quick else RUNS)
    repeats = args.repeats or (1 if args.quick else 2)
    if common.REPO in Path(args.root).resolve().parents:
        p.error("put the benchmark's data outside the repository")
    dataset = prepare(args)
    config = {"nodes": 2, "cpus_per_node": 1, "address": f"127.0.0.1:{args.port}", "sides": list(SIDES),
              "sweep": {"runs": args.runs, "images": args.sweep_images, "params": SWEEP_PARAMS,
                        "data": "synthetic (gfr.data.synthetic), 218x178 JPEGs"},
              "extraction": {"images": args.images, "backbone": BACKBONE, "image_size": list(SIZE), "batch_size": BATCH,
                             "weights": "none (random init, seed 1024: same compute)", "dataset": dataset,
                             "data": "synthetic (gfr.data.synthetic), 218x178 JPEGs"},
              "time": "wall time of each side's fresh process (imports, Ray connection, the work; for ray-1 less the "
                      "time its holder actor took to start)",
              "order": "serial, ray-2, ray-1 in odd repeats, the reverse in even ones; sweep, then extraction"}
    print(f"ray: {repeats} repeat(s) of {', '.join(SIDES)} on a sweep of {len(args.runs)} runs and a {args.images}-image "
          f"extraction, 2-node cluster at 127.0.0.1:{args.port}", flush=True)
    records, kill = [], None
    with LocalCluster(nodes=2, cpus_per_node=1, port=args.port) as cluster:
        for rep in range(1, repeats + 1):
            order = SIDES if rep % 2 else SIDES[::-1]
            for workload in WORKLOADS:
                for side in order:
                    records.append({"repeat": rep, **run_side(workload, side, Path(args.root) / "work", args, cluster)})
            if rep == 1 and not args.no_kill:
                kill = run_side("extraction", "ray-2", Path(args.root) / "work", args, cluster, kill=True)
                serial = next(r for r in records if r["workload"] == "extraction" and r["side"] == "serial")
                kill["identical_to_serial"] = kill["outputs"] == serial["outputs"]
                print(f"   killed-worker run: cache identical to serial: {kill['identical_to_serial']}", flush=True)
            common.write_result(NAME, summarise(records, kill, args, config), args, started, device="cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
