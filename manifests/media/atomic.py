"""How a file appears: written under a temp name beside it, fsync'ed, renamed, and the folders fsync'ed.

A reader never sees half a file, and a file a row names survives a power cut once that row can commit.
`atomic_output` is the form for a `with` block; `temp_path` and `durable_replace` are its two halves, for a
writer (the H.264 encoder) that opens in one call and commits in another.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from manifests.layout import fsync_path


def temp_path(path: Path) -> Path:
    """The temp name beside `path`: hidden, unique per process, and keeping the suffix (writers that choose
    the format by extension, such as PyAV, PNG encoders and `np.savez`, still work)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


def durable_replace(temp: Path, final: Path) -> None:
    """Rename a finished temp file into place so that it survives a power cut before any row names it:
    fsync the bytes, rename, then fsync the folder and its parent (which may be new too)."""
    fsync_path(temp)
    os.replace(temp, final)
    fsync_path(final.parent)
    fsync_path(final.parent.parent)


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temp path to write, made `path` durably only if the block completes; removed whatever happens."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(final)
    try:
        yield temp
        durable_replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
