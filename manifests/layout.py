"""Where tables and their data files live on disk, and what a unit's commit reports.

Layout: each table is a Delta Lake table at <root>/manifests/<table>/ (Parquet files plus `_delta_log/`),
and the completion records of whole units are a small Delta table at <root>/manifests/_units/. A data
file is named `<unit_id>.<16 hex>-<part:05d>.parquet`, so every reader knows which unit a file holds
without opening it; compaction writes `compact.<16 hex>-<part:05d>.parquet` (complete units only).
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from manifests.errors import ManifestError
from manifests.schema import SCHEMAS
from manifests.storage import Location, ObjectPath, Root, location

MANIFESTS_DIR = "manifests"
UNITS_DIR = "_units"
COMPACTED = "compact"
"""Pseudo unit of files written by `compact` (their rows belong to units that were all complete)."""
_UNIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,199}$")
_FILE_RE = re.compile(r"^(?P<unit>.+)\.(?P<token>[0-9a-f]{16})-(?P<part>\d{5})\.parquet$")


@dataclass(frozen=True)
class CommitInfo:
    """What one unit's commit to one table did; `skipped` means the same rows were already committed."""

    table: str
    unit_id: str
    files: tuple[str, ...]
    rows: int
    bytes: int
    schema_version: str
    written_at: str
    version: int | None = None  # the table's Delta version holding the unit
    txn: int | None = None  # the commit's application-transaction version (a 63-bit digest of the rows)
    skipped: bool = False


def check_table_name(table: str) -> None:
    if table not in SCHEMAS:
        raise ManifestError(f"unknown table {table!r}; tables are: {', '.join(SCHEMAS)}")


def check_unit_id(unit_id: str) -> None:
    if not isinstance(unit_id, str) or not _UNIT_RE.match(unit_id) or unit_id == COMPACTED:
        raise ManifestError(
            f"bad unit id {unit_id!r}: use 1-200 characters from A-Z a-z 0-9 . _ = - (no slashes, not {COMPACTED!r})"
        )


def manifests_dir(root: Root) -> Location:
    return location(root) / MANIFESTS_DIR


def table_dir(root: Root, table: str) -> Location:
    check_table_name(table)
    return manifests_dir(root) / table


def units_dir(root: Root) -> Location:
    return manifests_dir(root) / UNITS_DIR


def data_file_name(unit_id: str, token: str, part: int) -> str:
    return f"{unit_id}.{token}-{part:05d}.parquet"


def new_token() -> str:
    return secrets.token_hex(8)


def unit_of_file(name: str) -> str | None:
    """The unit a data file holds (`compact` for compacted files); None for a name we never write."""
    found = _FILE_RE.match(Path(name).name)
    return found.group("unit") if found else None


def token_of_file(name: str) -> str | None:
    """The writer token in a data file's name (the token a writer lease protects); None for foreign names."""
    found = _FILE_RE.match(Path(name).name)
    return found.group("token") if found else None


def fsync_path(path: Location) -> None:
    """Make a file's bytes, or a folder's entries (renames, new files), durable; no-op where unsupported
    (object storage: a PUT is durable once it returns)."""
    if isinstance(path, ObjectPath):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
