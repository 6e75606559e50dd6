"""Markdown tables of the benchmark results (benchmarks/results/*.json), '–' for a field a result file lacks."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pandas as pd

from gfr.report import tables
from gfr.report.tables import DASH

ORDER = ("sweep", "backends", "inference", "scale", "numerics", "ray", "predict")


# ---- reading -------------------------------------------------------------------------------------------------


def load(results_dir: Path, quick: bool = False) -> list[tuple[str, dict]]:
    """(file name, record) of every result file, full runs (or only the --quick ones), in benchmark order."""
    files = [f for f in Path(results_dir).glob("*.json") if f.stem.endswith("-quick") == quick]
    records = []
    for f in files:
        record = json.loads(f.read_text(encoding="utf-8"))
        if isinstance(record, dict):
            records.append((f.name, record))
    kind = lambda name, r: r.get("benchmark") or name.split("-")[0]  # noqa: E731
    return sorted(records, key=lambda fr: (ORDER.index(kind(*fr)) if kind(*fr) in ORDER else len(ORDER), fr[0]))


def get(record, *keys):
    """record[k1][k2]... or None where any step is missing (or not a container)."""
    for key in keys:
        if isinstance(record, dict):
            record = record.get(key)
        elif isinstance(record, (list, tuple)) and isinstance(key, int) and -len(record) <= key < len(record):
            record = record[key]
        else:
            return None
    return record


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x, fmt: str = ".2f", suffix: str = "") -> str:
    """A number formatted (with a unit suffix), or '–'."""
    return f"{x:{fmt}}{suffix}" if _number(x) else DASH


def text(x) -> str:
    """A value as table text ('|' escaped), or '–'."""
    if x is None or x == "" or x == [] or x == {}:
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (list, tuple)):
        return ", ".join(map(text, x))
    return str(x).replace("|", "\\|")


def size(x) -> str:
    """An image size [h, w] as 'hxw', or '–'."""
    return f"{x[0]}x{x[1]}" if isinstance(x, (list, tuple)) and len(x) == 2 and all(_number(v) for v in x) else DASH


def spread(values, fmt: str = ".1f", suffix: str = "") -> str:
    """'min–max' of some numbers, or '–'."""
    values = _finite(values)
    return f"{min(values):{fmt}}–{max(values):{fmt}}{suffix}" if values else DASH


def runs(values, fmt: str = ".1f") -> str:
    """Every repetition, in the order run ('a, b, c'), or '–'."""
    values = values if isinstance(values, list) else []
    return ", ".join(num(v, fmt) for v in values) if values else DASH


def _finite(values) -> list:
    return [v for v in values if _number(v)] if isinstance(values, list) else []


def median(values):
    return statistics.median(_finite(values)) if _finite(values) else None


def lowest(values):
    return min(_finite(values)) if _finite(values) else None


def highest(values):
    return max(_finite(values)) if _finite(values) else None


def geomean(values):
    values = [v for v in values if _number(v) and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def table(header: list[str], rows: list[list[str]]) -> str:
    """Rows of table text under `header`, as a markdown table (gfr.report.tables.markdown)."""
    return tables.markdown(pd.DataFrame(rows, columns=header), index=False)


def source(name: str, record: dict) -> str:
    """Where a block's numbers come from: file, hardware, when the run finished."""
    return (f"From `results/{name}` ({text(record.get('hardware_id'))}; finished {text(record.get('finished_utc'))}, "
            f"run time {num(_minutes(record.get('runtime_s')), '.1f', ' min')}).")


def _minutes(seconds):
    return seconds / 60 if _number(seconds) else None


def _of(records, benchmark: str) -> list[tuple[str, dict]]:
    return [(n, r) for n, r in records if (r.get("benchmark") or n.split("-")[0]) == benchmark]


def _missing(benchmark: str) -> str:
    return (f"_No result file for {benchmark} (`benchmarks/results/{benchmark}-<device>.json`): "
            f"run `benchmarks/bench_{benchmark}.py`._")


# ---- ratios --------------------------------------------------------------------------------------------------


def _rss(r: dict) -> bool:
    return "RSS" in str(r.get("name", ""))


def goal(r: dict) -> str:
    """A ratio's target as text ('>= 10.0x', '1 ± 10%', '<= 2.0 GiB'), or '–'."""
    target, kind = r.get("target"), r.get("target_kind")
    if not _number(target) or kind not in (">=", "<=", "within"):
        return DASH
    if kind == "within":
        return f"1 ± {target:.0%}"
    return f"{kind} {target}{' GiB' if _rss(r) else 'x'}"


def value(r: dict) -> str:
    """A ratio's measured value as text ('10.08x', '1.02 GiB'), or '–'."""
    return num(r.get("value"), ".2f", " GiB" if _rss(r) else "x")


def repeat_range(record: dict) -> list[float] | None:
    """Per-repeat values of a benchmark's headline ratio where the result has them (each repeat's pair, run back to back)."""
    per_repeat = record.get("ratio_per_repeat")
    if isinstance(per_repeat, list) and per_repeat:
        return per_repeat
    if record.get("benchmark") == "inference":
        e2e, floor = get(record, "timings", "end_to_end", "runs_s"), get(record, "timings", "floor", "runs_s")
        if isinstance(e2e, list) and isinstance(floor, list) and e2e and len(e2e) == len(floor):
            return [a / b for a, b in zip(e2e, floor) if _number(a) and _number(b) and b]
    return None


def _ratio_rows(records, with_run: bool) -> list[list[str]]:
    rows = []
    for name, d in records:
        ratios = d.get("ratios") or []
        for i, r in enumerate(ratios if isinstance(ratios, list) else []):
            per_repeat = repeat_range(d) if i == 0 else None
            row = [f"{text(d.get('benchmark'))} ({text(d.get('device'))})", text(r.get("name")), value(r),
                   spread(per_repeat, ".2f", "x") if per_repeat else DASH, text(get(d, "config", "repeats")),
                   goal(r), f"**{r['verdict']}**" if r.get("verdict") else DASH]
            if with_run:
                row += [num(_minutes(d.get("runtime_s")), ".1f", " min"), num(get(d, "load_average_at_end", 0), ".1f")]
            rows.append(row + [text(d.get("hardware_id"))])
    return rows


def results_table(records) -> str:
    """Every ratio of every result against its target, with its repeats, run time, load and hardware."""
    header = ["benchmark", "ratio", "measured", "per-repeat range", "repeats", "target", "verdict", "run time",
              "load at end", "hardware"]
    rows = _ratio_rows(records, with_run=True)
    return table(header, rows) if rows else "_No benchmark results._"


# ---- blocks --------------------------------------------------------------------------------------------------


def results_block(records) -> str:
    total = [d.get("runtime_s") for _, d in records]
    known = bool(total) and all(map(_number, total))
    lines = [results_table(records), ""]
    lines.append(f"{len(records)} result file(s); run time {num(_minutes(sum(total)) if known else None, '.1f', ' min')} "
                 "in all (each file's own wall time; a one-off data preparation is not included). Measured is the ratio "
                 "of the medians; per-repeat range is the spread of the ratio over the repeats, where the result has it. "
                 "Load at end: the 1-minute load average when the run finished.")
    return "\n".join(lines)


def runs_block(records) -> str:
    """The machine and software of each result file, when it finished and the load then."""
    header = ["file", "cpu", "cores", "memory", "gpus", "python", "keras", "backend", "tensorflow", "jax", "torch",
              "finished (UTC)", "run time", "load at start (1 min)", "load at end (1/5/15 min)"]
    rows = []
    for name, d in records:
        h = d.get("hardware") or {}
        load = d.get("load_average_at_end")
        rows.append([f"`{name}`", text(h.get("cpu")), text(h.get("cores")), num(h.get("memory_gib"), ".1f", " GiB"),
                     text(h.get("gpus")) if h.get("gpus") else ("none" if "gpus" in h else DASH), text(h.get("python")),
                     text(h.get("keras")), text(h.get("keras_backend")), text(h.get("tensorflow")), text(h.get("jax")),
                     text(h.get("torch")), text(d.get("finished_utc")), num(_minutes(d.get("runtime_s")), ".1f", " min"),
                     num(get(d, "load_average_at_start", 0), ".1f"),
                     " / ".join(num(x, ".1f") for x in load) if isinstance(load, list) and load else DASH])
    return table(header, rows) if rows else "_No benchmark results._"


def _ratio_lines(d: dict) -> list[str]:
    out = []
    for r in d.get("ratios") if isinstance(d.get("ratios"), list) else []:
        out.append(f"- {text(r.get('name'))}: **{value(r)}** (target {goal(r)}): **{text(r.get('verdict'))}**")
    return out


def sweep_block(records) -> str:
    found = _of(records, "sweep")
    if not found:
        return _missing("sweep")
    parts = []
    for name, d in found:
        c = d.get("config") or {}
        split = c.get("split_sizes") or {}
        t = d.get("timings") or {}
        cached, original = get(d, "detail", "cached") or [], get(d, "detail", "original") or []
        parts.append(source(name, d))
        parts.append("")
        parts.append(
            f"Configuration: {text(c.get('images'))} images, {text(c.get('data'))}, train/val/test "
            f"{text(split.get('train'))}/{text(split.get('val'))}/{text(split.get('test'))}; {size(c.get('image_size'))}; "
            f"{text(c.get('epochs'))} epochs; {text(c.get('backbone'))} with {text(c.get('weights'))}; "
            f"{text(c.get('heads_per_side'))} head(s) per side; head batch {text(c.get('head_batch_size'))}, feature batch "
            f"{text(c.get('feature_batch_size'))}; {text(c.get('repeats'))} alternating repeats; loader "
            f"{text(c.get('loader'))}, {text(c.get('loader_workers'))} decode threads.")
        parts.append("")

        def accuracy(rows):
            return spread([a for row in rows for a in (get(row, "test_accuracy") or [])], ".3f")

        parts.append(table(
            ["side", "median", "min", "max", "every repeat (s)", "test accuracy (min–max)"],
            [[label, num(get(t, side, "median_s"), ".1f", " s"), num(lowest(get(t, side, "runs_s")), ".1f", " s"),
              num(highest(get(t, side, "runs_s")), ".1f", " s"), runs(get(t, side, "runs_s")), accuracy(rows)]
             for side, label, rows in (("cached", "cached (features once + heads)", cached),
                                       ("original", "original (fit on images every epoch)", original))]))
        parts.append("")
        features, heads = (median([get(r, key) for r in cached]) for key in ("features_s", "heads_s"))
        per_repeat = d.get("ratio_per_repeat")
        parts.append(f"Cached side, median per stage: features {num(features, '.1f', ' s')} (model build and extraction "
                     f"into an empty cache), heads {num(heads, '.1f', ' s')}. Per-repeat ratio (each repeat's original over "
                     f"its cached): {runs(per_repeat, '.2f')}; range {spread(per_repeat, '.2f', 'x')}.")
        parts.extend(["", *_ratio_lines(d)])
        real = d.get("real_sweep")
        if isinstance(real, dict):
            totals, fractions = real.get("stage_totals_s") or {}, real.get("stage_fractions") or {}
            statuses: dict[str, int] = {}
            for row in real.get("runs") or []:
                statuses[text(get(row, "status"))] = statuses.get(text(get(row, "status")), 0) + 1
            parts.append("")
            parts.append(f"Finished study runs summarised with `--manifests`: {len(real.get('runs') or [])} manifest(s) ("
                         + (", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or DASH) + ").")
            parts.append("")
            parts.append(table(["stage", "wall time (all runs)", "share"],
                               [[text(s), num(totals[s], ".1f", " s"), num(fractions.get(s), ".1%")] for s in sorted(totals)]
                               + [["total", num(real.get("total_s"), ".1f", " s"), num(1.0 if totals else None, ".0%")]]))
        parts.append("")
    return "\n".join(parts).rstrip()


def backends_block(records) -> str:
    found = _of(records, "backends")
    if not found:
        return _missing("backends")
    parts = []
    for name, d in found:
        c = d.get("config") or {}
        backends = [b for b in (c.get("backends") or []) if isinstance(b, str)]
        others = [b for b in backends if b != "tensorflow"]
        parts += [source(name, d), "",
                  f"Configuration: {text(c.get('images_per_rep'))} images per repeat, {text(c.get('repeats'))} repeats "
                  f"(backends alternating, rotating order), batch {text(c.get('batch_size'))}, {text(c.get('weights'))}, "
                  f"input {text(c.get('input_shape'))}, {text(c.get('data'))}. Throughput in img/s (images over the median "
                  "repeat); slowest / fastest: the largest ratio of a backend's slowest to its fastest repeat in the cell.", ""]
        rows, vs = [], {b: [] for b in others}
        for cell in d.get("cells") or []:
            ips, rel = cell.get("images_per_s") or {}, cell.get("speed_vs_tensorflow") or {}
            for b in others:
                vs[b].append(rel.get(b))
            worst = [max(v) / min(v) for v in (cell.get("runs_s") or {}).values()
                     if isinstance(v, list) and v and all(_number(x) and x > 0 for x in v)]
            rows.append([text(cell.get("backbone")), size(cell.get("size"))] + [num(ips.get(b), ".1f") for b in backends]
                        + [num(rel.get(b), ".2f", "x") for b in others] + [num(max(worst) if worst else None, ".1f", "x")])
        parts.append(table(["backbone", "input"] + backends + [f"{b} / tensorflow" for b in others] + ["slowest / fastest"], rows))
        parts.append("")
        for b in others:
            parts.append(f"- {b} / tensorflow over all cells: geometric mean {num(geomean(vs[b]), '.2f', 'x')}, "
                         f"range {spread(vs[b], '.2f', 'x')}.")
        parts.extend(_ratio_lines(d))
        parts.append("")
    return "\n".join(parts).rstrip()


def inference_block(records) -> str:
    found = _of(records, "inference")
    if not found:
        return _missing("inference")
    parts = []
    for name, d in found:
        c, t, lat = d.get("config") or {}, d.get("timings") or {}, d.get("latency") or {}
        ips = d.get("images_per_s") or {}
        loaded = lat.get("with_model_load_median_s") or {}
        parts += [source(name, d), "",
                  f"Configuration: {text(c.get('images'))} images ({text(c.get('data'))}), {text(c.get('backbone'))} at "
                  f"{size(c.get('image_size'))} ({text(c.get('input_shape'))} input), {text(c.get('weights'))} + a head, "
                  f"batch {text(c.get('batch_size'))}, {text(c.get('repeats'))} alternating repeats; loader workers "
                  f"{text(c.get('workers')) if c.get('workers') is not None else 'default'}, prefetch "
                  f"{text(c.get('prefetch')) if c.get('prefetch') is not None else 'default'}.", ""]
        parts.append(table(["side", "median", "every repeat (s)", "img/s"],
                           [["end to end (from JPEG files)", num(get(t, "end_to_end", "median_s"), ".1f", " s"),
                             runs(get(t, "end_to_end", "runs_s")), num(ips.get("end_to_end"), ".1f")],
                            ["floor (decoded, preprocessed in memory)", num(get(t, "floor", "median_s"), ".1f", " s"),
                             runs(get(t, "floor", "runs_s")), num(ips.get("floor"), ".1f")]]))
        parts.append("")
        parts.append(f"- Per-repeat ratio (end to end over floor): {runs(repeat_range(d), '.2f')}; largest difference of the "
                     f"probabilities between the two sides: {num(d.get('max_abs_probability_difference'), '.2g')}.")
        parts.append(f"- Single image, model loaded: median {num(_ms(lat.get('model_loaded_median_s')), '.0f', ' ms')} over "
                     f"{text(len(lat.get('model_loaded_s') or []) or None)} predict calls.")
        parts.append(f"- Single image in a fresh process, model loading included: median over "
                     f"{text(len(lat.get('with_model_load') or []) or None)} processes "
                     f"{num(loaded.get('process_wall_s'), '.1f', ' s')} (imports {num(loaded.get('import_s'), '.1f', ' s')}, "
                     f"weights and head load {num(loaded.get('load_s'), '.1f', ' s')}, first prediction with tracing "
                     f"{num(loaded.get('first_predict_s'), '.1f', ' s')}, the rest interpreter start).")
        parts.extend(_ratio_lines(d))
        parts.append("")
    return "\n".join(parts).rstrip()


def _ms(seconds):
    return seconds * 1000 if _number(seconds) else None


def scale_block(records) -> str:
    found = _of(records, "scale")
    if not found:
        return _missing("scale")
    parts = []
    for name, d in found:
        c, ds = d.get("config") or {}, d.get("dataset") or {}
        parts += [source(name, d), "",
                  f"Configuration: {text(c.get('backbone'))}, {text(c.get('weights'))}, {size(c.get('image_size'))}, batch "
                  f"{text(c.get('batch_size'))}; synthetic dataset of {text(ds.get('images'))} images in "
                  f"`{text(c.get('root'))}`; runs in the order {text(c.get('order'))}, each in a fresh process; "
                  f"throughput: {text(c.get('throughput'))}.", ""]
        rows = []
        for i, r in enumerate(d.get("runs") or [], 1):
            rows.append([str(i), text(r.get("images")), num(r.get("images_per_s"), ".1f"), spread(r.get("segment_images_per_s"), ".0f"),
                         num(r.get("extract_s"), ".1f", " s"), num(r.get("first_batches_s"), ".1f", " s"),
                         num(r.get("last_batch_s"), ".2f", " s"), num(r.get("VmHWM_mib"), ".0f", " MiB"),
                         num(r.get("cache_bytes") / 2**20 if _number(r.get("cache_bytes")) else None, ".0f", " MiB"),
                         text(r.get("cache"))])
        parts.append(table(["run", "images", "img/s", "img/s per segment (min–max)", "extract", "first batches",
                            "last batch", "peak RSS (VmHWM)", "cache file", "cache"], rows))
        parts.append("")
        parts.extend(_ratio_lines(d))
        parts.append("")
    return "\n".join(parts).rstrip()


def numerics_block(records) -> str:
    found = _of(records, "numerics")
    if not found:
        return _missing("numerics")
    parts = []
    for name, d in found:
        c = d.get("config") or d  # bench_numerics writes its configuration at the top level
        parts += [source(name, d), "",
                  f"Configuration: {text(c.get('backbone'))}, {text(c.get('images'))} images ({text(c.get('data'))}) at "
                  f"{size(c.get('size') or c.get('image_size'))}, {text(c.get('repeats'))} alternating repeats, each setting "
                  "in a fresh process.", ""]
        rows = []
        for setting, s in (d.get("settings") or {}).items():
            env = s.get("env")
            rows.append([f"`{setting}`", ", ".join(f"`{k}={v}`" for k, v in env.items()) if isinstance(env, dict) and env else
                         ("default" if isinstance(env, dict) else DASH),
                         text(s.get("identical_to_onednn_native")), text(s.get("identical_to_eigen")),
                         num(s.get("max_abs_diff_vs_onednn_native"), ".2e"), num(s.get("max_abs_diff_vs_eigen"), ".2e"),
                         num(s.get("median_s"), ".2f", " s"), num(s.get("time_ratio_vs_onednn_native"), ".2f", "x"),
                         f"`{s['sha256'][:12]}`" if isinstance(s.get("sha256"), str) else DASH])
        parts.append(table(["setting", "environment", "identical to onednn-native", "identical to eigen",
                            "max abs diff vs onednn-native", "max abs diff vs eigen", "median time",
                            "time / onednn-native", "features SHA-256 (start)"], rows) if rows else f"_No settings in `{name}`._")
        parts.extend(_ratio_lines(d))
        parts.append("")
    return "\n".join(parts).rstrip()


def predict_block(records) -> str:
    """`gfr predict`: peak memory over N and 4N images, and throughput against the peer on the same photos."""
    found = _of(records, "predict")
    if not found:
        return _missing("predict")
    parts = []
    for name, d in found:
        c, m, t = d.get("config") or {}, d.get("memory") or {}, d.get("throughput") or {}
        parts += [source(name, d), ""]
        if m:
            sizes = m.get("sizes") or {}
            parts += [f"Peak memory: `gfr predict --run {text(c.get('run'))} --quiet --csv OUT FOLDER` in a fresh process "
                      f"over {text(sizes.get('N'))} and {text(sizes.get('4N'))} images ({text(m.get('data'))}), batch "
                      f"{text(c.get('batch_size'))}, order {text(m.get('order'))}.", ""]
            rows = [[str(i), text(r.get("size")), text(r.get("images")), text(r.get("rows")),
                     num(r.get("VmHWM_mib"), ".0f", " MiB"), num(r.get("wall_s"), ".1f", " s")]
                    for i, r in enumerate(m.get("runs") or [], 1)]
            parts.append(table(["process", "size", "images", "CSV rows", "peak RSS (VmHWM)", "wall time"], rows))
            parts += ["", f"- Peak 4N / N of each repeat: {runs(d.get('ratio_per_repeat'), '.3f')}.", ""]
        sets = t.get("sets") or ({"photos": t} if t else {})  # earlier results: one set, no "sets"
        if t:
            parts += [f"Throughput on the same CPU, in one process (models loaded once, a warm-up first), "
                      f"{text(c.get('repeats'))} repeats, sides in rotating order; peer "
                      + ", ".join(f"{k} {text(v)}" for k, v in sorted((t.get("peer") or {}).items())) + ".", ""]
        for set_name, s in sets.items():
            ips, per_repeat = s.get("images_per_s") or {}, s.get("ratio_per_repeat") or {}
            parts += [f"{set_name}: {text(s.get('images'))} photos ({text(s.get('data'))}).", ""]
            rows = []
            for side, v in ips.items():
                v = v if isinstance(v, dict) else {}
                rel = per_repeat.get(f"{side} / peer")
                rows.append([text(side), num(v.get("median"), ".1f"), spread([v.get("min"), v.get("max")], ".1f"),
                             runs(v.get("runs"), ".1f"), runs(rel, ".3f") if rel else DASH])
            parts.append(table(["side", "img/s (median)", "min–max", "every repeat", "/ peer, every repeat"], rows))
            parts.append("")
        parts.extend(_ratio_lines(d))
        parts.append(f"- Load average (1 min) at start {num(get(d, 'load_average_at_start', 0), '.1f')}, at end "
                     f"{num(get(d, 'load_average_at_end', 0), '.1f')} on {text(get(d, 'hardware', 'cores'))} cores.")
        parts.append("")
    return "\n".join(parts).rstrip()


RAY_SIDES = {"serial": "serial (one process)", "ray-2": "Ray, 2 nodes (2 workers)",
             "ray-1": "Ray, 1 worker (2nd node held)"}
RAY_WORKLOADS = {"sweep": "sweep", "extraction": "extraction", "sweep+extraction": "both"}


def ray_block(records) -> str:
    """The Ray benchmark: each side's times on each workload, the ratio to serial, identity of outputs, the killed worker."""
    found = _of(records, "ray")
    if not found:
        return _missing("ray")
    parts = []
    for name, d in found:
        c, t = d.get("config") or {}, d.get("timings") or {}
        sw, ex = c.get("sweep") or {}, c.get("extraction") or {}
        parts += [source(name, d), "",
                  f"Cluster: {text(c.get('nodes'))} Ray nodes of {text(c.get('cpus_per_node'))} CPU each on "
                  f"{text(c.get('address'))} (`ray start --head`, then a node joining it). Sweep: {text(sw.get('runs'))} "
                  f"on {text(sw.get('images'))} {text(sw.get('data'))} images. Extraction: {text(ex.get('images'))} "
                  f"{text(ex.get('data'))} images, {text(ex.get('backbone'))}, weights {text(ex.get('weights'))}, "
                  f"{size(ex.get('image_size'))}, batch {text(ex.get('batch_size'))}. {text(c.get('repeats'))} alternating "
                  f"repeats ({text(c.get('order'))}); time: {text(c.get('time'))}.", ""]
        rows = []
        for workload, label in RAY_WORKLOADS.items():
            serial = get(t, workload, "serial", "median_s")
            for side, side_label in RAY_SIDES.items():
                times = get(t, workload, side) or {}
                same = get(d, "identical_to_serial", workload, side)
                if side == "serial":
                    same = get(d, "serial_outputs_same_every_repeat", workload)
                rows.append([label, side_label, num(times.get("median_s"), ".1f", " s"),
                             num(lowest(times.get("runs_s")), ".1f", " s"), num(highest(times.get("runs_s")), ".1f", " s"),
                             runs(times.get("runs_s")),
                             num(times.get("median_s") / serial if _number(times.get("median_s")) and _number(serial)
                                 and serial else None, ".2f", "x"),
                             text(same) if isinstance(same, bool) else DASH])
        parts.append(table(["work", "side", "median", "min", "max", "every repeat (s)", "median / serial",
                            "outputs identical to serial (serial: same every repeat)"], rows))
        parts.append("")
        parts.append(f"- Per-repeat ratio, both workloads, Ray 1 worker / serial: {runs(d.get('ratio_per_repeat'), '.2f')}; "
                     f"Ray 2 nodes / serial: {runs(d.get('ratio_per_repeat_ray2'), '.2f')}.")
        loads = [f"{text(r.get('workload'))} {text(r.get('side'))} {num(get(r, 'load_average_at_start', 0), '.1f')}"
                 for r in d.get("records") or [] if isinstance(r, dict)]
        parts.append(f"- Load (1-minute average, {text(get(d, 'hardware', 'cores'))} cores) when each side started, in the "
                     f"order run: {', '.join(loads) or DASH}. Other people's jobs shared the CPU: the ratios are "
                     "side by side, but a load this high and this changeable makes them rough.")
        kill = d.get("kill") or {}
        killed = kill.get("killed") or {}
        parts.append(f"- A Ray worker killed mid-extraction (SIGKILL of the process computing a shard, "
                     f"{num(killed.get('at_s'), '.0f', ' s')} in, after {text(killed.get('shards_done_before'))} finished "
                     f"shards): the extraction finished in {num(kill.get('wall_s'), '.1f', ' s')} (Ray retried the task); "
                     f"cache file identical to serial: {text(kill.get('identical_to_serial'))}." if kill else
                     "- No killed-worker run in this result.")
        parts.extend(_ratio_lines(d))
        parts.append("")
    return "\n".join(parts).rstrip()


_BLOCKS = {"results": results_block, "runs": runs_block, "sweep": sweep_block, "backends": backends_block,
           "inference": inference_block, "scale": scale_block, "numerics": numerics_block, "ray": ray_block,
           "predict": predict_block}
BLOCKS = tuple(_BLOCKS)  # the block names of benchmarks/README.md, in the document's order


def readme_blocks(results_dir: Path) -> dict[str, str]:
    """Every generated block of benchmarks/README.md, by name, from the full-run result files."""
    records = load(results_dir)
    return {name: block(records) for name, block in _BLOCKS.items()}


def scaling_block(results_dir: Path) -> str:
    """README.md's Scaling out figures: the Ray benchmark's block, from the full-run result files."""
    return ray_block(load(results_dir))


def performance_block(results_dir: Path) -> str:
    """README.md's Performance table: every ratio against its target, with its verdict and hardware."""
    rows = _ratio_rows(load(results_dir), with_run=False)
    header = ["benchmark", "ratio", "measured", "per-repeat range", "repeats", "target", "verdict", "hardware"]
    return table(header, rows) if rows else "_No benchmark results._"
