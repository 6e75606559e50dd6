"""Decode and resize images in bounded batches, decoding the next batch in threads while one is used."""

from __future__ import annotations

import itertools
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from gfr.errors import GfrError
from gfr.progress import meter as progress_meter

MAX_PIXELS = 40_000_000  # decompression-bomb guard: refuse images above 40 megapixels
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def decode(path: str | os.PathLike, size: tuple[int, int] | None) -> np.ndarray:
    """One image as uint8 RGB (height, width, 3), resized bilinearly to `size` (h, w) if given."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise GfrError(f"{path}: image of {img.width}x{img.height} pixels exceeds the {MAX_PIXELS:,}-pixel cap")
                img = img.convert("RGB")
                if size is not None and (img.height, img.width) != tuple(size):
                    img = img.resize((size[1], size[0]), Image.BILINEAR)
                return np.asarray(img, dtype=np.uint8)
    except GfrError:
        raise
    except FileNotFoundError:
        raise GfrError(f"{path}: image file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise GfrError(f"{path}: image exceeds the {MAX_PIXELS:,}-pixel cap (decompression-bomb guard)") from None
    except Exception as exc:  # PIL raises many types for bad bytes
        raise GfrError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None


def check_images(paths: Sequence[str | os.PathLike], progress: bool = True, workers: int | None = None) -> list[tuple[str, str]]:
    """Fully decode every image; return (path, reason) for each one that is missing or unreadable."""
    def one(path):
        try:
            decode(path, None)
            return None
        except GfrError as exc:
            reason = str(exc).split(": ", 1)[-1]
            return (str(path), reason)

    problems = []
    meter = progress_meter(len(paths), "checking images", enabled=progress)
    with ThreadPoolExecutor(workers or min(8, (os.cpu_count() or 2))) as pool:
        for result in pool.map(one, paths, chunksize=64):
            meter.update(1)
            if result:
                problems.append(result)
    meter.close()
    return problems


def decode_batch(paths: Sequence[str | os.PathLike], size: tuple[int, int], pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """A batch of images as one uint8 array (n, h, w, 3)."""
    mapper = pool.map if pool else map
    return np.stack(list(mapper(lambda p: decode(p, size), paths)))


def iter_batches(
    paths: Sequence[str | os.PathLike],
    size: tuple[int, int],
    batch_size: int,
    workers: int | None = None,
    prefetch: int = 2,
) -> Iterator[np.ndarray]:
    """Yield uint8 batches in order; up to `prefetch` later batches decode in threads meanwhile.

    Memory is bounded by (prefetch + 1) batches, whatever the number of paths.
    """
    workers = workers or min(8, (os.cpu_count() or 2))
    starts = range(0, len(paths), batch_size)
    with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as feeder:
        pending = []
        for start in starts:
            pending.append(feeder.submit(decode_batch, paths[start:start + batch_size], size, pool))
            if len(pending) > prefetch:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def map_batches(
    items: Iterable,
    fn: Callable,
    batch_size: int,
    workers: int | None = None,
    prefetch: int = 2,
) -> Iterator[list]:
    """Yield [fn(item) for item in batch] for consecutive batches of `items` (any iterable, read lazily), in order.

    `fn` runs in `workers` threads; up to `prefetch` later batches are worked on meanwhile, so memory is
    bounded by (prefetch + 1) batches of results, whatever the number of items. An exception from `fn`
    propagates when its batch is reached (catch it inside `fn` to keep going).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    workers = workers or min(8, (os.cpu_count() or 2))
    items = iter(items)
    with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as feeder:
        pending = []
        try:
            while True:
                batch = list(itertools.islice(items, batch_size))
                if not batch:
                    break
                pending.append(feeder.submit(lambda b: list(pool.map(fn, b)), batch))
                if len(pending) > prefetch:
                    yield pending.pop(0).result()
            for future in pending:
                yield future.result()
        finally:  # a consumer that stops early (or an error) leaves no queued work behind
            for future in pending:
                future.cancel()
