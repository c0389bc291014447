"""The one writer of manifest shards: validated rows, atomic parts, then a commit marker.

A unit (one batch of work) becomes 1..n parts, rolled by rows and bytes. Each part is written to a
temp name, fsync'ed and renamed; only after all parts are in place is the unit's commit marker
written (temp + rename). Readers see a unit only through its marker, so a run killed at any point
leaves nothing a reader would pick up, and a re-run replaces the leftovers.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from manifests.conform import Rows, conform
from manifests.errors import ManifestError
from manifests.layout import (
    TEMP_TAG,
    CommitInfo,
    fsync_dir,
    marker_dir,
    marker_path,
    part_name,
    read_marker,
    table_dir,
    unit_leftovers,
)
from manifests.schema import META_TABLE_KEY, META_VERSION_KEY, SCHEMA_VERSION, SCHEMAS

DEFAULT_ROW_GROUP_ROWS = 65_536


class ManifestWriter:
    """Writes units of rows of one table under `root`; safe to use from many processes on distinct units."""

    def __init__(
        self,
        root: str | os.PathLike,
        table: str,
        max_rows_per_shard: int = 250_000,
        max_bytes_per_shard: int = 128 << 20,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        compression: str = "zstd",
    ) -> None:
        self.folder = table_dir(root, table)
        if min(max_rows_per_shard, max_bytes_per_shard, row_group_rows) < 1:
            raise ManifestError("ManifestWriter: shard and row-group limits must be positive")
        self.root = Path(root)
        self.table = table
        self.max_rows = max_rows_per_shard
        self.max_bytes = max_bytes_per_shard
        self.row_group_rows = row_group_rows
        self.compression = compression
        self.schema = SCHEMAS[table].with_metadata(
            {META_VERSION_KEY: SCHEMA_VERSION.encode(), META_TABLE_KEY: table.encode()}
        )

    def is_committed(self, unit_id: str) -> bool:
        return marker_path(self.root, self.table, unit_id).is_file()

    def write(self, unit_id: str, rows: Rows) -> CommitInfo:
        """Write one unit atomically; a unit already committed is skipped and its marker returned."""
        marker = marker_path(self.root, self.table, unit_id)
        if marker.is_file():
            info = read_marker(marker, self.table)
            return replace(info, skipped=True)
        data = conform(self.table, rows)
        marker.parent.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers(unit_id)
        written: list[Path] = []
        try:
            files = self._write_parts(unit_id, data, written)
            info = CommitInfo(
                table=self.table,
                unit_id=unit_id,
                files=tuple(p.name for p in files),
                rows=data.num_rows,
                bytes=sum(p.stat().st_size for p in files),
                schema_version=SCHEMA_VERSION,
                written_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            self._commit(marker, info, written)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return info

    def _remove_leftovers(self, unit_id: str) -> None:
        for path in unit_leftovers(self.folder, unit_id) + unit_leftovers(marker_dir(self.root, self.table), unit_id):
            path.unlink(missing_ok=True)

    def _write_parts(self, unit_id: str, data: pa.Table, written: list[Path]) -> list[Path]:
        """Write `data` as parts rolled at max rows or max bytes (checked after each row group)."""
        parts: list[Path] = []
        offset = 0
        while offset < data.num_rows:
            final = self.folder / part_name(unit_id, len(parts))
            temp = self.folder / f".{final.name}{TEMP_TAG}{secrets.token_hex(4)}"
            written.append(temp)
            with open(temp, "wb") as sink:
                writer = pq.ParquetWriter(sink, self.schema, compression=self.compression)
                rows_in_part = 0
                while offset < data.num_rows and (rows_in_part == 0 or (rows_in_part < self.max_rows and sink.tell() < self.max_bytes)):
                    n = min(self.row_group_rows, self.max_rows - rows_in_part, data.num_rows - offset)
                    writer.write_table(data.slice(offset, n), row_group_size=n)
                    offset += n
                    rows_in_part += n
                writer.close()
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(temp, final)
            written[-1] = final
            parts.append(final)
        fsync_dir(self.folder)
        return parts

    def _commit(self, marker: Path, info: CommitInfo, written: list[Path]) -> None:
        temp = marker.parent / f".{marker.name}{TEMP_TAG}{secrets.token_hex(4)}"
        written.append(temp)
        with open(temp, "w") as sink:
            json.dump(info.to_json(), sink, indent=1)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, marker)
        written.clear()  # committed: from here on nothing may be rolled back
        fsync_dir(marker.parent)
