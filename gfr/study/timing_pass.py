"""The timing pass: every finished run's test-split prediction from JPEGs, timed side by side in one session."""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from gfr import files
from gfr.data import celeba, split
from gfr.errors import GfrError
from gfr.study import artefacts, timing
from gfr.study.registry import run_order

TIMING_FILE = "timing.json"  # beside the runs folder: reports/timing.json
MIN_ROUNDS = 3
TIMED, NOT_TIMED = "timed", "not timed"
METHOD = ("Every finished run's full model (rebuilt from its saved run) predicts the test split's JPEGs "
          "(gfr.models.classifier.predict_files: decode, resize, preprocess, forward) once per round, all runs in "
          "one process; each round's order is the run list rotated by an equal share and reversed every other "
          "round, so that no run always meets the same place in a round (the machine's load drifts); one warm-up "
          "per run before the first round (every batch shape traced). Per run: the median of the rounds' wall "
          "seconds, with min and max. The load averages around each round say how busy the machine was.")


def default_path(runs_dir: str | os.PathLike) -> Path:
    """Where the timing pass of the runs under `runs_dir` is written (reports/runs -> reports/timing.json)."""
    return Path(runs_dir).parent / TIMING_FILE


def round_order(names: list[str], round_index: int, rounds: int) -> list[str]:
    """Round `round_index`'s run order: `names` rotated by round_index/rounds of its length, reversed in odd rounds."""
    offset = (round_index * len(names)) // max(rounds, 1)
    turn = names[offset:] + names[:offset]
    return turn[::-1] if round_index % 2 else turn


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _prediction_gap(run_dir: Path, record: dict, image_ids, probs: np.ndarray) -> dict:
    """How far this pass's P(male) lies from the run's committed test predictions (its primary seed's column)."""
    saved = artefacts.test_predictions(run_dir).set_index("image_id")
    column = artefacts.prob_column(record["primary_seed"])
    if set(saved.index) != set(image_ids):
        return {"max_abs_diff": None, "note": f"the run's {artefacts.TEST_PREDICTIONS_FILE} holds other test images "
                                              f"than the split manifest's"}
    return {"max_abs_diff": float(np.max(np.abs(probs - saved.loc[list(image_ids), column].to_numpy()))),
            "against": f"{artefacts.TEST_PREDICTIONS_FILE} {column}"}


def _threads(info: dict, workers: int | None) -> dict:
    """Thread settings the pass runs with, from hardware.describe's `info` (0: the backend's default, one per core)."""
    return {**info["threads"], "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
            "decode_workers": workers if workers else "default of gfr.data.images.iter_batches"}


def run_pass(runs_dir: str | os.PathLike, data_dir: str | os.PathLike | None, manifest: str | os.PathLike,
             rounds: int = MIN_ROUNDS, warmup: int = 1, runs: list[str] | None = None,
             workers: int | None = None) -> dict:
    """Time every finished run (or `runs`) side by side: build each model once, warm each up, then `rounds`
    rounds in which every run predicts the test split once. A run that cannot be built is kept with its reason."""
    from gfr.study import hardware
    from gfr.study.saved import load_model

    if rounds < MIN_ROUNDS:
        raise GfrError(f"the timing pass needs at least {MIN_ROUNDS} rounds (median with min-max), not {rounds}")
    runs_dir, started = Path(runs_dir), _now()
    root = celeba.data_dir(data_dir)
    frame = split.read_manifest(manifest)
    image_ids = frame.image_id[frame.split == "test"].tolist()
    if not image_ids:
        raise GfrError(f"{manifest}: no test images")
    paths = [celeba.image_path(root, i) for i in image_ids]
    names = runs or artefacts.finished_runs(runs_dir)
    if not names:
        raise GfrError(f"no finished run under {runs_dir} to time")
    unknown = [n for n in names if not (runs_dir / n / artefacts.MANIFEST).is_file()]
    if unknown:
        raise GfrError(f"no run manifest at {runs_dir / unknown[0] / artefacts.MANIFEST}")
    info = hardware.describe()
    out = {name: {} for name in names}
    models = {}
    for k, name in enumerate(names, 1):
        start = time.perf_counter()
        try:
            loaded = load_model(runs_dir / name)
        except GfrError as exc:
            out[name] = {"status": NOT_TIMED, "reason": str(exc)}
            _say(f"timing: [{k}/{len(names)}] {name}: not timed: {exc}")
            continue
        record = loaded.record
        size, batch = tuple(record["input_size"]), record["params"]["timing"]["batch_size"]
        timing.warm_up(loaded.model, loaded.backbone, paths, size, batch, warmup, workers=workers)
        models[name] = (loaded, size, batch)
        out[name] = {"status": TIMED, "head_sha256": record.get("head_sha256"), "input_size": list(size),
                     "batch_size": batch, "build_and_warm_up_s": time.perf_counter() - start,
                     "seconds": [], "cpu_seconds": [], "places": []}
        _say(f"timing: [{k}/{len(names)}] {name}: built and warmed up in {out[name]['build_and_warm_up_s']:.1f} s")
    timed = [n for n in names if n in models]
    round_log = []
    for r in range(rounds):
        order, before = round_order(timed, r, rounds), timing.load_average()
        for place, name in enumerate(order):
            loaded, size, batch = models[name]
            one = timing.time_pass(loaded.model, loaded.backbone, paths, size, batch, workers=workers)
            entry = out[name]
            entry["seconds"].append(one["seconds"])
            entry["cpu_seconds"].append(one["cpu_seconds"])
            entry["places"].append(place + 1)
            if r == 0:
                entry["predictions"] = _prediction_gap(runs_dir / name, loaded.record, image_ids, one["probabilities"])
            load = timing.load_average()
            _say(f"timing: round {r + 1}/{rounds} [{place + 1}/{len(order)}] {name}: {one['seconds']:.1f} s"
                 + (f", load {load[0]:.1f}" if load else "")
                 + (f", max |P - committed| {entry['predictions']['max_abs_diff']}" if r == 0 else ""))
        round_log.append({"round": r + 1, "order": order, "load_average_before": before,
                          "load_average_after": timing.load_average()})
    for name in timed:
        out[name].update(timing.spread(out[name]["seconds"], len(paths)))
    return {
        "method": METHOD, "started": started, "finished": _now(), "images": len(paths), "rounds": rounds,
        "warmup_passes": warmup, "split_manifest": str(manifest), "split_manifest_sha256": split.manifest_hash(manifest),
        "backend": info["keras_backend"], "threads": _threads(info, workers), "hardware": info,
        "round_log": round_log, "runs": out,
    }


def write(result: dict, path: str | os.PathLike) -> Path:
    """Write the timing pass atomically; return its path."""
    files.write_json(path, result)
    return Path(path)


def read(path: str | os.PathLike) -> dict | None:
    """The timing pass written at `path`, or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GfrError(f"{path}: not a timing pass ({exc})") from None


def describe(result: dict) -> str:
    """One sentence on how and when the inference times were measured, with the machine's load meanwhile."""
    loads = [v for r in result["round_log"] for v in (r["load_average_before"][0], r["load_average_after"][0])]
    timed = sum(1 for e in result["runs"].values() if e["status"] == TIMED)
    return (f"Inference times: one timing pass ({result['started'][:16].replace('T', ' ')}–"
            f"{result['finished'][11:16]} UTC): {timed} finished runs side by side in one process, {result['rounds']} "
            f"rounds over the {result['images']:,} test JPEGs, order rotated and reversed between rounds; median "
            f"(min–max) wall seconds per pass on {result['hardware'].get('cpu', '?')} "
            f"({result['hardware'].get('cores', '?')} cores), 1-minute load {min(loads):.1f}–{max(loads):.1f} "
            f"meanwhile. Compare the runs within this pass; timings taken during the sweep are diagnostics only.")


def summary_text(result: dict) -> str:
    """One line per run: median (min-max) seconds and images/s, or why it was not timed."""
    lines = [f"{len(result['runs'])} runs, {result['rounds']} rounds of {result['images']} images "
             f"({result['started']} - {result['finished']}, backend {result['backend']})"]
    for name, r in result["runs"].items():
        if r["status"] == TIMED:
            gap = r.get("predictions", {}).get("max_abs_diff")
            lines.append(f"  {name}: {r['median_s']:.1f} s ({r['min_s']:.1f}-{r['max_s']:.1f}), "
                         f"{r['images_per_s']:.1f} img/s, max |P - committed| {gap if gap is None else f'{gap:.2g}'}")
        else:
            lines.append(f"  {name}: {NOT_TIMED}: {r['reason']}")
    return "\n".join(lines)
