"""The one place that talks to delta-rs: open a table at a version, list its files, commit files
as an idempotent transaction, remove files (compaction) and vacuum (gc). A table folder is a local Path or
an `s3://` ObjectPath (manifests.storage); delta-rs commits to S3 with conditional puts, so concurrent
writers there are as safe as on a local disk.

A unit's commit carries a Delta application transaction (appId = unit id, version = a 63-bit digest of
the unit's rows). Delta's conflict checker fails a commit whose appId a concurrent winner also set, and
a writer that loads the table first sees the appId of any earlier commit, so a unit lands at most once
and a different-rows re-commit is recognised by its digest.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, TypeAlias, cast

import pyarrow as pa

from manifests.errors import ManifestError, first_line
from manifests.storage import Location, ObjectPath, delta_options, list_files

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from deltalake.transaction import AddAction, RemoveAction

    Action: TypeAlias = AddAction | RemoveAction  # what one commit holds: files added, and (compaction) files removed

MAX_COMMIT_RETRIES = 10_000
"""delta-rs rebases a losing append on the winner and retries; many writers on one table need many tries."""
_DATA_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*\.parquet$")
"""Our tables are flat: a data file's log path is a plain file name in the table folder, nothing else."""


@dataclass(frozen=True)
class DataFile:
    """One data file of a table version: path relative to the table folder, rows and bytes."""

    path: str
    rows: int
    bytes: int


def _deltalake() -> ModuleType:  # imported lazily: footer-only commands stay fast, and forked workers never touch it
    import deltalake
    import deltalake.exceptions
    import deltalake.schema
    import deltalake.transaction

    return deltalake


_OPEN: dict[tuple[int, str], DeltaTable] = {}
"""Latest-version tables this process has open, refreshed incrementally (a fresh load replays the log
since the last checkpoint). Keyed by pid too: a forked child must not reuse its parent's delta-rs objects."""


def latest(folder: Location) -> DeltaTable | None:
    """The DeltaTable at `folder` at its latest version (None when none exists), reusing this process's copy."""
    key = (os.getpid(), str(folder))
    table = _OPEN.get(key)
    if table is None:
        table = load(folder)
        if table is not None:
            _OPEN[key] = table
        return table
    table.update_incremental()
    return table


def load(folder: Location, version: int | None = None) -> DeltaTable | None:
    """The DeltaTable at `folder` (at `version`, or the latest), or None when no table was ever created."""
    dl = _deltalake()
    if not (folder / "_delta_log").is_dir():
        if version is not None:
            raise ManifestError(f"{folder}: no Delta table, so no version {version}")
        return None
    try:
        return cast("DeltaTable", dl.DeltaTable(str(folder), version=version, storage_options=delta_options(folder)))
    except dl.exceptions.TableNotFoundError:
        if version is not None:
            raise ManifestError(f"{folder}: no Delta table, so no version {version}") from None
        return None
    except (dl.exceptions.DeltaError, OSError) as exc:
        raise ManifestError(f"{folder}: cannot open Delta table at version {version} ({first_line(exc)})") from None


def empty_commits(folder: Location) -> list[int]:
    """Versions whose commit file is empty (torn or emptied). delta-rs reads such a file as a commit with no
    actions, so the rows it added would silently vanish; readers refuse them (a truncated one delta-rs
    refuses itself)."""
    return sorted(int(f.name[:-5]) for f in list_files(folder / "_delta_log")
                  if f.name.endswith(".json") and f.name[:-5].isdigit() and f.size == 0)


def create(folder: Location, schema: pa.Schema) -> DeltaTable:
    """Create the table if absent, add the columns a newer minor schema version has, and return it at its
    latest version (so Delta readers other than ours see every column we write).

    Creation is serialised by an flock on `<folder>/../.<name>.create.lock`: delta-rs lets two racing
    creators both commit table metadata (versions 0 and 1), and a metadata change between a writer's read
    and its commit hides a concurrent commit of the same application id from the conflict checker.

    Object storage has no flock. There the creators race: the conditional put of version 0 admits one, and a
    loser either fails ("already exists", a conflict: ignored, the table is there) or lands an identical
    metadata commit as version 1. A writer that read the table before such a commit fails its own commit with
    `Raced`, and ManifestWriter.commit then starts over from a fresh read (so the application-id check is
    made against a stable metadata version, which is what the flock buys locally).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(folder, ObjectPath):
        _create_or_evolve(folder, schema)
    else:
        with open(folder.parent / f".{folder.name}.create.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                _create_or_evolve(folder, schema)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    table = latest(folder)
    if table is None:
        raise ManifestError(f"{folder}: could not create the Delta table")
    return table


def _create_or_evolve(folder: Location, schema: pa.Schema) -> None:
    dl = _deltalake()
    existing = latest(folder)  # this process's copy, brought up to date: no full log replay per commit
    if existing is not None:
        _add_missing_columns(existing, schema)
        return
    try:
        dl.DeltaTable.create(str(folder), schema=schema, mode="error", storage_options=delta_options(folder))
    except dl.exceptions.DeltaError as exc:  # on object storage: a concurrent creator won (see `create`)
        if not isinstance(folder, ObjectPath):
            raise
        if load(folder) is None:
            raise ManifestError(f"{folder}: cannot create the Delta table ({first_line(exc)})") from None


def _add_missing_columns(table: DeltaTable, schema: pa.Schema) -> None:
    """Evolve a table made by an older 1.x writer: one metadata commit adding our new nullable columns."""
    dl = _deltalake()
    have = {f.name for f in table.schema().fields}
    missing = [f for f in dl.schema.Schema.from_arrow(schema).fields if f.name not in have]
    if missing:
        try:
            table.alter.add_columns(missing)
        except dl.exceptions.DeltaError as exc:
            raise ManifestError(f"{table.table_uri}: cannot add columns {[f.name for f in missing]} "
                                f"({first_line(exc)})") from None


def files(table: DeltaTable | None) -> list[DataFile]:
    """The table version's data files (Delta's add actions), sorted by path; a path that is not a plain file
    name in the table folder (`../x.parquet`, an absolute path, a URL) is refused, never read."""
    if table is None:
        return []
    actions = pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=False)).read_all()  # pa.table() imports pandas
    paths = actions.column("path").to_pylist()
    for path in paths:
        check_data_path(table.table_uri, path)
    sizes = actions.column("size_bytes").to_pylist()
    rows = actions.column("num_records").to_pylist() if "num_records" in actions.column_names else [None] * len(paths)
    return sorted((DataFile(p, -1 if r is None else int(r), int(s)) for p, r, s in zip(paths, rows, sizes)), key=lambda f: f.path)


def check_data_path(where: str, path: str) -> None:
    if not isinstance(path, str) or not _DATA_FILE_RE.match(path):
        raise ManifestError(f"{where}: the Delta log names data file {path!r}, which is not a file of this table; "
                            "refusing to read outside the table")


DIGEST_SLICE_ROWS = 16_384


def tombstones(folder: Location) -> dict[str, int]:
    """Files a commit removed (compacted away, kept for older versions until gc) and when, in ms since the
    epoch, read from the JSON commits of the log. Tombstones that only a checkpoint holds are missed: such a
    file reads as untracked, and gc then ages it by its modification time instead."""
    out: dict[str, int] = {}
    log = folder / "_delta_log"
    for entry in list_files(log):
        if not entry.name.endswith(".json"):
            continue
        for line in (log / entry.name).read_text().splitlines():
            if line.startswith('{"remove"'):
                remove = json.loads(line)["remove"]
                out[remove["path"]] = int(remove.get("deletionTimestamp") or 0)
    return out


def digest(data: pa.Table) -> tuple[str, int]:
    """SHA-256 of a table's Arrow IPC bytes, and its first 63 bits as a Delta transaction version.

    Hashed in fixed slices of rows, each combined into one chunk: the digest does not depend on how the
    caller chunked its arrays, and no slice is large enough to overflow 32-bit offsets.
    """
    hasher = hashlib.sha256(str(data.schema).encode())
    for offset in range(0, data.num_rows, DIGEST_SLICE_ROWS):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.schema) as stream:
            stream.write_table(data.slice(offset, DIGEST_SLICE_ROWS).combine_chunks())
        hasher.update(sink.getvalue())
    text = hasher.hexdigest()
    return text, int(text[:16], 16) & 0x7FFF_FFFF_FFFF_FFFF


def add_action(name: str, path: Location, rows: int, data_change: bool = True) -> AddAction:
    """An add action for a file in the table folder; `data_change=False` for rewrites (compaction)."""
    dl = _deltalake()
    stat = path.stat()
    stats = json.dumps({"numRecords": rows})
    return cast("AddAction", dl.transaction.AddAction(name, stat.st_size, {}, int(stat.st_mtime * 1000), data_change, stats))


def remove_action(entry: DataFile) -> RemoveAction:
    dl = _deltalake()
    return cast("RemoveAction", dl.transaction.RemoveAction(entry.path, False, int(time.time() * 1000), entry.bytes, {}))


class AlreadyCommitted(Exception):
    """A concurrent writer committed the same application id first."""


class Raced(ManifestError):
    """The table's metadata or protocol changed since it was read (a racing creator on object storage, or a
    schema evolution): the commit did not land; read the table again and retry."""


def commit(
    table: DeltaTable,
    actions: list[Action],
    schema: pa.Schema,
    app_id: str | None,
    app_version: int | None,
    metadata: dict[str, object],
) -> int:
    """Commit `actions` in one transaction (with an application transaction when `app_id` is set); new version.

    Raises AlreadyCommitted when a concurrent commit set the same app id (the caller re-reads and decides).
    """
    dl = _deltalake()
    txns = [dl.transaction.Transaction(app_id, app_version)] if app_id is not None else None
    props = dl.transaction.CommitProperties(
        custom_metadata=metadata, max_commit_retries=MAX_COMMIT_RETRIES, app_transactions=txns
    )
    try:
        table.create_write_transaction(actions, "append", schema, commit_properties=props)
    except dl.exceptions.CommitFailedError as exc:
        if "Concurrent transaction" in str(exc):
            raise AlreadyCommitted(str(exc)) from None
        if "changed since last commit" in str(exc):
            raise Raced(f"{table.table_uri}: commit failed ({first_line(exc)})") from None
        raise ManifestError(f"{table.table_uri}: commit failed ({first_line(exc)})") from None
    except dl.exceptions.DeltaError as exc:
        raise ManifestError(f"{table.table_uri}: commit failed ({first_line(exc)})") from None
    table.update_incremental()
    return table.version()
