"""Progress meters for long loops: one tqdm line on stderr (count, rate, time left)."""

from __future__ import annotations

import sys

from tqdm import tqdm  # plain text meter: also in notebook kernels (no widget dependency)

BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({rate_fmt}, {remaining} left)"


def meter(total: int, label: str, enabled: bool = True):
    """A progress meter over `total` items (`update(n)` as they are done, `close()` at the end)."""
    return tqdm(total=total, desc=label, disable=not enabled, file=sys.stderr, bar_format=BAR_FORMAT,
                mininterval=2.0, dynamic_ncols=False)
