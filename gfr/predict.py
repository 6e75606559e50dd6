"""Predict P(male) for image files with a saved run, streaming: bounded memory, rows as they come, hash-checked.

One code path for a file, a few files and a folder of any size: the image paths are walked lazily, images
are decoded (and, with --detect-faces, faces found and cropped) in loader threads a few batches ahead
(gfr.data.images.map_batches), each batch goes through the model, and its rows are yielded, printed and
written before the next batch is read. Memory is bounded by (prefetch + 2) batches, whatever the number of
images. An image that cannot be read gives a row with label "error" (and the reason) and the job goes on.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import os
import sys
import threading
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from gfr import files
from gfr.data.images import decode, map_batches
from gfr.errors import GfrError
from gfr.paths import REPORTS_DIR, RUNS_DIR
from gfr.progress import meter as progress_meter
from gfr.study import metrics
from gfr.study.saved import Loaded, forward, load_model, read_record

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
COLUMNS = ["path", "face", "p_male", "label", "error"]  # the CSV's columns (printed rows show the same)
NO_FACE = "no face found"  # label of an image with no face and no crop to predict on
NO_FACE_FACE = "none"  # the `face` of a row where --detect-faces found no face and the whole image was used
ERROR = "error"  # label of an image that cannot be read (the reason is in the `error` column)
CHOSEN = "chosen"  # `--run chosen`: the run marked chosen in reports/results.csv
RESULTS_CSV = REPORTS_DIR / "results.csv"
# dlib's detectors keep scratch state inside the (one, shared) detector object and are not safe to call from
# two threads at once (found here: rows differed between identical runs): detection holds this lock, while
# decoding and resizing run in parallel. dlib keeps the GIL while it detects, so little is lost.
_FACES_LOCK = threading.Lock()


def resolve_run(run: str | os.PathLike | None, results_csv: str | os.PathLike = RESULTS_CSV) -> Path:
    """The run folder: `run` itself, or for "chosen" (the default) the run marked chosen in results.csv."""
    if run is not None and str(run) != CHOSEN:
        return Path(run)
    results_csv = Path(results_csv)
    if not results_csv.is_file():
        raise GfrError(f"--run chosen: {results_csv} not found; name a run folder (--run reports/runs/<run>) "
                       f"or rebuild the results with `make results`")
    import pandas as pd

    table = pd.read_csv(results_csv)
    if "chosen" not in table.columns:
        raise GfrError(f"--run chosen: {results_csv} has no column 'chosen'; rebuild it with `make results`")
    chosen = table[table.chosen.astype(str).str.lower() == "true"].run.tolist()
    if len(chosen) != 1:
        raise GfrError(f"--run chosen: {results_csv} marks {len(chosen)} runs chosen, not one; name a run folder")
    return RUNS_DIR / chosen[0]


# ---- inputs ----------------------------------------------------------------------------------------------


def _is_image(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def walk_folder(folder: Path) -> Iterator[Path]:
    """A folder's images, recursively (hidden files and folders left out), lazily: a folder's own files in
    name order, then its subfolders in name order. Symbolic links to folders are not followed."""
    for root, dirs, names in os.walk(folder, onerror=_raise_walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if _is_image(name):
                yield Path(root) / name


def _raise_walk_error(exc: OSError):
    raise GfrError(f"{exc.filename}: cannot list the folder ({exc.strerror})")


def check_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """The inputs as paths, after checking each exists (and each folder holds an image), before any work."""
    out = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            if next(walk_folder(path), None) is None:
                raise GfrError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}), "
                               f"not even in its subfolders")
        elif not path.is_file():
            raise GfrError(f"{path}: no such file or folder")
        out.append(path)
    if not out:
        raise GfrError("no images given")
    return out


def iter_images(inputs: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Image files from files (taken as given, whatever their suffix) and folders (walked recursively), lazily."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from walk_folder(path)
        else:
            yield path


def count_images(inputs: Iterable[str | os.PathLike]) -> int:
    """How many images iter_images yields (a walk of the folders; nothing is kept)."""
    return sum(1 for _ in iter_images(inputs))


# ---- streaming prediction --------------------------------------------------------------------------------


class _Item(NamedTuple):
    path: Path
    crops: list
    error: str | None
    whole: bool = False  # --detect-faces found no face: the one crop is the whole image


def _load_item(path: Path, size: tuple[int, int], detect_faces: bool) -> _Item:
    """In a loader thread: decode one image and cut its face crops (or resize it whole); errors as values."""
    try:
        if detect_faces:
            from gfr.data import faces

            rgb = decode(path, None)
            with _FACES_LOCK:
                crops, detector = faces.crops_or_whole(rgb, size)
            return _Item(path, crops, None, whole=detector == "none")
        return _Item(path, [decode(path, size)], None)
    except GfrError as exc:
        text = str(exc)
        return _Item(path, [], text[len(f"{path}: "):] if text.startswith(f"{path}: ") else text)
    except Exception as exc:  # a detector or resize failure on odd pixels: this image only
        return _Item(path, [], f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")


def stream(loaded: Loaded, inputs: Iterable[str | os.PathLike], detect_faces: bool = False, batch_size: int = 32,
           workers: int | None = None, prefetch: int = 2, meter=None) -> Iterator[dict]:
    """Rows (path, face, p_male, label, error) in input order, one batch of images at a time.

    Without `detect_faces`: one row per image, the whole image resized to the run's input size. With it: one
    row per face found (face 0 the largest), or, when none is found, one row for the whole image resized with
    face "none" (as gfr wild measures it on in-the-wild-dev). An
    unreadable image: one row labelled "error" with the reason. `meter` (if given) is updated per image.
    """
    size = tuple(loaded.record["input_size"])
    load = functools.partial(_load_item, size=size, detect_faces=detect_faces)
    for items in map_batches(iter_images(inputs), load, batch_size, workers=workers, prefetch=prefetch):
        probs = iter(forward(loaded, [crop for item in items for crop in item.crops], batch_size))
        for item in items:
            path = str(item.path)
            if item.error is not None:
                yield {"path": path, "face": None, "p_male": None, "label": ERROR, "error": item.error}
            elif not item.crops:
                yield {"path": path, "face": None, "p_male": None, "label": NO_FACE, "error": None}
            for k in range(len(item.crops)):
                p = float(next(probs))
                yield {"path": path, "face": NO_FACE_FACE if item.whole else (k if detect_faces else None), "p_male": p,
                       "label": "male" if metrics.predicted_male(p)[0] else "female", "error": None}
            if meter is not None:
                meter.update(1)


def _check_detector() -> None:
    from gfr.data import faces

    faces.detector()  # one line naming the install command when dlib is absent, before the model loads


# ---- output ----------------------------------------------------------------------------------------------


def format_row(row: dict) -> str:
    """One printed line: `path[ face k]: P(male)=0.987  male`, or the label (and reason) without a prediction."""
    face = {None: "", NO_FACE_FACE: " (no face found: whole image)"}.get(row["face"], f" face {row['face']}")
    p = "" if row["p_male"] is None else f"P(male)={row['p_male']:.3f}  "
    why = f" ({row['error']})" if row.get("error") else ""
    return f"{row['path']}{face}: {p}{row['label']}{why}"


@contextlib.contextmanager
def csv_rows(target: str | os.PathLike | None):
    """Yield a function writing one row to the CSV `target` as rows come: a temporary file beside it, fsync'd
    and renamed onto it when the block ends without error (else removed: nothing half-written). None: no CSV."""
    if target is None:
        yield lambda row: None
        return
    with files.atomic_path(target, suffix=".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
            handle.flush()

            def write(row: dict) -> None:
                writer.writerow(row)
                handle.flush()  # on disk (in the temporary file) as it comes, not when a buffer fills

            yield write


def run_command(run, images: list[str], weights: str | None = None, csv_path: str | None = None,
                detect_faces: bool = False, batch_size: int = 32, workers: int | None = None,
                quiet: bool = False, out=None) -> int:
    """`gfr predict`: stream rows to stdout and the CSV; exit status 0, or 1 when some images were unreadable."""
    out = out or sys.stdout
    if batch_size < 1:
        raise GfrError(f"--batch-size must be >= 1, not {batch_size}")
    run_dir = resolve_run(run)
    read_record(run_dir)  # the run first (cheap), then the inputs, then the model (seconds)
    inputs = check_inputs(images)
    if detect_faces:
        _check_detector()
    loaded = load_model(run_dir, weights)
    show = not quiet and sys.stderr.isatty()
    meter = progress_meter(count_images(inputs) if show else 0, f"predicting ({run_dir.name})", enabled=show)
    errors, first_error = 0, None
    try:
        with csv_rows(csv_path) as write:
            for row in stream(loaded, inputs, detect_faces, batch_size, workers=workers, meter=meter):
                line = format_row(row)
                if show:
                    meter.write(line, file=out)
                else:
                    print(line, file=out)
                write(row)
                if row["label"] == ERROR:
                    errors += 1
                    first_error = first_error or f"{row['path']}: {row['error']}"
    finally:
        meter.close()
    if errors:
        print(f"gfr: warning: {errors} image(s) could not be read (rows labelled {ERROR!r}), "
              f"the first: {first_error}", file=sys.stderr)
        return 1
    return 0

