"""Whole units: a unit is visible to readers only once every table it writes holds it, and its record vouches
for what each table holds.

Completion is one last commit to a small Delta table, `manifests/_units`, one row per unit: the tables it is
complete in, and per table what it committed (rows, the Delta application-transaction version, which is a
63-bit digest of the rows, and the table version holding the commit), plus the digest of the job config
that made it. Readers keep a data file only when its unit's record names the file's table, and check that
the table holds exactly the rows the record lists (`check_unit_rows`), so a torn or emptied commit or a
lost part is an error naming the unit, never fewer rows. Records written by earlier versions carry no
counts and are not checked. The records are written by manifests.writer (the one commit path).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from manifests import delta
from manifests.errors import ManifestError
from manifests.layout import COMPACTED, check_unit_id, unit_of_file, units_dir
from manifests.storage import Location, Root, arrow_source

COMMITTED_TYPE = pa.list_(
    pa.struct([("table", pa.string()), ("rows", pa.int64()), ("txn", pa.int64()), ("version", pa.int64())])
)
UNITS_SCHEMA = pa.schema(
    [
        pa.field("unit_id", pa.string(), nullable=False),
        pa.field("tables", pa.list_(pa.string()), nullable=False),
        pa.field("completed_at", pa.string(), nullable=False),
        pa.field("committed", COMMITTED_TYPE),
        pa.field("config_digest", pa.string()),
    ]
)
UNIT_ROWS_KEY = b"liveditor.unit_rows"
"""Footer key of a compacted file: JSON [[unit, rows], ...] in file order, so every unit's rows stay countable."""


@dataclass(frozen=True)
class TableCommit:
    """What one unit committed to one table: rows, its transaction version (a digest of the rows), and a
    table version at or after the commit (the check skips pinned versions older than it)."""

    table: str
    rows: int
    txn: int
    version: int


@dataclass(frozen=True)
class UnitRecord:
    unit_id: str
    tables: frozenset[str]
    committed: dict[str, TableCommit]  # empty for records written by earlier versions
    config_digest: str | None


def tables_version(tables: Iterable[str]) -> int:
    """The units table's transaction version for a unit: a digest of the sorted table names it is complete in."""
    return delta.digest(pa.table({"t": sorted(set(tables))}))[1]


def record_row(unit_id: str, commits: list[TableCommit], completed_at: str, config_digest: str | None) -> pa.Table:
    names = sorted(c.table for c in commits)
    committed = [c.__dict__ for c in sorted(commits, key=lambda c: c.table)]
    return pa.table({"unit_id": [unit_id], "tables": [names], "completed_at": [completed_at],
                     "committed": [committed], "config_digest": [config_digest]}, schema=UNITS_SCHEMA)


def is_unit_complete(root: Root, unit_id: str, tables: Iterable[str]) -> bool:
    """Whether `unit_id` was marked complete with exactly these tables."""
    check_unit_id(unit_id)
    current = delta.latest(units_dir(root))
    return current is not None and current.transaction_version(unit_id) == tables_version(tables)


def complete_units(root: Root, version: int | None = None) -> tuple[int | None, dict[str, UnitRecord]]:
    """(units-table version, unit id -> its completion record) at `version` or the latest."""
    current = delta.latest(units_dir(root)) if version is None else delta.load(units_dir(root), version)
    if current is None:
        return None, {}
    folder = units_dir(root)
    out: dict[str, UnitRecord] = {}
    for f in delta.files(current):  # file by file: pyarrow.dataset would import pandas into every summary
        source, fs = arrow_source(folder / f.path)
        parquet = pq.ParquetFile(source, filesystem=fs)
        columns = [c for c in UNITS_SCHEMA.names if c in parquet.schema_arrow.names and c != "completed_at"]
        for row in parquet.read(columns=columns).to_pylist():
            commits = {c["table"]: TableCommit(**c) for c in row.get("committed") or ()}
            out[row["unit_id"]] = UnitRecord(row["unit_id"], frozenset(row["tables"]), commits, row.get("config_digest"))
    return current.version(), out


def visible(unit: str | None, table: str, complete: dict[str, UnitRecord]) -> bool:
    """Whether readers see a data file of `unit` in `table`: compacted files, and files of complete units."""
    if unit == COMPACTED:
        return True
    record = None if unit is None else complete.get(unit)
    return record is not None and table in record.tables


def compacted_units(path: Location) -> list[tuple[str, int]] | None:
    """The (unit, rows) runs of a compacted file, from its footer; None for a file compacted by an earlier version."""
    source, fs = arrow_source(path)
    meta = pq.read_metadata(source, filesystem=fs).metadata or {}
    if UNIT_ROWS_KEY not in meta:
        return None
    return [(str(unit), int(rows)) for unit, rows in json.loads(meta[UNIT_ROWS_KEY])]


def short_units(
    table: str,
    version: int | None,
    files: list[delta.DataFile],
    complete: dict[str, UnitRecord],
    composition: Callable[[str], list[tuple[str, int]] | None],
    pinned: bool,
) -> dict[str, tuple[int, int]]:
    """Units whose rows in this table version differ from their completion record: unit -> (recorded, found).

    `files` are the version's visible files; `composition(path)` gives a compacted file's unit runs. A
    latest version must hold every recorded unit (records are written after their tables); a `pinned` one
    only those recorded at or before it. Rows in files compacted by earlier versions cannot be attributed to a unit;
    they may cover a shortfall.
    """
    at = -1 if version is None else version
    expected = {u: r.committed[table].rows for u, r in complete.items()
                if table in r.committed and (not pinned or r.committed[table].version <= at)}
    if not expected:
        return {}
    found: Counter[str] = Counter()
    unattributed = 0
    for f in files:
        unit = unit_of_file(f.path)
        runs = composition(f.path) if unit == COMPACTED else [(unit or "", f.rows)]
        if runs is None:
            unattributed += f.rows
            continue
        for run_unit, rows in runs:
            found[run_unit] += rows
    short = {u: (rows, found[u]) for u, rows in expected.items() if found[u] != rows}
    deficits = [recorded - held for recorded, held in short.values()]
    if short and unattributed and min(deficits) > 0 and sum(deficits) <= unattributed:
        return {}
    return short


def check_unit_rows(table: str, version: int | None, short: dict[str, tuple[int, int]]) -> None:
    """Refuse a table version whose rows differ from its units' completion records (see `short_units`)."""
    if not short:
        return
    unit = min(short)
    recorded, held = short[unit]
    holds = "does not exist" if version is None else f"at version {version} holds {held}"
    raise ManifestError(
        f"{table}: unit {unit} committed {recorded} rows by its completion record, but the table {holds}: "
        "a Delta commit was lost, emptied or rewritten, or a part was removed; refusing to read fewer rows"
    )
