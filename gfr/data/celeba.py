"""Read CelebA's official layout: img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt."""

from __future__ import annotations

import os
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
    rows = [line for line in lines[2:] if line.strip()]
    if len(rows) != declared:
        raise GfrError(f"{source}: line 1 declares {declared} rows but {len(rows)} follow")
    width = len(names) + 1
    ids: list[str] = []
    values = np.empty((len(rows), len(names)), dtype=np.int8)
    for i, line in enumerate(rows):
        parts = line.split()
        if len(parts) != width:
            raise GfrError(f"{source} line {i + 3}: expected an image name and {len(names)} values, got {len(parts) - 1} values")
        try:
            row = [int(v) for v in parts[1:]]
        except ValueError:
            raise GfrError(f"{source} line {i + 3}: values must be 1 or -1") from None
        if any(v not in (1, -1) for v in row):
            raise GfrError(f"{source} line {i + 3}: values must be 1 or -1")
        ids.append(parts[0])
        values[i] = row
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
    split = {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise GfrError(f"{path} line {number}: expected '<image> <0|1|2>'")
        split[parts[0]] = int(parts[1])
    return pd.Series(split, name="partition")


IDENTITY_FILE = "identity_CelebA.txt"


def read_identities(root: str | os.PathLike) -> pd.Series | None:
    """CelebA's person id of each image (identity_CelebA.txt), or None when the file is absent."""
    path = Path(root) / IDENTITY_FILE
    if not path.exists():
        return None
    ids = {}
    for number, line in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise GfrError(f"{path} line {number}: expected '<image> <identity number>'")
        ids[parts[0]] = int(parts[1])
    return pd.Series(ids, name="identity")


def image_path(root: str | os.PathLike, image_id: str) -> Path:
    """Where an image of the dataset lies."""
    return Path(root) / IMAGES_DIR / image_id
