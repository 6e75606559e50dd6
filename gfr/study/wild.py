"""Faces outside CelebA (an in-the-wild folder with labels.csv): per-image predictions of each run and the peer, cached."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from gfr import files
from gfr.data import faces
from gfr.data.images import decode
from gfr.errors import GfrError
from gfr.files import file_sha256, object_sha256
from gfr.paths import REPORTS_DIR, RUNS_DIR
from gfr.progress import meter as progress_meter
from gfr.study import artefacts, metrics

WILD_ENV = "GFR_WILD_DIR"
LABELS = "labels.csv"  # file,male,source
IMAGES = "images"
OUT_DIR = REPORTS_DIR / "wild"
PEER = "peer"
COLUMNS = ["file", "source", "male", "p_male", "detector"]


def wild_dir(path: str | os.PathLike | None = None) -> Path:
    """The in-the-wild folder: `path`, else $GFR_WILD_DIR; a clear error when neither holds labels.csv."""
    root = Path(path or os.environ.get(WILD_ENV) or "").expanduser()
    if not (str(root) and (root / LABELS).is_file()):
        raise GfrError(f"{root / LABELS if str(root) else '$' + WILD_ENV}: no in-the-wild labels.csv "
                       f"(give --wild-dir or set {WILD_ENV}, e.g. ../shared/in-the-wild-dev)")
    return root


def labels(root: Path) -> pd.DataFrame:
    """file, male (1/0), source of every labelled image, in file order; a clear error for a missing column."""
    frame = pd.read_csv(root / LABELS)
    missing = {"file", "male", "source"} - set(frame.columns)
    if missing:
        raise GfrError(f"{root / LABELS}: missing column(s) {', '.join(sorted(missing))}")
    return frame.sort_values("file").reset_index(drop=True)


def _faces_key() -> str:
    """What framing a photo depends on besides the photo: the measured CelebA geometry."""
    return object_sha256([faces.LANDMARKS, faces.CELEBA_BOX, faces.FRAME_DX, faces.FRAME_DY, faces.FRAME_WIDTH]
                         + ([faces.FINDER] if faces.FINDER != "enlarged" else []))


@functools.lru_cache(maxsize=4)
def framed(root: str, framing: str, progress: bool, out_dir: str | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Every image framed once (CelebA size, 218x178) for all runs: the crop of the largest face and its detector.

    Kept in `out_dir` (.framed-<framing>.npz, keyed by labels and geometry), so later runs and processes reuse it."""
    key = f"{file_sha256(Path(root) / LABELS)[:16]}-{_faces_key()[:16]}"
    cache = Path(out_dir) / f".framed-{framing}-{key}.npz" if out_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            return stored["crops"], tuple(stored["detector"].tolist())
    files_ = labels(Path(root)).file
    crops, found_by = [], []
    meter = progress_meter(len(files_), f"framing ({framing})", enabled=progress)
    for name in files_:
        found, by = faces.crops_or_whole(decode(Path(root) / IMAGES / name, None), faces.CELEBA_SIZE, framing)
        crops.append(found[0])
        found_by.append(by)
        meter.update(1)
    meter.close()
    stacked = np.stack(crops)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with files.atomic_path(cache, suffix=".npz") as tmp:
            np.savez(tmp, crops=stacked, detector=np.array(found_by))
    return stacked, tuple(found_by)


def out_path(out_dir: Path, name: str, framing: str) -> Path:
    """Where the predictions of a run (or the peer) under a framing are written."""
    return Path(out_dir) / (f"{name}.csv" if framing == faces.FRAMINGS[0] else f"{name}__{framing}.csv")


def _cached(path: Path, key: dict) -> pd.DataFrame | None:
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file() and json.loads(meta.read_text()).get("key") == key:
        return pd.read_csv(path)
    return None


def _save(path: Path, key: dict, frame: pd.DataFrame) -> pd.DataFrame:
    files.write_csv(path, frame[COLUMNS])
    files.write_json(path.with_suffix(".json"), {"key": key, "sha256": file_sha256(path)})
    return frame


def predict_run(run_dir: str | os.PathLike, root: Path, out_dir: Path = OUT_DIR, framing: str = faces.FRAMINGS[0],
                batch_size: int = 32, progress: bool = True) -> pd.DataFrame:
    """A run's P(male) for every in-the-wild image under `framing` (read from `out_dir` when nothing changed)."""
    from gfr.study.saved import forward, load_model

    run_dir = Path(run_dir)
    record = artefacts.load_record(run_dir)
    key = {"run": run_dir.name, "head_sha256": record.get("head_sha256"), "weights_sha256": record.get("weights_sha256"),
           "labels_sha256": file_sha256(root / LABELS), "framing": framing,
           "faces": _faces_key()}
    path = out_path(out_dir, run_dir.name, framing)
    if (hit := _cached(path, key)) is not None:
        return hit
    loaded = load_model(run_dir)
    crops, found_by = framed(str(root), framing, progress, str(out_dir))
    size = tuple(loaded.record["input_size"])
    probs = forward(loaded, [faces.resize(c, size) for c in crops], batch_size)
    frame = labels(root).assign(p_male=probs, detector=list(found_by))
    return _save(path, key, frame)


def predict_peer(root: Path, out_dir: Path = OUT_DIR, progress: bool = True) -> pd.DataFrame:
    """The peer's P(male) for every in-the-wild image (its own detector and alignment; whole image if no face)."""
    from gfr.study import peer

    key = {"run": PEER, "versions": peer.versions(), "labels_sha256": file_sha256(root / LABELS)}
    path = out_path(out_dir, PEER, faces.FRAMINGS[0])
    if (hit := _cached(path, key)) is not None:
        return hit
    predictor = peer.load()
    frame = labels(root)
    probs, found = [], []
    meter = progress_meter(len(frame), "peer", enabled=progress)
    for name in frame.file:
        pred, p_male, face = peer.classify_image(predictor, decode(root / IMAGES / name, None))
        # the peer's P(male) has 1% resolution; where it sits on the wrong side of the threshold, its label decides
        probs.append(p_male if (p_male >= metrics.THRESHOLD) == bool(pred) else float(pred))
        found.append("peer" if face else "none")
        meter.update(1)
    meter.close()
    return _save(path, key, frame.assign(p_male=probs, detector=found))


def finished_runs(runs_dir: str | os.PathLike = RUNS_DIR) -> list[str]:
    """Runs with status ok whose model can be rebuilt here (a fine-tuned run needs its uncommitted weights file)."""
    def buildable(name: str) -> bool:
        record = artefacts.load_record(Path(runs_dir) / name)
        return not (record.get("finetuned_file") and not (Path(runs_dir) / name / record["finetuned_file"]).is_file())

    return [name for name in artefacts.finished_runs(runs_dir) if buildable(name)]


def read(out_dir: str | os.PathLike = OUT_DIR) -> dict[str, pd.DataFrame]:
    """Every predictions file in `out_dir`: {name (run, peer, or run__framing): frame}."""
    return {p.stem: pd.read_csv(p) for p in sorted(Path(out_dir).glob("*.csv"))}


def accuracy_table(predictions: dict[str, pd.DataFrame], peer_name: str = PEER) -> pd.DataFrame:
    """Accuracy per source and overall with Wilson 95% CIs; McNemar against the peer on the same images, Holm-corrected
    over every comparison in the table. Photos with no face found are classified whole (`accuracy`); the column
    "accuracy, no face = wrong" counts them wrong instead (NO_FACE_RULE)."""
    rows = []
    peer = predictions.get(peer_name)
    for name, frame in predictions.items():
        right = metrics.is_correct(frame.p_male, frame.male)
        for source, mask in metrics.source_masks(frame.source).items():
            k, n = int(right[mask].sum()), int(mask.sum())
            low, high = metrics.wilson_ci(k, n)
            no_face = frame.detector.values[mask] == "none"
            row = {"model": name, "source": source, "n": n, "accuracy": k / n, "ci_low": low, "ci_high": high,
                   "no face found": int(no_face.sum()),
                   "accuracy, no face = wrong": int((right[mask] & ~no_face).sum()) / n}
            if peer is not None and name != peer_name:
                merged = frame.merge(peer, on="file", suffixes=("", "_peer"))
                pm = metrics.source_masks(merged.source).get(source, np.zeros(len(merged), bool))
                test = metrics.mcnemar(metrics.is_correct(merged.p_male[pm], merged.male[pm]),
                                       metrics.is_correct(merged.p_male_peer[pm], merged.male[pm]))
                row.update({"only this right": test["only_a_right"], "only peer right": test["only_b_right"],
                            "McNemar p": test["p_value"]})
            rows.append(row)
    table = pd.DataFrame(rows)
    if "McNemar p" in table:
        table["McNemar p (Holm)"] = metrics.holm(table["McNemar p"].to_numpy(dtype=float))
    return table


def ensemble_table(predictions: dict[str, pd.DataFrame], members: list[str]) -> pd.DataFrame:
    """`accuracy_table` of an ensemble's members, the ensemble (the mean of their P(male)) and the peer (McNemar
    against it, Holm over this table)."""
    from gfr.study import ensemble

    table = {m: predictions[m] for m in members if m in predictions}
    table[ensemble.name(members)] = ensemble.wild_predictions(predictions, members)
    if PEER in predictions:
        table[PEER] = predictions[PEER]
    return accuracy_table(table)


SUMMARY = REPORTS_DIR / "wild-summary.json"  # committed: accuracies only (no per-image labels)
NO_FACE_SUMMARY = REPORTS_DIR / "wild-no-face.json"  # committed: how photos without a face found count, both ways
NO_FACE_RULE = ("a photo where no face is found (detector 'none') is classified whole (the image resized), as "
                "`gfr predict --detect-faces --no-face whole-image` does; `gfr predict` itself labels it 'no face "
                "found' and gives no gender, so its accuracy is also given counting those photos wrong, and on the "
                "photos with a face found only (with their number: coverage)")


def no_face_ways(frame: pd.DataFrame) -> dict:
    """Accuracy of one model's rows three ways: photos without a face found classified whole (gfr wild's accuracy),
    counted wrong (as `gfr predict` gives them no gender), and left out (accuracy on the faces found; coverage)."""
    right = np.asarray(metrics.is_correct(frame.p_male, frame.male), bool)
    found = frame.detector.values != "none"
    n, k_found = len(frame), int(found.sum())
    out = {"n": n, "no face found": n - k_found, "faces found": k_found, "coverage": k_found / n if n else float("nan")}
    for key, k, m in (("whole image", int(right.sum()), n), ("no face = wrong", int((right & found).sum()), n),
                      ("faces found only", int((right & found).sum()), k_found)):
        low, high = metrics.wilson_ci(k, m)
        out[key] = {"accuracy": k / m if m else float("nan"), "right": k, "of": m, "ci_low": low, "ci_high": high}
    return out


def no_face_table(predictions: dict[str, pd.DataFrame]) -> list[dict]:
    """`no_face_ways` per model and source (and all)."""
    rows = []
    for name, frame in predictions.items():
        for source in [*sorted(frame.source.unique()), "all"]:
            part = frame if source == "all" else frame[frame.source == source]
            rows.append({"model": name, "source": source, **no_face_ways(part)})
    return rows


def write_no_face_summary(out_dir: str | os.PathLike = OUT_DIR, path: str | os.PathLike = NO_FACE_SUMMARY) -> dict:
    """`no_face_table` of every model's default-framing predictions in `out_dir`, with the rule, as JSON."""
    predictions = {n: f for n, f in read(out_dir).items() if "__" not in n}
    summary = {"default_framing": faces.FRAMINGS[0], "rule": NO_FACE_RULE, "models": no_face_table(predictions)}
    files.write_json(path, summary)
    return summary


def describe(frame: pd.DataFrame) -> str:
    """One line on a model's in-the-wild accuracy, and how the photos without a face found count in it."""
    ways = no_face_ways(frame)
    text = f"{ways['whole image']['accuracy']:.4f} on {ways['n']} images"
    if ways["no face found"]:
        text += (f" ({ways['no face found']} with no face found, classified whole; counting them wrong "
                 f"{ways['no face = wrong']['accuracy']:.4f}; on the {ways['faces found']} with a face "
                 f"{ways['faces found only']['accuracy']:.4f})")
    else:
        text += " (a face found in every one)"
    return text


def write_summary(out_dir: str | os.PathLike = OUT_DIR, path: str | os.PathLike = SUMMARY) -> dict:
    """Accuracy tables (per source, Wilson CIs, McNemar vs the peer with Holm) of the default framing, of every
    framing for the runs measured under several, and of the study's ensemble where its members were measured;
    written atomically as JSON for README's generated block."""
    predictions = read(out_dir)
    default = {n: f for n, f in predictions.items() if "__" not in n}
    framed = {n: f for n, f in predictions.items() if "__" in n or any(k.startswith(n + "__") for k in predictions)}
    summary = {"default_framing": faces.FRAMINGS[0],
               "models": accuracy_table(default).to_dict("records") if default else [],
               "framings": [{**r, "framing": (r["model"].partition("__")[2] or faces.FRAMINGS[0]),
                             "model": r["model"].partition("__")[0]}
                            for r in accuracy_table(framed, peer_name="").to_dict("records")] if framed else []}
    from gfr.study import ensemble

    if all(m in default for m in ensemble.MEMBERS):  # the study's ensemble: its members, itself and the peer
        summary["ensemble"] = {"members": ensemble.MEMBERS,
                               "models": ensemble_table(default, ensemble.MEMBERS).to_dict("records")}
    files.write_json(path, summary)
    return summary
