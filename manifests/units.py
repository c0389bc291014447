"""Whole units: a unit is visible to readers only once every table it writes holds it.

Completion is one last commit to a small Delta table, `manifests/_units` (unit_id, tables, completed_at),
again with the unit id as application transaction, so it is idempotent and races safely. Readers keep
a data file only when its unit's completion record names the file's table.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from manifests import delta
from manifests.conform import Rows
from manifests.errors import ManifestError
from manifests.layout import CommitInfo, check_table_name, check_unit_id, data_file_name, fsync_path, new_token, units_dir
from manifests.writer import ManifestWriter

UNITS_SCHEMA = pa.schema(
    [
        pa.field("unit_id", pa.string(), nullable=False),
        pa.field("tables", pa.list_(pa.string()), nullable=False),
        pa.field("completed_at", pa.string(), nullable=False),
    ]
)


def _tables_version(tables: list[str]) -> int:
    return delta.digest(pa.table({"t": sorted(tables)}))[1]


def mark_unit_complete(root: str | os.PathLike, unit_id: str, tables: Iterable[str], checked: bool = False) -> None:
    """Record that `unit_id` is complete in `tables` (each must hold its commit); a repeat is a no-op.

    `checked=True` is for the writer, which has just seen its own commit land."""
    check_unit_id(unit_id)
    names = sorted(set(tables))
    for table in names:
        check_table_name(table)
        if not checked and not ManifestWriter(root, table).is_committed(unit_id):
            raise ManifestError(f"unit {unit_id} cannot be complete: table {table} does not hold it")
    folder = units_dir(root)
    version = _tables_version(names)
    current = delta.latest(folder) or delta.create(folder, UNITS_SCHEMA)
    if _check_existing(current, unit_id, version, names):
        return
    row = pa.table(
        {"unit_id": [unit_id], "tables": [names], "completed_at": [datetime.now(timezone.utc).isoformat(timespec="seconds")]},
        schema=UNITS_SCHEMA,
    )
    path = folder / data_file_name(unit_id, new_token(), 0)
    pq.write_table(row, path)
    fsync_path(path)
    fsync_path(folder)
    try:
        delta.commit(current, [delta.add_action(path.name, path, 1)], UNITS_SCHEMA, unit_id, version, {"liveditor.unit": unit_id})
    except delta.AlreadyCommitted:
        path.unlink(missing_ok=True)
        current.update_incremental()
        if not _check_existing(current, unit_id, version, names):
            raise ManifestError(f"unit {unit_id}: completion lost a race, but the winner is not visible") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _check_existing(current, unit_id: str, version: int, names: list[str]) -> bool:
    found = None if current is None else current.transaction_version(unit_id)
    if found is None:
        return False
    if found != version:
        raise ManifestError(f"unit {unit_id} is already complete with other tables than {', '.join(names)}")
    return True


def is_unit_complete(root: str | os.PathLike, unit_id: str, tables: Iterable[str]) -> bool:
    """Whether `unit_id` was marked complete with exactly these tables."""
    check_unit_id(unit_id)
    current = delta.latest(units_dir(root))
    return current is not None and current.transaction_version(unit_id) == _tables_version(sorted(set(tables)))


def complete_units(root: str | os.PathLike, version: int | None = None) -> tuple[int | None, dict[str, frozenset[str]]]:
    """(units-table version, unit id -> tables it is complete in) at `version` or the latest."""
    current = delta.latest(units_dir(root)) if version is None else delta.load(units_dir(root), version)
    if current is None:
        return None, {}
    folder = units_dir(root)
    out: dict[str, frozenset[str]] = {}
    for f in delta.files(current):  # file by file: pyarrow.dataset would import pandas into every summary
        for row in pq.ParquetFile(folder / f.path).read(columns=["unit_id", "tables"]).to_pylist():
            out[row["unit_id"]] = frozenset(row["tables"])
    return current.version(), out


def commit_unit_tables(root: str | os.PathLike, unit_id: str, rows_by_table: Mapping[str, Rows]) -> list[CommitInfo]:
    """Commit a unit's rows to each table (empty tables included), then mark the unit complete in all of them."""
    infos = [ManifestWriter(root, table).write(unit_id, rows, complete=False) for table, rows in rows_by_table.items()]
    mark_unit_complete(root, unit_id, rows_by_table)
    return infos
