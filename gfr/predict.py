"""Predict P(male) for image files with a saved run, streaming: bounded memory, rows as they come, hash-checked.

One code path for a file, a few files and a folder of any size: the image paths are walked lazily, images
are decoded (and, with --detect-faces, faces found and cropped) in loader threads a few batches ahead
(gfr.data.images.map_batches), each batch goes through the model, and its rows are yielded, printed and
written before the next batch is read. Memory is bounded by (prefetch + 2) batches, whatever the number of
images. An image that cannot be read gives a row with label "error" (and the reason) and the job goes on.

Nothing that is not a face gets a gender: without --detect-faces an input must pass a face-crop check (dlib's HOG
detector finds a face where CelebA's frame puts one: gfr.data.faces.looks_like_crop), with it a face must be
found; otherwise the row is labelled "no face found" with no P(male). `no_face="whole-image"` (`--no-face
whole-image`) classifies the whole image instead, unchecked (for folders of pre-cropped faces).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
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
SKIP, WHOLE_IMAGE = "skip", "whole-image"  # `--no-face`: what an image without a face gets
NO_FACE_CHOICES = (SKIP, WHOLE_IMAGE)
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


def _load_item(path: Path, size: tuple[int, int], detect_faces: bool, no_face: str = SKIP) -> _Item:
    """In a loader thread: decode one image and cut its face crops (or resize it whole); errors as values.

    No crops ([]) where no face is found (with `detect_faces`) or the image fails the face-crop check (without),
    unless `no_face` is "whole-image": then the whole image resized (and, without `detect_faces`, no check)."""
    try:
        if detect_faces:
            from gfr.data import faces

            rgb = decode(path, None)
            with _FACES_LOCK:
                crops, detector = faces.crops(rgb, size)
            if not crops and no_face == WHOLE_IMAGE:
                return _Item(path, [faces.resize(rgb, size)], None, whole=True)
            return _Item(path, crops, None)
        if no_face == WHOLE_IMAGE:
            return _Item(path, [decode(path, size)], None)
        from gfr.data import faces

        rgb = decode(path, None)
        with _FACES_LOCK:
            passed = faces.looks_like_crop(rgb)
        return _Item(path, [faces.resize(rgb, size)] if passed else [], None)
    except GfrError as exc:
        text = str(exc)
        return _Item(path, [], text[len(f"{path}: "):] if text.startswith(f"{path}: ") else text)
    except Exception as exc:  # a detector or resize failure on odd pixels: this image only
        return _Item(path, [], f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")


def stream(loaded: Loaded, inputs: Iterable[str | os.PathLike], detect_faces: bool = False, batch_size: int = 32,
           workers: int | None = None, prefetch: int = 2, meter=None, no_face: str = SKIP) -> Iterator[dict]:
    """Rows (path, face, p_male, label, error) in input order, one batch of images at a time.

    Without `detect_faces`: one row per image, the whole image resized to the run's input size, if it passes
    the face-crop check (else one row labelled "no face found", no P(male)). With it: one row per face found
    (face 0 the largest), or, when none is found, one row labelled "no face found". `no_face="whole-image"`:
    no check, and where --detect-faces finds no face the whole image resized, face "none" (as gfr wild
    measures it on in-the-wild-dev). An unreadable image: one row labelled "error" with the reason. `meter`
    (if given) is updated per image.
    """
    if no_face not in NO_FACE_CHOICES:
        raise GfrError(f"--no-face must be one of {', '.join(NO_FACE_CHOICES)}, not {no_face!r}")
    size = tuple(loaded.record["input_size"])
    load = functools.partial(_load_item, size=size, detect_faces=detect_faces, no_face=no_face)
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


def _check_detector(detect_faces: bool, no_face: str = SKIP) -> None:
    """dlib is needed to find faces (--detect-faces) and for the face-crop check (without --no-face whole-image):
    one line naming the install command when it is absent, before the model loads."""
    if no_face not in NO_FACE_CHOICES:
        raise GfrError(f"--no-face must be one of {', '.join(NO_FACE_CHOICES)}, not {no_face!r}")
    if not detect_faces and no_face == WHOLE_IMAGE:
        return
    from gfr.data import faces

    try:
        faces.detector()
    except GfrError as exc:
        if detect_faces:
            raise
        raise GfrError(f"{exc}; it checks that each image looks like a face crop (or pass --no-face whole-image to "
                       f"classify every image as given, unchecked)") from None


def _quiet_tensorflow() -> None:
    """`gfr predict` prints only its own lines. TensorFlow's C++ library logs a notice (oneDNN) and an absl warning
    to stderr while it loads, whatever TF_CPP_MIN_LOG_LEVEL says once the process runs (it is read only from the
    environment the process started with): so Keras (and its backend) is imported with stderr (the file
    descriptor) pointed at /dev/null, unless TF_CPP_MIN_LOG_LEVEL asks for more than errors (a value below 3 in
    the environment, set by the user) or the backend is already loaded. A failed import still raises. absl's
    Python log is then set to errors only."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" not in sys.modules and level == "3":
        with _stderr_to_devnull():
            with contextlib.suppress(ImportError):  # raised again where the model is built, with its message
                import keras  # noqa: F401
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


@contextlib.contextmanager
def _stderr_to_devnull():
    """File descriptor 2 points at /dev/null inside the block (C/C++ libraries' output too)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ---- output ----------------------------------------------------------------------------------------------


def format_row(row: dict) -> str:
    """One printed line: `path[ face k]: P(male)=0.987  male`, or the label (and reason) without a prediction."""
    face = {None: "", NO_FACE_FACE: " (no face found: whole image)"}.get(row["face"], f" face {row['face']}")
    p = "" if row["p_male"] is None else f"P(male)={row['p_male']:.3f}  "
    why = f" ({row['error']})" if row.get("error") else ""
    return f"{row['path']}{face}: {p}{row['label']}{why}"


def temp_csv(target: str | os.PathLike) -> Path:
    """The temporary file a CSV is written to before it is renamed onto `target`: `.NAME.<pid>.tmp.csv` beside it."""
    target = Path(target)
    return target.parent / f".{target.name}.{os.getpid()}.tmp.csv"


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of `target` left by a `gfr predict --csv` that was killed (its process is gone);
    a live process's file is left alone. The target itself is never touched."""
    target = Path(target)
    removed = []
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp.csv"):
        owner = tmp.name[len(target.name) + 2:-len(".tmp.csv")]
        if owner.isdigit() and int(owner) != os.getpid() and _alive(int(owner)):
            continue
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def csv_rows(target: str | os.PathLike | None):
    """Yield a function writing one row to the CSV `target` as rows come: a temporary file beside it (`temp_csv`),
    fsync'd and renamed onto it when the block ends without error (else removed: nothing half-written); stale
    temporary files of the same target, left by a killed run, are removed first. None: no CSV."""
    if target is None:
        yield lambda row: None
        return
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = temp_csv(target)
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            os.chmod(tmp, 0o644)
            writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
            handle.flush()

            def write(row: dict) -> None:
                writer.writerow(row)
                handle.flush()  # on disk (in the temporary file) as it comes, not when a buffer fills

            yield write
        files.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def run_command(run, images: list[str], weights: str | None = None, csv_path: str | None = None,
                detect_faces: bool = False, batch_size: int = 32, workers: int | None = None,
                quiet: bool = False, out=None, no_face: str = SKIP) -> int:
    """`gfr predict`: stream rows to stdout and the CSV; exit status 0, or 1 when some images were unreadable."""
    out = out or sys.stdout
    if batch_size < 1:
        raise GfrError(f"--batch-size must be >= 1, not {batch_size}")
    run_dir = resolve_run(run)
    read_record(run_dir)  # the run first (cheap), then the inputs, then the model (seconds)
    inputs = check_inputs(images)
    _check_detector(detect_faces, no_face)
    _quiet_tensorflow()
    loaded = load_model(run_dir, weights)
    show = not quiet and sys.stderr.isatty()
    meter = progress_meter(count_images(inputs) if show else 0, f"predicting ({run_dir.name})", enabled=show)
    errors, first_error = 0, None
    try:
        with csv_rows(csv_path) as write:
            for row in stream(loaded, inputs, detect_faces, batch_size, workers=workers, meter=meter, no_face=no_face):
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

