"""What each run and each report product is made from, by content (named parts, each hashed, and one fingerprint),
and the stamps that tell make which of them are stale.

A run (or product) is stale when the fingerprint of its inputs today differs from the one recorded with it (a run's
manifest; `reports/inputs.json` for the committed products), when it is missing, or when something it is made from
is stale. File times play no part, so a fresh clone with the same data and weights rebuilds nothing.
"""

from __future__ import annotations

import fcntl
import functools
import glob
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from gfr import files
from gfr.data import celeba, split
from gfr.errors import GfrError, WeightsUnavailable
from gfr.models import backbones
from gfr.params import OVERRIDES, Params, load_params
from gfr.paths import PROJECT_ROOT, REPORTS, RUNS, SPLIT_MANIFEST
from gfr.study import artefacts
from gfr.study.registry import TRAIN_NOTEBOOK, RunId, expected_runs, source_files

RECORDED_AT_RUN = "at run time"
ADOPTED = "adopted"
RECORDS = REPORTS / "inputs.json"  # committed products -> the fingerprint of their inputs when they were built
OLD_NS = 1_000_000_000  # a current stamp's mtime (1970-01-01T00:00:01Z): older than anything make compares it with
MANIFEST_INPUT_KEYS = ("inputs", "inputs_recorded")  # a run manifest's record of its inputs, not one of its outputs

# Data parts a product can name besides CelebA's files (celeba.ATTR_FILE, PARTITION_FILE, IDENTITY_FILE)
SPLIT_IMAGES = "images of the split"   # the split manifest's images: names + content
IMAGE_FOLDER = "image folder"          # every file of img_align_celeba/ (the split checks them all)
WILD_FOLDER = "in-the-wild folder"     # $GFR_WILD_DIR: labels.csv and every image


@dataclass(frozen=True)
class Product:
    """A file make builds from the study's outputs; what it is made from, by content."""

    target: str                    # relative to the project root
    code: tuple = ()               # gfr module names, or notebooks (Path): each with every gfr module it imports
    files: tuple[str, ...] = ()    # globs relative to the project root
    data: tuple[str, ...] = ()     # CelebA file names, SPLIT_IMAGES, IMAGE_FOLDER, WILD_FOLDER
    runs: bool = False             # made from every saved run: stale while any run of the study is
    after: tuple[str, ...] = ()    # products whose staleness makes this one stale (make builds them first)
    uses: tuple[str, ...] = ()     # uncommitted caches: their inputs' fingerprint is a part; built only when needed
    cache: bool = False            # not committed: its fingerprint is recorded in the target itself


NOTEBOOK_PARAMS = ("params/*.yaml",)
COLLECTED = ("reports/timing.json", "reports/last-epoch.csv")  # what results.collect reads beside the runs
COLLECTED_BY = ("timing", "last_epoch")  # the products that make them: every reader of the table comes after them
PRODUCTS = {
    "timing": Product("reports/timing.json", code=("gfr.study.timing_pass",), runs=True),
    "last_epoch": Product("reports/last-epoch.csv", code=("gfr.study.last_epoch",), runs=True),
    "split": Product(str(SPLIT_MANIFEST), code=("gfr.data.split", "gfr.params"),
                     files=("params/base.yaml", "params/it1.yaml"),
                     data=(celeba.ATTR_FILE, celeba.PARTITION_FILE, IMAGE_FOLDER)),
    "01_data": Product("reports/01_data.ipynb", code=(Path("notebooks/01_data.py"),),
                       files=("reports/split*.csv", *NOTEBOOK_PARAMS), data=(SPLIT_IMAGES,), after=("split",)),
    "results": Product("reports/results.csv", code=("gfr.study.results",), files=(*COLLECTED, *NOTEBOOK_PARAMS),
                       runs=True, after=COLLECTED_BY),
    "00_results": Product("reports/00_results.ipynb", code=(Path("notebooks/00_results.py"),),
                          files=(*COLLECTED, "reports/peer/*", "reports/verify.csv", "reports/wild-confirm.json",
                                 "benchmarks/results/predict-cpu.json", *NOTEBOOK_PARAMS), runs=True, after=COLLECTED_BY),
    "03_evaluate": Product("reports/03_evaluate.ipynb", code=(Path("notebooks/03_evaluate.py"),),
                           files=(*COLLECTED, "reports/split*.csv", "reports/peer/*", *NOTEBOOK_PARAMS),
                           data=(celeba.ATTR_FILE,), runs=True, after=COLLECTED_BY),
    "04_compare": Product("reports/04_compare.ipynb", code=(Path("notebooks/04_compare.py"),),
                          files=(*COLLECTED, "reports/peer/*", "reports/verify.csv", *NOTEBOOK_PARAMS), runs=True,
                          after=COLLECTED_BY),
    "wild": Product("reports/wild/.done", code=("gfr.study.wild", "gfr.study.peer"), data=(WILD_FOLDER,), runs=True,
                    cache=True),
    "05_beyond_celeba": Product("reports/05_beyond_celeba.ipynb", code=(Path("notebooks/05_beyond_celeba.py"),),
                                files=(*COLLECTED, "reports/split*.csv", "reports/peer/*", "reports/face-*.json",
                                       "reports/descriptor-port.json", "reports/flip-averaging.json", "reports/wild-*.json",
                                       *NOTEBOOK_PARAMS),
                                data=(celeba.IDENTITY_FILE, SPLIT_IMAGES), runs=True, after=COLLECTED_BY, uses=("wild",)),
    "report": Product("reports/report.html", code=("gfr.report.assemble",), files=("reports/0*.ipynb",), runs=True,
                      after=("00_results", "01_data", "03_evaluate", "04_compare", "05_beyond_celeba")),
}


@functools.lru_cache(maxsize=None)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return files.file_sha256(path)


def file_digest(path: str | os.PathLike) -> str:
    """A file's SHA-256, hashed once per process while its size and mtime stay the same."""
    stat = os.stat(path)
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


def _name(path: str | os.PathLike) -> str:
    """A path as the parts name it: relative to the project root when inside it (the same in every clone)."""
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def files_part(paths) -> dict[str, str]:
    """{path (project-relative): SHA-256 of its content} of some files."""
    return {_name(p): file_digest(p) for p in paths}


def images_part(folder: Path, names) -> dict:
    """The number of images and one hash over their names and contents, in the given order."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name} {file_digest(folder / name)}\n".encode())
    return {"images": len(names), "sha256": digest.hexdigest()}


def params_part(params: Params) -> dict:
    """The params files by content; with overrides (not in any file: `gfr run --epochs`...), the values they gave."""
    found = files_part(s for s in params.sources if s != OVERRIDES)
    return {**found, "overrides: effective values": params.as_dict()} if OVERRIDES in params.sources else found


def weights_part(weights: backbones.Weights | None, reason: str = "") -> dict:
    """The weights a run uses, by content; or why it has none (a skipped run is an outcome of its inputs too)."""
    return {"sha256": weights.sha256} if weights is not None else {"unavailable": reason}


def fingerprint(parts: dict) -> dict:
    """The recorded form of some inputs: the parts and one SHA-256 over them."""
    return {"fingerprint": files.object_sha256(parts), "parts": parts}


def run_inputs(params: Params, split_manifest_sha256: str, images: dict, weights: dict) -> dict:
    """A run's inputs (every number of a run follows from them, on a given machine and environment): its params
    files, the train notebook and the gfr sources it executes, the split manifest, the weights (`weights_part`)
    and the images of the split (`images_part`; the labels come from the split manifest)."""
    return fingerprint({
        "params": params_part(params),
        "code": files_part(PROJECT_ROOT / p for p in [TRAIN_NOTEBOOK, *source_files()]),
        "split_manifest": split_manifest_sha256,
        "weights": weights,
        "data": images,
    })


def _unavailable(why: str) -> dict:
    return {"unavailable": why}


class Today:
    """Today's inputs of the study's runs and products, each computed once (weights, images, run outputs)."""

    def __init__(self, root: str | os.PathLike = PROJECT_ROOT):
        self.root = Path(root)
        self._weights, self._runs, self._products = {}, {}, {}

    def weights(self, backbone: str, spec: str) -> dict:
        if (backbone, spec) not in self._weights:
            try:
                found = backbones.resolve_weights(backbones.get(backbone), spec)
                self._weights[backbone, spec] = weights_part(found)
            except WeightsUnavailable as exc:
                self._weights[backbone, spec] = weights_part(None, str(exc))
        return self._weights[backbone, spec]

    @functools.cached_property
    def split_images(self) -> dict:
        try:
            ids = split.read_manifest(self.root / SPLIT_MANIFEST).image_id
            return images_part(celeba.data_dir() / celeba.IMAGES_DIR, list(ids))
        except (GfrError, OSError) as exc:
            return _unavailable(str(exc))

    def run(self, run: RunId) -> dict:
        """A run's inputs as the train notebook would record them now (its default parameters)."""
        if run not in self._runs:
            params = load_params(run.iteration)
            manifest = self.root / SPLIT_MANIFEST
            self._runs[run] = run_inputs(params, split.manifest_hash(manifest) if manifest.is_file() else "absent",
                                         self.split_images, self.weights(run.backbone, params.weights))
        return self._runs[run]

    def data(self, name: str) -> dict | str:
        if name == SPLIT_IMAGES:
            return self.split_images
        try:
            if name == WILD_FOLDER:
                from gfr.study import wild

                root = wild.wild_dir()
                folder = root / wild.IMAGES
                images = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
                return {wild.LABELS: file_digest(root / wild.LABELS), **images_part(folder, images)}
            root = celeba.data_dir()
            if name == IMAGE_FOLDER:
                folder = root / celeba.IMAGES_DIR
                return images_part(folder, sorted(p.name for p in folder.iterdir() if p.is_file()))
            return file_digest(root / name) if (root / name).is_file() else "absent"
        except (GfrError, OSError) as exc:
            return _unavailable(str(exc))

    @functools.cached_property
    def run_outputs(self) -> dict[str, str]:
        """{run folder name: one hash over its saved files and executed notebook} of every saved run (a manifest's
        record of its inputs left out; a fine-tuned weights file left out: often not committed, and made with the
        rest of the run, whose manifest then changes)."""
        found = {}
        for manifest in sorted((self.root / RUNS).glob(f"*/{artefacts.MANIFEST}")):
            folder, parts = manifest.parent, {}
            for path in sorted(folder.iterdir()):
                if path.name == artefacts.FINETUNED_FILE or path.name.startswith(".") or not path.is_file():
                    continue
                if path.name == artefacts.MANIFEST:
                    record = json.loads(path.read_text())
                    parts[path.name] = files.object_sha256({k: v for k, v in record.items()
                                                            if k not in MANIFEST_INPUT_KEYS})
                else:
                    parts[path.name] = file_digest(path)
            notebook = folder.with_suffix(".ipynb")
            if notebook.is_file():
                parts[notebook.name] = file_digest(notebook)
            found[folder.name] = files.object_sha256(parts)
        return found

    def product(self, name: str) -> dict:
        """A product's inputs today."""
        if name not in self._products:
            p = PRODUCTS[name]
            matched = sorted({Path(m) for pattern in p.files for m in glob.glob(str(self.root / pattern))
                              if Path(m).is_file() and not m.endswith(artefacts.FAILED_SUFFIX)})
            parts = {
                "code": files_part(PROJECT_ROOT / s for s in source_files(*p.code)),
                "files": files_part(matched),
                "data": {d: self.data(d) for d in p.data},
                "runs": self.run_outputs if p.runs else {},
                "uses": {u: self.product(u)["fingerprint"] for u in p.uses},
            }
            self._products[name] = fingerprint({k: v for k, v in parts.items() if v})
        return self._products[name]


def read_records(root: str | os.PathLike = PROJECT_ROOT) -> dict:
    """The committed products' recorded inputs (reports/inputs.json); empty if none was recorded yet."""
    path = Path(root) / RECORDS
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GfrError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None


def _recorded(root: Path, name: str, records: dict) -> str | None:
    product = PRODUCTS[name]
    target = root / product.target
    if product.cache:
        return target.read_text().strip() if target.is_file() else None
    return records.get(name, {}).get("fingerprint") if target.is_file() else None


def _run_recorded(root: Path, run: RunId) -> str | None:
    manifest = root / RUNS / run.name / artefacts.MANIFEST
    if not (manifest.is_file() and (root / RUNS / f"{run.name}.ipynb").is_file()):
        return None
    return json.loads(manifest.read_text()).get("inputs", {}).get("fingerprint")


def _differences(recorded, today, where: str) -> list[str]:
    if isinstance(recorded, dict) and isinstance(today, dict):
        return [line for key in sorted(set(recorded) | set(today), key=str)
                for line in _differences(recorded.get(key, "(none)"), today.get(key, "(none)"), f"{where}{key} / ")]
    return [] if recorded == today else [f"{where[:-3]}: recorded {recorded}, today {today}"]


def why(name: str, root: str | os.PathLike = PROJECT_ROOT) -> list[str]:
    """The parts of a run's or product's inputs that differ between its record and today (empty: the same)."""
    root, today = Path(root), Today(root)
    if name in PRODUCTS:
        product = PRODUCTS[name]
        target = root / product.target
        if product.cache:
            return [] if _recorded(root, name, {}) == today.product(name)["fingerprint"] else [
                f"{product.target}: {'holds another fingerprint' if target.is_file() else 'absent'} (its inputs' "
                f"parts are not kept)"]
        recorded, now = read_records(root).get(name), today.product(name)
    else:
        run = RunId.parse(name)
        path = root / RUNS / run.name / artefacts.MANIFEST
        recorded = json.loads(path.read_text()).get("inputs") if path.is_file() else None
        now = today.run(run)
    if recorded is None:
        return [f"{name}: no inputs recorded"]
    return _differences(recorded["parts"], now["parts"], "")


def staleness(today: Today, finetune: bool = True, force: bool = False) -> dict[str, bool]:
    """{run or product name: stale?}: its inputs' fingerprint differs from the recorded one (or it is missing),
    or something it is made from is stale (the split for every run; the runs, `after` products); all with force."""
    root, records = today.root, read_records(today.root)
    stale, runs_stale = {}, False
    for name, product in PRODUCTS.items():  # in dependency order: the split first, then the runs
        stale[name] = (force or _recorded(root, name, records) != today.product(name)["fingerprint"]
                       or any(stale[a] for a in product.after) or (product.runs and runs_stale))
        if name == "split":
            for run in expected_runs(True):
                stale[run.name] = force or stale[name] or _run_recorded(root, run) != today.run(run)["fingerprint"]
            runs_stale = any(stale[r.name] for r in expected_runs(finetune))
    return stale


def write_stamp(path: Path, fingerprint_: str, stale: bool, force: bool = False) -> bool:
    """A stamp holds a fingerprint; its mtime is OLD_NS when current, the time it was written when stale. It is
    rewritten only when that state or the fingerprint changes (or with force); returns whether it was."""
    text = fingerprint_ + "\n"
    if (not force and path.is_file() and path.read_text() == text
            and (path.stat().st_mtime_ns == OLD_NS) == (not stale)):
        return False
    files.write_text(path, text)
    if not stale:
        os.utime(path, ns=(OLD_NS, OLD_NS))
    return True


def write_stamps(stamps_dir: str | os.PathLike, finetune: bool = True, force: bool = False,
                 root: str | os.PathLike = PROJECT_ROOT) -> str:
    """Write `stamps_dir`/<run or product>.stamp for every run and product; return the make lines that follow
    from staleness (a stale product's uncommitted caches become its order-only prerequisites)."""
    today = Today(root)
    stale = staleness(today, finetune, force)
    for name, is_stale in stale.items():
        inputs = today.product(name) if name in PRODUCTS else today.run(RunId.parse(name))
        write_stamp(Path(stamps_dir) / f"{name}.stamp", inputs["fingerprint"], is_stale, force)
    lines = [f"{p.target}: | {PRODUCTS[u].target}" for n, p in PRODUCTS.items() if stale[n] for u in p.uses]
    return "".join(line + "\n" for line in lines)


def _lock_path(root: Path) -> Path:
    path = root / "build" / "inputs" / ".records.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def record_product(name: str, how: str = "at build time", root: str | os.PathLike = PROJECT_ROOT,
                   today: Today | None = None) -> dict:
    """Record a product's inputs as of now (make does it right after building it): in reports/inputs.json, or
    for an uncommitted cache in the target itself."""
    if name not in PRODUCTS:
        raise GfrError(f"{name!r} is not a product (one of {', '.join(PRODUCTS)})")
    root, product = Path(root), PRODUCTS[name]
    inputs = (today or Today(root)).product(name)
    if product.cache:
        files.write_text(root / product.target, inputs["fingerprint"] + "\n")
        return inputs
    with open(_lock_path(root), "w") as lock:  # make -j: two products recorded at once keep both
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = read_records(root)
        records[name] = {**inputs, "recorded": how}
        files.write_json(root / RECORDS, records)
    return inputs


def adopt(root: str | os.PathLike = PROJECT_ROOT) -> list[str]:
    """Record today's inputs for the committed runs and products that have none (never replacing a recorded one):
    a declaration that their committed numbers are those of today's inputs (`make verify` is the check)."""
    root, today, done = Path(root), Today(root), []
    for run in expected_runs():
        path = root / RUNS / run.name / artefacts.MANIFEST
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        if "inputs" in record:
            done.append(f"{run.name}: kept (recorded {record.get('inputs_recorded', '?')})")
            continue
        artefacts.write_manifest(path.parent, {**record, "inputs": today.run(run), "inputs_recorded": ADOPTED})
        done.append(f"{run.name}: adopted")
    records = read_records(root)
    for name, product in PRODUCTS.items():
        if product.cache or not (root / product.target).is_file():
            continue
        if name in records:
            done.append(f"{name}: kept (recorded {records[name].get('recorded', '?')})")
            continue
        record_product(name, ADOPTED, root, today)
        done.append(f"{name}: adopted")
    return done
