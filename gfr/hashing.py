"""Content hashes of files and JSON-able objects."""

from __future__ import annotations

import hashlib
import json
import os


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def object_sha256(obj) -> str:
    """The SHA-256 hex digest of an object's canonical JSON form."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
