"""Snapshots: pinned table versions and the frozen list of files (and row counts) they hold.

Every reader of one training run (DataLoader workers, DDP ranks, Ray Data tasks) must see the same rows.
The parent takes a snapshot once (it reads the Delta logs) and hands it on as JSON; a worker builds its
reader from the file list alone, with pyarrow, never touching delta-rs (whose runtime does not survive
`fork`). Only files of complete units are in a snapshot, and taking one checks each table against its
units' completion records (manifests.units.check_unit_rows). A snapshot can be registered in the dataset
(`manifests/_snapshots/<name>.json`): gc then keeps every file it lists until it is released.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from manifests import delta
from manifests.errors import ManifestError
from manifests.layout import MANIFESTS_DIR, check_table_name, manifests_dir, table_dir, unit_of_file, units_dir
from manifests.media.atomic import atomic_output
from manifests.schema import SCHEMAS
from manifests.storage import Location, ObjectPath, Root, list_files, location
from manifests.units import check_unit_rows, compacted_units, complete_units, short_units, visible

SNAPSHOT_FORMAT = 1
SNAPSHOTS_DIR = "_snapshots"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$")


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

    def paths(self, table: str) -> list[Location]:
        return [location(self.root) / f.path for f in self.table(table).files]

    def missing_files(self) -> list[str]:
        """Paths (relative to the root) of the files this snapshot lists that no longer exist (gc'ed, lost)."""
        return [f.path for t in self.tables.values() for f in t.files if not (location(self.root) / f.path).is_file()]

    def to_json(self) -> dict[str, Any]:
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
    def from_json(cls, data: dict[str, Any] | str) -> Snapshot:
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


def take_snapshot(
    root: Root,
    tables: list[str] | None = None,
    versions: dict[str, int] | None = None,
    units_version: int | None = None,
    verify: bool = True,
) -> Snapshot:
    """Pin each table at `versions[table]` (default: latest) and units at `units_version` (default: latest).

    `verify=False` skips the completion-record check (validate reports it instead of stopping at it)."""
    root = location(root)
    names = tables or list(SCHEMAS)
    pinned = versions or {}
    for name in list(names) + list(pinned):
        check_table_name(name)
    if verify:
        check_logs(root, names)
    units_at, complete = complete_units(root, units_version)
    out = {}
    for name in names:
        folder = table_dir(root, name)
        current = delta.latest(folder) if pinned.get(name) is None else delta.load(folder, pinned[name])
        version = None if current is None else current.version()
        kept = [f for f in delta.files(current) if visible(unit_of_file(f.path), name, complete)]
        if verify:
            pinned_here = pinned.get(name) is not None or units_version is not None
            check_unit_rows(name, version, short_units(name, version, kept, complete, _composition(folder), pinned_here))
        prefix = f"{MANIFESTS_DIR}/{name}/"
        files = tuple(SnapshotFile(prefix + f.path, f.rows, f.bytes, unit_of_file(f.path) or "") for f in kept)
        out[name] = TableSnapshot(name, version, files)
    taken = datetime.now(UTC).isoformat(timespec="seconds")
    snapshot = Snapshot(str(root.absolute()), units_at, out, taken)
    if pinned or units_version is not None:
        missing = snapshot.missing_files()
        if missing:
            raise ManifestError(f"{len(missing)} file(s) of the pinned versions no longer exist (e.g. {missing[0]}): "
                                "gc removed them; pin a newer version, or register snapshots to keep their files")
    return snapshot


def check_logs(root: Location, tables: list[str]) -> None:
    """Refuse to read tables (or the units table) whose Delta log holds an empty commit, naming the units
    whose rows that commit held where their completion records tell."""
    empty = delta.empty_commits(units_dir(root))
    if empty:
        raise ManifestError(f"{units_dir(root)}: Delta commit {empty[0]} is empty (torn or emptied): a unit's "
                            "completion record is missing, so its rows would be skipped; refusing to read")
    for name in tables:
        empty = delta.empty_commits(table_dir(root, name))
        if not empty:
            continue
        _, complete = complete_units(root)
        units = sorted(u for u, r in complete.items() if name in r.committed and r.committed[name].version == empty[0])
        whose = f"unit {units[0]}'s rows are" if units else "the rows it added are"
        raise ManifestError(f"{name}: Delta commit {empty[0]} is empty (torn or emptied): {whose} missing; "
                            "refusing to read fewer rows")


def _composition(folder: Location) -> Callable[[str], list[tuple[str, int]] | None]:
    """The unit runs of a compacted file of the table at `folder`, read from its footer."""
    return lambda path: compacted_units(folder / path)


def snapshots_dir(root: Root) -> Location:
    return manifests_dir(root) / SNAPSHOTS_DIR


def snapshot_name(name: str) -> str:
    """A registration name: 1-128 characters from A-Z a-z 0-9 . _ = - (it becomes a file name)."""
    if not _NAME_RE.match(name):
        raise ManifestError(f"bad snapshot name {name[:60]!r}: use 1-128 characters from A-Z a-z 0-9 . _ = -")
    return name


def default_snapshot_name(snapshot: Snapshot) -> str:
    stamp = snapshot.taken_at.replace(":", "").replace("+0000", "Z").replace("+00:00", "Z")
    return f"snap-{stamp}-{secrets.token_hex(2)}"


def register_snapshot(snapshot: Snapshot, name: str) -> Location:
    """Save `snapshot` in its dataset as `name`: gc keeps its files until `release_snapshot`."""
    snapshot_name(name)
    path = snapshots_dir(snapshot.root) / f"{name}.json"
    text = json.dumps(snapshot.to_json(), sort_keys=True)
    if isinstance(path, ObjectPath):  # one PUT: whole or absent
        path.write_text(text)
        return path
    with atomic_output(path) as temp:
        temp.write_text(text)
    return path


def registered_snapshots(root: Root) -> dict[str, Snapshot]:
    """The snapshots registered in the dataset, by name (an unreadable registration is an error: gc must not
    guess what it protects)."""
    folder = snapshots_dir(root)
    out = {}
    for entry in sorted(list_files(folder), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        path = folder / entry.name
        try:
            out[path.stem] = Snapshot.from_json(path.read_text())
        except (OSError, ManifestError) as exc:
            raise ManifestError(f"{path}: unreadable registered snapshot ({exc}); fix or remove it") from None
    return out


def release_snapshot(root: Root, name: str) -> None:
    """Unregister snapshot `name`: gc may then collect the files only it kept."""
    path = snapshots_dir(root) / f"{snapshot_name(name)}.json"
    if not path.is_file():
        raise ManifestError(f"no registered snapshot {name!r}; registered: {', '.join(registered_snapshots(root)) or 'none'}")
    path.unlink()


def unreadable_files(root: Root, table: str) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """What readers leave out of `table`: committed files of units not complete in it (by unit); orphans
    (Parquet files in the table folder that no commit adds or removes: a killed writer's, until `gc`); and
    detached parts (such files of units whose completion record names this table: their commit was lost
    from the log, and gc keeps them)."""
    _, complete = complete_units(root)
    folder = table_dir(root, table)
    current = delta.load(folder)
    committed = delta.files(current)
    hidden: dict[str, list[str]] = {}
    for f in committed:
        unit = unit_of_file(f.path)
        if not visible(unit, table, complete):
            hidden.setdefault(unit or f.path, []).append(f.path)
    kept = [f for f in committed if visible(unit_of_file(f.path), table, complete)]
    short = short_units(table, None if current is None else current.version(), kept, complete, _composition(folder), False)
    named = {f.path for f in committed} | set(delta.tombstones(folder))
    untracked = sorted(p.name for p in folder.glob("*.parquet") if p.name not in named) if folder.is_dir() else []
    detached = [name for name in untracked if unit_of_file(name) in short]
    return hidden, [name for name in untracked if name not in detached], detached
