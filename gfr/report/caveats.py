"""What the study's numbers do not show (which set chose what, set sizes, machines) and the data's licence notices."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gfr.report import tables
from gfr.study import published, results


def _rows_of(summary: dict | None, model: str) -> list[dict]:
    return [r for r in (summary or {}).get("models", []) if r["model"] == model]


def _set_row(name: str, n, chose: str, reads: str, rows: list[dict]) -> dict:
    """One row of `sets_table`; `rows` are the chosen run's accuracy rows on the set (per source and 'all')."""
    all_rows = [r for r in rows if r["source"] == "all"]
    per_source = [r for r in rows if r["source"] != "all"]
    return {"set": name, "images": n if n is not None else tables.DASH, "chose": chose, "its numbers are": reads,
            "chosen run there (95% CI)": tables.pct_ci(all_rows[0]["accuracy"], all_rows[0]["ci_low"],
                                                      all_rows[0]["ci_high"]) if all_rows else tables.DASH,
            "interval width (points)": f"{100 * (all_rows[0]['ci_high'] - all_rows[0]['ci_low']):.1f}"
            if all_rows else tables.DASH,
            "per source": "; ".join(f"{r['source']} {r['n']}: {tables.pct_ci(r['accuracy'], r['ci_low'], r['ci_high'])}"
                                    for r in per_source) or tables.DASH}


def sets_table(split_frame: pd.DataFrame, results_table: pd.DataFrame, wild_summary: dict | None,
               confirm: dict | None, face_finding: dict | None, face_locate: dict | None,
               face_check: dict | None) -> pd.DataFrame:
    """Every set the study uses: its size, what it chose (so its numbers are optimistic for that choice) and the
    chosen run's accuracy on it with its Wilson interval (how small the set is)."""
    sizes = split_frame.split.value_counts()
    chosen = results_table[results_table.chosen.astype(str).str.lower() == "true"]
    c = chosen.iloc[0] if len(chosen) else None
    test_rows = [] if c is None else [{"source": "all", "n": int(sizes.get("test", 0)), "accuracy": c.test_accuracy,
                                       "ci_low": c.test_accuracy_ci_low, "ci_high": c.test_accuracy_ci_high}]
    validation_chose = ["each head's and fine-tuned model's kept epoch (best validation accuracy)",
                        "the chosen run (the choice rule)"]
    if face_check:
        validation_chose.append(f"the face-crop check's threshold ({face_check['threshold']})")
    dev_chose = []
    if face_finding:
        dev_chose.append(f"how `--detect-faces` looks for faces ({face_finding['chosen']})")
    if wild_summary and wild_summary.get("default_framing"):
        dev_chose.append(f"how a photo is framed ({wild_summary['default_framing']})")
    if face_locate:
        dev_chose.append(f"where the descriptor looks for the face in CelebA's images ({face_locate['chosen']})")
    dev_n = max((r["n"] for r in (wild_summary or {}).get("models", []) if r["source"] == "all"), default=None)
    confirm_n = max((r["n"] for r in (confirm or {}).get("models", []) if r["source"] == "all"), default=None)
    name = c.run if c is not None else ""
    rows = [
        _set_row("CelebA train", int(sizes.get("train", 0)), "the heads' and fine-tuned layers' weights",
                 "fitted on: its accuracy is no result", []),
        _set_row("CelebA validation", int(sizes.get("val", 0)), "; ".join(validation_chose),
                 "optimistic for the chosen run", []),
        _set_row("CelebA test", int(sizes.get("test", 0)), "nothing",
                 "unbiased for the chosen run (chosen on validation); the best of the many runs shown on it "
                 "would be a selected number", test_rows),
        _set_row("in-the-wild-dev", dev_n, "; ".join(dev_chose) or "nothing yet",
                 "optimistic for the settings it chose", _rows_of(wild_summary, name)),
        _set_row("in-the-wild-confirm", confirm_n, "nothing (scored once, by the chosen run and the peer)",
                 "the unbiased check outside CelebA", _rows_of(confirm, name)),
    ]
    return pd.DataFrame(rows).set_index("set")


def machine_lines(runs_dir: str | os.PathLike) -> list[str]:
    """The machines the runs were computed on and the load their timings shared, from the run manifests."""
    from gfr.study.hardware import hardware_id

    ok = [r for r in results.records(runs_dir) if r["status"] == "ok"]
    if not ok:
        return []
    machines = sorted({hardware_id(r["hardware"]) for r in ok})
    gpus = sorted({g for r in ok for g in r["hardware"].get("gpus", [])})
    loaded = [r for r in ok if max(r["inference"].get("load_average") or [0]) > r["hardware"]["cores"]]
    kinds = f"one kind of machine ({machines[0]})" if len(machines) == 1 else f"{len(machines)} kinds of machine ({'; '.join(machines)})"
    return [f"Every run was computed on {kinds}, "
            + (f"with a GPU ({', '.join(gpus)})" if gpus else "none with a GPU")
            + f": accuracies reproduce bit for bit only on the same kind of machine (Reproducibility), and every "
            f"timing belongs to that machine. {len(loaded)} of {len(ok)} runs timed their inference with a 1-minute "
            f"load average above the core count (other work shared the CPU): compare timings within a column, "
            f"roughly.",
            f"The original's numbers are one per cell ({len(published.TEST_ACCURACY)} cells, no spread or interval "
            f"published), with inference on an {published.INFERENCE_HARDWARE}: a difference from them mixes the "
            f"departures above with the original's own seed noise, which is unknown."]


def identity_line(shared: set[str] | None, n_test: int) -> str:
    """The identity caveat, with the count of test images whose person is in training (None: not measured)."""
    from gfr.models import face_descriptor

    count = (f"{len(shared)} of {n_test} test images show a person who also has an image in the training split "
             f"(the split is over images, not people; \"Beyond CelebA\" measures both parts and an identity-disjoint "
             f"split)" if shared is not None else "whether test images share a person with training is not measured "
             "here (no identity file)")
    return (f"CelebA's people may be known to the face models: {face_descriptor.PROVENANCE} Within the study, "
            f"{count}.")


@dataclass(frozen=True)
class Notice:
    """A data set's or model's licence notice, as its README states it (the notice is kept with every copy)."""

    name: str
    used_for: str
    notice: str
    key_phrase: str  # a phrase of the notice that the data folder's README must contain (checked where it is here)


NOTICES = (
    Notice("CelebA (celeba-5k: 5,000 of its aligned images, attributes and identities)",
           "training, validation and test", "Liu, Luo, Wang, Tang, \"Deep Learning Face Attributes in the Wild\", "
           "ICCV 2015. The dataset is released for non-commercial research purposes only.",
           "non-commercial research purposes only"),
    Notice("UTKFace (aligned chips in in-the-wild-dev and in-the-wild-confirm)", "measuring only",
           "Zhang, Song, Qi, \"Age Progression/Regression by Conditional Adversarial Autoencoder\", CVPR 2017. For "
           "non-commercial research only.", "UTKFace (Zhang, Song, Qi"),
    Notice("LFW (grayscale copies in in-the-wild-dev and in-the-wild-confirm)", "measuring only",
           "Labeled Faces in the Wild: Huang, Ramesh, Berg, Learned-Miller, 2007. For research.",
           "LFW (Huang, Ramesh, Berg"),
)


CONFIRM_ENV = "GFR_CONFIRM_DIR"  # in-the-wild-confirm (the Makefile's `make confirm`)


def data_readmes(data_dir=None, wild_dir=None, confirm_dir=None) -> dict[str, Path | None]:
    """The README of each data folder (given, else from its environment variable), None where a folder is unknown."""
    from gfr.data.celeba import DATA_ENV
    from gfr.study.wild import WILD_ENV

    folders = {"celeba": data_dir or os.environ.get(DATA_ENV), "in-the-wild-dev": wild_dir or os.environ.get(WILD_ENV),
               "in-the-wild-confirm": confirm_dir or os.environ.get(CONFIRM_ENV)}
    return {name: Path(folder).expanduser() / "README.md" if folder else None for name, folder in folders.items()}


def notices_table(readmes: dict[str, Path | None]) -> pd.DataFrame:
    """The data licence notices, each with whether the given data folders' READMEs (`readmes`: folder name ->
    README path, None where the folder is not here) state it."""
    rows = []
    for n in NOTICES:
        found = [name for name, path in readmes.items() if path is not None and path.is_file()
                 and n.key_phrase in path.read_text(encoding="utf-8", errors="replace")]
        rows.append({"data": n.name, "used for": n.used_for, "notice": n.notice,
                     "stated in the README of": ", ".join(found) or "no README here"})
    return pd.DataFrame(rows).set_index("data")

