"""`manifests compact` and `manifests gc`: small files into large ones, and unreferenced files removed.

Both are safe while a job appends. Compaction reads complete units only and commits its new files and
the removal of the old ones in one Delta transaction (data unchanged); a conflicting commit makes it
start over from a fresh snapshot. gc is Delta's vacuum with a retention window: files that no version
newer than the window needs (compacted-away files, a killed writer's uncommitted ones) are deleted,
and anything younger (an append in flight) is left alone. Snapshots older than the window may then
no longer be readable, so the window must outlast the longest read of one snapshot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from manifests import delta
from manifests.errors import ManifestError
from manifests.layout import COMPACTED, UNITS_DIR, data_file_name, fsync_path, new_token, table_dir, unit_of_file, units_dir
from manifests.schema import SCHEMAS
from manifests.snapshot import visible
from manifests.units import UNITS_SCHEMA, complete_units
from manifests.writer import ManifestWriter

TARGET_FILE_BYTES = 128 << 20
DEFAULT_RETENTION_HOURS = 168
COMPACT_ATTEMPTS = 5


@dataclass(frozen=True)
class Compacted:
    table: str
    files_before: int
    files_after: int
    rows: int


def _bins(files: list[delta.DataFile], target: int) -> list[list[delta.DataFile]]:
    """Consecutive small files grouped up to `target` bytes; groups of one are left as they are."""
    bins, current, size = [], [], 0
    for f in files:
        if current and size + f.bytes > target:
            bins.append(current)
            current, size = [], 0
        current.append(f)
        size += f.bytes
    bins.append(current)
    return [b for b in bins if len(b) > 1]


def compact_table(root: str | os.PathLike, table: str, target_bytes: int = TARGET_FILE_BYTES) -> Compacted:
    """Rewrite the small files of complete units of `table` into files of about `target_bytes`."""
    for _ in range(COMPACT_ATTEMPTS):
        try:
            return _compact_once(Path(root), table, target_bytes)
        except delta.AlreadyCommitted:
            continue
        except ManifestError as exc:
            if "commit failed" not in str(exc):
                raise
    raise ManifestError(f"{table}: compaction kept conflicting with other commits; try again later")


def _compact_once(root: Path, table: str, target_bytes: int) -> Compacted:
    folder = table_dir(root, table)
    current = delta.load(folder)
    _, complete = complete_units(root)
    files = delta.files(current)
    small = [f for f in files if f.bytes < target_bytes // 2 and visible(unit_of_file(f.path), table, complete)]
    bins = _bins(small, target_bytes)
    if not bins:
        return Compacted(table, len(files), len(files), 0)
    writer = ManifestWriter(root, table, max_bytes_per_shard=target_bytes, max_rows_per_shard=10_000_000)
    written: list[Path] = []
    actions, rows = [], 0
    try:
        for group in bins:
            data = pa.concat_tables(
                [pq.read_table(folder / f.path, schema=SCHEMAS[table]).replace_schema_metadata(None) for f in group]
            )
            new = writer.write_files(COMPACTED, data, written)
            actions += [delta.add_action(p.name, p, n, data_change=False) for p, n in new]
            actions += [delta.remove_action(f) for f in group]
            rows += data.num_rows
        delta.commit(current, actions, writer.schema, None, None, {"liveditor.operation": "compact"})
        removed = sum(len(g) for g in bins)
        added = len(written)
        written.clear()
    finally:
        writer.discard_uncommitted(written)
    return Compacted(table, len(files), len(files) - removed + added, rows)


def compact_units(root: str | os.PathLike, target_bytes: int = TARGET_FILE_BYTES) -> Compacted:
    """Merge the one-row completion files of `manifests/_units` (every snapshot reads them all)."""
    folder = units_dir(root)
    current = delta.load(folder)
    files = delta.files(current)
    bins = _bins([f for f in files if f.bytes < target_bytes // 2], target_bytes)
    if not bins:
        return Compacted(UNITS_DIR, len(files), len(files), 0)
    actions, new, rows = [], [], 0
    try:
        for group in bins:
            data = pa.concat_tables([pq.read_table(folder / f.path, schema=UNITS_SCHEMA) for f in group])
            path = folder / data_file_name(COMPACTED, new_token(), 0)
            new.append(path)
            pq.write_table(data, path)
            fsync_path(path)
            actions += [delta.add_action(path.name, path, data.num_rows, data_change=False)]
            actions += [delta.remove_action(f) for f in group]
            rows += data.num_rows
        fsync_path(folder)
        delta.commit(current, actions, UNITS_SCHEMA, None, None, {"liveditor.operation": "compact"})
        new.clear()
    finally:
        for path in new:  # only files of a commit that did not happen
            path.unlink(missing_ok=True)
    removed = sum(len(g) for g in bins)
    return Compacted(UNITS_DIR, len(files), len(files) - removed + len(bins), rows)


def gc_dataset(root: str | os.PathLike, retention_hours: float = DEFAULT_RETENTION_HOURS, dry_run: bool = False) -> dict[str, list[str]]:
    """Vacuum every table and the units table; returns the files deleted (or, dry run, to delete) per table."""
    root = Path(root)
    out = {}
    for name, folder in [*((t, table_dir(root, t)) for t in SCHEMAS), ("_units", units_dir(root))]:
        current = delta.load(folder)
        out[name] = [] if current is None else sorted(delta.vacuum(current, retention_hours, dry_run))
    return out
