"""Where tables, parts and commit markers live on disk, and how markers are read.

Layout: <root>/manifests/<table>/<unit_id>-<part:05d>.parquet, with one commit marker per unit at
<root>/manifests/<table>/_committed/<unit_id>.json. Only files named by a marker are part of the
table; anything else in the folder (temp files, parts of a killed run) is invisible to readers.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from manifests.errors import ManifestError
from manifests.schema import SCHEMAS

MANIFESTS_DIR = "manifests"
MARKER_DIR = "_committed"
TEMP_TAG = ".tmp-"
_UNIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,199}$")


@dataclass(frozen=True)
class CommitInfo:
    """What a commit marker records about one unit of work; `skipped` means it was already committed."""

    table: str
    unit_id: str
    files: tuple[str, ...]
    rows: int
    bytes: int
    schema_version: str
    written_at: str
    skipped: bool = False

    def to_json(self) -> dict:
        return {
            "table": self.table,
            "unit_id": self.unit_id,
            "files": list(self.files),
            "rows": self.rows,
            "bytes": self.bytes,
            "schema_version": self.schema_version,
            "written_at": self.written_at,
        }


def check_table_name(table: str) -> None:
    if table not in SCHEMAS:
        raise ManifestError(f"unknown table {table!r}; tables are: {', '.join(SCHEMAS)}")


def check_unit_id(unit_id: str) -> None:
    if not isinstance(unit_id, str) or not _UNIT_RE.match(unit_id):
        raise ManifestError(
            f"bad unit id {unit_id!r}: use 1-200 characters from A-Z a-z 0-9 . _ = - (no slashes)"
        )


def table_dir(root: str | os.PathLike, table: str) -> Path:
    check_table_name(table)
    return Path(root) / MANIFESTS_DIR / table


def marker_dir(root: str | os.PathLike, table: str) -> Path:
    return table_dir(root, table) / MARKER_DIR


def marker_path(root: str | os.PathLike, table: str, unit_id: str) -> Path:
    check_unit_id(unit_id)
    return marker_dir(root, table) / f"{unit_id}.json"


def part_name(unit_id: str, part: int) -> str:
    return f"{unit_id}-{part:05d}.parquet"


def unit_leftovers(folder: Path, unit_id: str) -> list[Path]:
    """Parts and temp files of `unit_id` in `folder` (from a killed run); never another unit's files."""
    if not folder.is_dir():
        return []
    esc = re.escape(unit_id)
    pattern = re.compile(
        rf"^(?:{esc}-\d{{5}}\.parquet|\.{esc}-\d{{5}}\.parquet{re.escape(TEMP_TAG)}.*|\.{esc}\.json{re.escape(TEMP_TAG)}.*)$"
    )
    return sorted(p for p in folder.iterdir() if pattern.match(p.name))


def read_marker(path: Path, table: str) -> CommitInfo:
    """Parse one commit marker; a marker that is not valid JSON of the expected shape is an error."""
    try:
        data = json.loads(path.read_text())
        files = tuple(str(f) for f in data["files"])
        info = CommitInfo(
            table=table,
            unit_id=path.stem,
            files=files,
            rows=int(data["rows"]),
            bytes=int(data["bytes"]),
            schema_version=str(data["schema_version"]),
            written_at=str(data["written_at"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"{path}: corrupt commit marker ({type(exc).__name__}: {exc})") from None
    for name in files:
        if "/" in name or "\\" in name or name.startswith("."):
            raise ManifestError(f"{path}: commit marker names a file outside its table folder: {name!r}")
    return info


def committed_units(root: str | os.PathLike, table: str) -> list[CommitInfo]:
    """All commit markers of a table, sorted by unit id; a missing table has none."""
    folder = marker_dir(root, table)
    if not folder.is_dir():
        return []
    markers = sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    return [read_marker(p, table) for p in markers]


def fsync_dir(folder: Path) -> None:
    """Make renames inside `folder` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
