"""Read CelebA's official layout: img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt."""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from gfr.errors import GfrError

IMAGES_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
LABEL = "Male"
DATA_ENV = "GFR_DATA_DIR"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The dataset folder: `path`, else $GFR_DATA_DIR; a clear error when neither is a CelebA folder."""
    given = path or os.environ.get(DATA_ENV)
    if not given:
        raise GfrError(f"no data directory: pass --data-dir or set {DATA_ENV} to a folder in CelebA's layout")
    root = Path(given).expanduser()
    if not root.is_dir():
        raise GfrError(f"data directory not found: {root}")
    for needed in (IMAGES_DIR, ATTR_FILE):
        if not (root / needed).exists():
            raise GfrError(f"{root}: missing {needed} (expected CelebA's official layout)")
    return root


def _fields(lines: list[str], width: int, source: str, first_line: int, expected: str) -> pd.DataFrame:
    """The whitespace-separated fields of `lines` (pandas' read_csv) as text: one row of `width` per non-blank line,
    indexed by its line number (the first is `first_line`); a clear error naming the first line with another count."""
    try:
        with warnings.catch_warnings():  # a first line with too many fields is cut to width + 1: counted below
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            rows = pd.read_csv(io.StringIO("\n".join(lines)), sep=r"\s+", header=None, names=range(width + 1),
                               index_col=False, dtype=str, quoting=csv.QUOTE_NONE, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=range(width), dtype=str)
    except ValueError as exc:  # pandas' ParserError: a later line with more than width + 1 fields
        found = re.search(r"line (\d+), saw (\d+)", str(exc))
        where, got = (f" line {int(found[1]) + first_line - 1}", f", got {int(found[2]) - 1} values") if found else ("", "")
        raise GfrError(f"{source}{where}: expected {expected}{got}") from None
    rows.index += first_line
    counts = rows.notna().sum(axis=1)
    miscounted = (counts > 0) & (counts != width)
    if miscounted.any():
        line = miscounted.idxmax()
        raise GfrError(f"{source} line {line}: expected {expected}, got {counts[line] - 1} values")
    return rows[counts > 0].drop(columns=width)


def parse_attributes(text: str, source: str = ATTR_FILE) -> pd.DataFrame:
    """Parse list_attr_celeba.txt text into a frame indexed by image id with int8 columns of +1/-1."""
    lines = text.splitlines()
    if len(lines) < 2:
        raise GfrError(f"{source}: too short; expected a row count line and an attribute-name line")
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise GfrError(f"{source} line 1: expected the row count, got {lines[0].strip()[:40]!r}") from None
    names = lines[1].split()
    if not names or len(set(names)) != len(names):
        raise GfrError(f"{source} line 2: attribute names missing or repeated")
    if LABEL not in names:
        raise GfrError(f"{source} line 2: no '{LABEL}' attribute among {len(names)} names")
    fields = _fields(lines[2:], len(names) + 1, source, 3, f"an image name and {len(names)} values")
    if len(fields) != declared:
        raise GfrError(f"{source}: line 1 declares {declared} rows but {len(fields)} follow")
    text_values = fields.drop(columns=0)
    plus_minus_one = text_values.isin(["1", "-1"]).all(axis=1)
    if not plus_minus_one.all():
        raise GfrError(f"{source} line {plus_minus_one.idxmin()}: values must be 1 or -1")
    ids = fields[0].tolist()
    values = np.where(text_values.to_numpy() == "1", 1, -1).astype(np.int8)
    frame = pd.DataFrame(values, index=pd.Index(ids, name="image_id"), columns=names)
    dupes = frame.index[frame.index.duplicated()]
    if len(dupes):
        raise GfrError(f"{source}: duplicate image id {dupes[0]!r} ({len(dupes)} duplicates)")
    check_plain_names(ids, source)
    return frame


def check_plain_names(names, source: str) -> None:
    """Refuse image names that are paths (they could point outside the images folder)."""
    for name in names:
        if "/" in name or "\\" in name or name.startswith("."):
            raise GfrError(f"{source}: image name {name!r} is not a plain file name")


def read_attributes(root: str | os.PathLike) -> pd.DataFrame:
    """Attributes of every image listed in `root`/list_attr_celeba.txt."""
    path = Path(root) / ATTR_FILE
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise GfrError(f"attribute file not found: {path}") from None
    except UnicodeDecodeError:
        raise GfrError(f"{path}: not a text attribute file (non-ASCII bytes)") from None
    return parse_attributes(text, str(path))


def read_partition(root: str | os.PathLike) -> pd.Series | None:
    """CelebA's official split (0 train, 1 val, 2 test) by image id, or None when the file is absent."""
    path = Path(root) / PARTITION_FILE
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise GfrError(f"{path}: not a text partition file (non-ASCII bytes)") from None
    fields = _fields(text.splitlines(), 2, str(path), 1, "'<image> <0|1|2>'")
    known = fields[1].isin(["0", "1", "2"])
    if not known.all():
        raise GfrError(f"{path} line {known.idxmin()}: expected '<image> <0|1|2>'")
    return pd.Series(fields[1].astype(int).to_numpy(), index=fields[0].tolist(), name="partition")


IDENTITY_FILE = "identity_CelebA.txt"


def read_identities(root: str | os.PathLike) -> pd.Series | None:
    """CelebA's person id of each image (identity_CelebA.txt), or None when the file is absent."""
    path = Path(root) / IDENTITY_FILE
    if not path.exists():
        return None
    fields = _fields(path.read_text(encoding="ascii", errors="replace").splitlines(), 2, str(path), 1,
                     "'<image> <identity number>'")
    numbered = fields[1].str.fullmatch(r"[0-9]+")
    if not numbered.all():
        raise GfrError(f"{path} line {numbered.idxmin()}: expected '<image> <identity number>'")
    return pd.Series(fields[1].astype(int).to_numpy(), index=fields[0].tolist(), name="identity")


def image_path(root: str | os.PathLike, image_id: str) -> Path:
    """Where an image of the dataset lies."""
    return Path(root) / IMAGES_DIR / image_id
