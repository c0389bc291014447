"""tqdm bars for long scans: on stderr, and only when someone is watching (a TTY) or asked for."""

from __future__ import annotations

import sys

from tqdm import tqdm


def wants_progress(requested: bool) -> bool:
    return requested or sys.stderr.isatty()


def bar(total: int | None, desc: str, enabled: bool) -> tqdm:
    """A row-count bar (total None: a counter); disabled bars cost nothing and print nothing."""
    return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, file=sys.stderr, disable=not enabled, leave=False)
