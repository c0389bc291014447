"""`manifests compact` and `manifests gc`: small files into large ones, and unreferenced files removed.

Both are safe while a job appends. Compaction reads complete units only and commits its new files and
the removal of the old ones in one Delta transaction (data unchanged; each new file's footer lists the
units whose rows it holds); a conflicting commit makes it start over from a fresh snapshot.

gc deletes a data file only when all of these hold: the latest version of its table does not add it; it
was removed by a commit (compacted away) longer ago than the retention window, or, never committed, was
last written longer ago than it; no live writer lease names its token (manifests.leases); no registered
snapshot lists it (unless told to ignore them); and no unit's completion record needs it (a part whose
commit was lost from the log is evidence, kept). The leases and the latest versions are read after the
candidates are listed, so a file that a writer commits while gc runs is protected by its lease or by
its commit. A window shorter than MIN_RETENTION_HOURS (Delta's own default, 7 days) is refused unless
asked for explicitly: unregistered snapshots older than the window may no longer be readable.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import ExitStack
from dataclasses import dataclass

import pyarrow as pa

from manifests import delta
from manifests.errors import ManifestError
from manifests.layout import COMPACTED, MANIFESTS_DIR, UNITS_DIR, new_token, table_dir, token_of_file, unit_of_file, units_dir
from manifests.leases import held_tokens, writer_lease
from manifests.reader import read_part
from manifests.schema import SCHEMAS
from manifests.snapshot import registered_snapshots, unreadable_files
from manifests.storage import Location, Root, list_files, location
from manifests.units import UNIT_ROWS_KEY, compacted_units, complete_units, visible
from manifests.writer import FooterMetadata, ManifestWriter

TARGET_FILE_BYTES = 128 << 20
DEFAULT_RETENTION_HOURS = 168.0
MIN_RETENTION_HOURS = 168.0
MAX_RETENTION_HOURS = 1e6
COMPACT_ATTEMPTS = 5


@dataclass(frozen=True)
class Compacted:
    table: str
    files_before: int
    files_after: int
    rows: int


def _bins(files: list[delta.DataFile], target: int) -> list[list[delta.DataFile]]:
    """Consecutive small files grouped up to `target` bytes; groups of one are left as they are."""
    bins: list[list[delta.DataFile]] = []
    current: list[delta.DataFile] = []
    size = 0
    for f in files:
        if current and size + f.bytes > target:
            bins.append(current)
            current, size = [], 0
        current.append(f)
        size += f.bytes
    bins.append(current)
    return [b for b in bins if len(b) > 1]


def compact_table(root: Root, table: str, target_bytes: int = TARGET_FILE_BYTES) -> Compacted:
    """Rewrite the small files of complete units of `table` into files of about `target_bytes`."""
    for _ in range(COMPACT_ATTEMPTS):
        try:
            return _compact_once(location(root), table, target_bytes)
        except delta.AlreadyCommitted:
            continue
        except ManifestError as exc:
            if "commit failed" not in str(exc):
                raise
    raise ManifestError(f"{table}: compaction kept conflicting with other commits; try again later")


def compact_units(root: Root, target_bytes: int = TARGET_FILE_BYTES) -> Compacted:
    """Merge the one-row completion files of `manifests/_units` (every snapshot reads them all)."""
    return _compact_once(location(root), UNITS_DIR, target_bytes)


def _compact_once(root: Location, name: str, target_bytes: int) -> Compacted:
    """One compaction of table `name` (or `_units`): bins of small files rewritten and swapped in one commit."""
    writer = ManifestWriter(root, name, max_bytes_per_shard=target_bytes, max_rows_per_shard=10_000_000)
    current = delta.load(writer.folder)
    files = delta.files(current)
    if not writer.units:
        _, complete = complete_units(root)
        files_in_use = [f for f in files if visible(unit_of_file(f.path), name, complete)]
    else:
        files_in_use = files
    bins = _bins([f for f in files_in_use if f.bytes < target_bytes // 2], target_bytes)
    if not bins or current is None:  # no files, no bins: a missing table has nothing to compact
        return Compacted(name, len(files), len(files), 0)
    written: list[Location] = []
    actions: list[delta.Action] = []
    rows = 0
    with ExitStack() as leases:
        try:
            for group in bins:
                token = new_token()
                leases.enter_context(writer_lease(root, token))
                data = pa.concat_tables([read_part(writer.folder / f.path, writer.base_schema) for f in group])
                footer = None if writer.units else _unit_runs_footer(writer.folder, group)
                new = writer.write_files(COMPACTED, data, written, token, footer)
                actions += [delta.add_action(p.name, p, n, data_change=False) for p, n, _ in new]
                actions += [delta.remove_action(f) for f in group]
                rows += data.num_rows
            delta.commit(current, actions, writer.schema, None, None, {"liveditor.operation": "compact"})
            added = len(written)
            written.clear()
        finally:
            writer.discard_uncommitted(written)
    removed = sum(len(g) for g in bins)
    return Compacted(name, len(files), len(files) - removed + added, rows)


def _unit_runs_footer(folder: Location, group: list[delta.DataFile]) -> FooterMetadata | None:
    """The footer writer for files compacted from `group`: each new file lists the (unit, rows) runs it holds.
    None when an input is an older compacted file whose runs are unknown."""
    runs: list[tuple[str, int]] = []
    for f in group:
        unit = unit_of_file(f.path)
        inner = compacted_units(folder / f.path) if unit == COMPACTED else [(unit or "", f.rows)]
        if inner is None:
            return None
        runs += inner

    def footer(first: int, count: int) -> dict[bytes, bytes]:
        out, position = [], 0
        for unit, n in runs:
            low, high = max(position, first), min(position + n, first + count)
            if high > low:
                out.append([unit, high - low])
            position += n
        return {UNIT_ROWS_KEY: json.dumps(out).encode()}

    return footer


def check_retention(retention_hours: float, allow_short_retention: bool) -> None:
    """A finite window within bounds; one below MIN_RETENTION_HOURS only when asked for explicitly."""
    if not math.isfinite(retention_hours) or not 0 <= retention_hours <= MAX_RETENTION_HOURS:
        raise ManifestError(f"retention of {retention_hours} hours: must be a number from 0 to {MAX_RETENTION_HOURS:g}")
    if retention_hours < MIN_RETENTION_HOURS and not allow_short_retention:
        raise ManifestError(
            f"retention of {retention_hours:g} hours is below the {MIN_RETENTION_HOURS:g}-hour floor: readers of "
            "unregistered snapshots and older versions may still need those files; allow it explicitly "
            "(--allow-short-retention) if none can"
        )


def gc_dataset(
    root: Root,
    retention_hours: float = DEFAULT_RETENTION_HOURS,
    dry_run: bool = False,
    allow_short_retention: bool = False,
    ignore_snapshots: bool = False,
) -> dict[str, list[str]]:
    """Delete what no reader or writer can need (see the module docstring); returns the files deleted (or, dry
    run, to delete) per table, `_units` included."""
    check_retention(retention_hours, allow_short_retention)
    root = location(root)
    now = time.time()
    folders = {**{t: table_dir(root, t) for t in SCHEMAS}, UNITS_DIR: units_dir(root)}
    candidates = {name: _expired(folder, now - retention_hours * 3600) for name, folder in folders.items()}
    # Read only now, after the candidates: see the module docstring.
    live_tokens, stale_leases = held_tokens(root, now)
    snapshot_files = set() if ignore_snapshots else {
        f.path for snap in registered_snapshots(root).values() for t in snap.tables.values() for f in t.files
    }
    out: dict[str, list[str]] = {}
    for name, folder in folders.items():
        if not candidates[name]:
            out[name] = []
            continue
        referenced = {f.path for f in delta.files(delta.load(folder))}
        detached = set() if name == UNITS_DIR else set(unreadable_files(root, name)[2])
        prefix = f"{MANIFESTS_DIR}/{name}/"
        out[name] = sorted(
            n for n in candidates[name]
            if n not in referenced and n not in detached and token_of_file(n) not in live_tokens
            and prefix + n not in snapshot_files
        )
        if not dry_run:
            for n in out[name]:
                (folder / n).unlink(missing_ok=True)
    if not dry_run:
        for lease in stale_leases:
            lease.unlink(missing_ok=True)
    return out


def _expired(folder: Location, cutoff: float) -> list[str]:
    """Data files in `folder` last needed before `cutoff` (seconds since the epoch): removed by a commit
    before it, or, never committed, last written before it. Whether a commit still adds them is checked later."""
    files = [f for f in list_files(folder) if f.name.endswith(".parquet")]
    if not files:
        return []
    removed_at = delta.tombstones(folder)
    return [f.name for f in files if (removed_at[f.name] / 1000 if f.name in removed_at else f.mtime) < cutoff]
