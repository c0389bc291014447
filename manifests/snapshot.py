"""Snapshots: pinned table versions and the frozen list of files (and row counts) they hold.

Every reader of one training run (DataLoader workers, DDP ranks, Ray Data tasks) must see the same rows.
The parent takes a snapshot once (it reads the Delta logs) and hands it on as JSON; a worker builds its
reader from the file list alone, with pyarrow, never touching delta-rs (whose runtime does not survive
`fork`). Only files of complete units are in a snapshot.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from manifests import delta
from manifests.errors import ManifestError
from manifests.layout import COMPACTED, MANIFESTS_DIR, check_table_name, table_dir, unit_of_file
from manifests.schema import SCHEMAS
from manifests.units import complete_units

SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class SnapshotFile:
    """One data file: path relative to the dataset root, its rows (from the Delta log), bytes and unit."""

    path: str
    rows: int
    bytes: int
    unit: str


@dataclass(frozen=True)
class TableSnapshot:
    table: str
    version: int | None  # None: the table did not exist
    files: tuple[SnapshotFile, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


@dataclass(frozen=True)
class Snapshot:
    root: str
    units_version: int | None
    tables: dict[str, TableSnapshot]
    taken_at: str

    def table(self, table: str) -> TableSnapshot:
        check_table_name(table)
        if table not in self.tables:
            raise ManifestError(f"snapshot has no table {table!r}; it pins {', '.join(self.tables)}")
        return self.tables[table]

    def paths(self, table: str) -> list[Path]:
        return [Path(self.root) / f.path for f in self.table(table).files]

    def to_json(self) -> dict:
        return {
            "format": SNAPSHOT_FORMAT,
            "root": self.root,
            "taken_at": self.taken_at,
            "units_version": self.units_version,
            "tables": {
                name: {"version": t.version, "rows": t.rows, "files": [f.__dict__ for f in t.files]}
                for name, t in self.tables.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict | str) -> Snapshot:
        """Rebuild a snapshot from `to_json` output (a dict or its JSON text); no Delta log is read."""
        try:
            data = json.loads(data) if isinstance(data, str) else data
            if data["format"] != SNAPSHOT_FORMAT:
                raise ManifestError(f"snapshot format {data['format']} is not {SNAPSHOT_FORMAT}")
            tables = {
                name: TableSnapshot(name, t["version"], tuple(SnapshotFile(**f) for f in t["files"]))
                for name, t in data["tables"].items()
            }
            for name in tables:
                check_table_name(name)
            return cls(str(data["root"]), data["units_version"], tables, str(data["taken_at"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"not a manifests snapshot ({type(exc).__name__}: {exc})") from None


def visible(unit: str | None, table: str, complete: dict[str, frozenset[str]]) -> bool:
    return unit == COMPACTED or (unit is not None and table in complete.get(unit, ()))


def take_snapshot(
    root: str | os.PathLike,
    tables: list[str] | None = None,
    versions: dict[str, int] | None = None,
    units_version: int | None = None,
) -> Snapshot:
    """Pin each table at `versions[table]` (default: latest) and units at `units_version` (default: latest)."""
    root = Path(root)
    names = tables or list(SCHEMAS)
    pinned = versions or {}
    for name in list(names) + list(pinned):
        check_table_name(name)
    units_at, complete = complete_units(root, units_version)
    out = {}
    for name in names:
        folder = table_dir(root, name)
        current = delta.latest(folder) if pinned.get(name) is None else delta.load(folder, pinned[name])
        prefix = f"{MANIFESTS_DIR}/{name}/"
        files = tuple(
            SnapshotFile(prefix + f.path, f.rows, f.bytes, unit_of_file(f.path) or "")
            for f in delta.files(current)
            if visible(unit_of_file(f.path), name, complete)
        )
        out[name] = TableSnapshot(name, None if current is None else current.version(), files)
    taken = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Snapshot(str(root.absolute()), units_at, out, taken)


def unreadable_files(root: str | os.PathLike, table: str) -> tuple[dict[str, list[str]], list[str]]:
    """What readers leave out of `table`: committed files of units not complete in it (by unit), and
    orphans (Parquet files in the table folder that no commit adds or removes: a killed writer's, until `gc`)."""
    _, complete = complete_units(root)
    folder = table_dir(root, table)
    committed = delta.files(delta.load(folder))
    hidden: dict[str, list[str]] = {}
    for f in committed:
        unit = unit_of_file(f.path)
        if not visible(unit, table, complete):
            hidden.setdefault(unit or f.path, []).append(f.path)
    named = {f.path for f in committed} | (delta.removed_paths(folder) if folder.is_dir() else set())
    orphans = sorted(p.name for p in folder.glob("*.parquet") if p.name not in named) if folder.is_dir() else []
    return hidden, orphans
