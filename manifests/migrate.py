"""`manifests migrate`: turn a dataset written with commit markers (before Delta Lake) into Delta tables.

The old layout kept `<table>/<unit>-<part:05d>.parquet` files and one `<table>/_committed/<unit>.json`
marker per unit naming them; files without a marker were never committed. Each marked unit becomes one
idempotent Delta commit of hard links to its files (same bytes, new names), then a completion record for
the tables it was in. Nothing old is deleted: the old files become orphans that `manifests gc` removes
after its retention window. Running migrate again, or after a crash, finishes the job without duplicates.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pyarrow.parquet as pq

from manifests import delta
from manifests.conform import conform
from manifests.errors import ManifestError, first_line
from manifests.layout import check_unit_id, data_file_name, fsync_path, table_dir
from manifests.reader import check_part
from manifests.schema import META_TABLE_KEY, META_VERSION_KEY, PRIMARY_KEYS, SCHEMA_VERSION, SCHEMAS
from manifests.writer import mark_unit_complete

OLD_MARKER_DIR = "_committed"


@dataclass(frozen=True)
class Migrated:
    table: str
    units: int
    files: int
    rows: int
    skipped: int  # units already in the Delta table (a re-run)


def old_units(folder: Path) -> list[tuple[str, list[Path], int]]:
    """(unit id, files, rows) of each commit marker under `folder`; a bad marker is a one-line error."""
    markers = folder / OLD_MARKER_DIR
    if not markers.is_dir():
        return []
    out = []
    for marker in sorted(p for p in markers.glob("*.json") if not p.name.startswith(".")):
        try:
            data = json.loads(marker.read_text())
            names, rows = [str(n) for n in data["files"]], int(data["rows"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"{marker}: corrupt commit marker ({first_line(exc)})") from None
        if any("/" in n or "\\" in n or n.startswith(".") for n in names):
            raise ManifestError(f"{marker}: commit marker names a file outside its table folder")
        check_unit_id(marker.stem)
        out.append((marker.stem, [folder / n for n in names], rows))
    return out


def migrate_table(root: Path, table: str) -> tuple[Migrated, dict[str, list[str]]]:
    """Commit every marked unit of `table` to its Delta table; returns counts and unit -> [table]."""
    folder = cast(Path, table_dir(root, table))  # a local root gives a local folder (migrate is local-only)
    units = old_units(folder)
    done: dict[str, list[str]] = {}
    if not units:
        return Migrated(table, 0, 0, 0, 0), done
    current = delta.load(folder) or delta.create(folder, SCHEMAS[table])
    schema = SCHEMAS[table].with_metadata({META_VERSION_KEY: SCHEMA_VERSION.encode(), META_TABLE_KEY: table.encode()})
    n_files = n_rows = skipped = 0
    for unit_id, paths, rows in units:
        metas = [check_part(p, table) for p in paths]
        if sum(m.num_rows for m in metas) != rows:
            raise ManifestError(
                f"{table}: unit {unit_id} marker says {rows} rows, its parts hold {sum(m.num_rows for m in metas)}"
            )
        data = conform(table, pq.ParquetDataset([str(p) for p in paths], schema=SCHEMAS[table]).read() if paths else [])
        _, version = delta.digest(data.sort_by([(k, "ascending") for k in PRIMARY_KEYS[table]]))
        done[unit_id] = [table]
        if current.transaction_version(unit_id) is not None:
            skipped += 1
            continue
        token = delta.digest(data)[0][:16]  # the same names on a re-run after a crash
        actions: list[delta.Action] = []
        for k, (path, meta) in enumerate(zip(paths, metas)):
            link = folder / data_file_name(unit_id, token, k)
            if not link.exists():
                os.link(path, link)
            actions.append(delta.add_action(link.name, link, meta.num_rows))
        fsync_path(folder)
        try:
            delta.commit(current, actions, schema, unit_id, version, {"liveditor.unit": unit_id, "liveditor.migrated": True})
        except delta.AlreadyCommitted:
            skipped += 1
            continue
        n_files += len(paths)
        n_rows += rows
    return Migrated(table, len(units), n_files, n_rows, skipped), done


def migrate_dataset(root: str | os.PathLike[str]) -> list[Migrated]:
    """Migrate every table, then mark each unit complete in the tables that held it."""
    root = Path(root)
    results: list[Migrated] = []
    tables_of: dict[str, list[str]] = {}
    for table in SCHEMAS:
        result, done = migrate_table(root, table)
        results.append(result)
        for unit_id, names in done.items():
            tables_of.setdefault(unit_id, []).extend(names)
    for unit_id, names in tables_of.items():
        mark_unit_complete(root, unit_id, names)
    return results
