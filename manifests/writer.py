"""The one writer of manifest rows and of unit completion records: Parquet files committed as one Delta transaction.

A unit's rows are written as 1..n files (rolled by rows and bytes, row groups sized by bytes), each
fsync'ed with its folder (on object storage: each uploaded whole), under a writer lease (manifests.leases,
so gc never collects them), then added to the table in one commit whose application transaction is the
unit id (see manifests.delta). A unit committed before is recognised: the same rows are a no-op, other rows
an error. A writer never deletes a committed file; the only files it removes are its own, and only when the
commit provably did not take them. Rows become visible to readers once the unit is marked complete
(`mark_unit_complete`, through the same commit path into `manifests/_units`): at once for a one-table unit,
after its last table for a multi-table one (`commit_unit_tables`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from manifests import delta
from manifests.conform import Rows, conform
from manifests.errors import ManifestError
from manifests.layout import (
    UNITS_DIR,
    CommitInfo,
    check_table_name,
    check_unit_id,
    data_file_name,
    fsync_path,
    new_token,
    table_dir,
    unit_of_file,
    units_dir,
)
from manifests.leases import writer_lease
from manifests.schema import META_TABLE_KEY, META_VERSION_KEY, PRIMARY_KEYS, SCHEMA_VERSION, SCHEMAS
from manifests.storage import Location, Root, location, open_write
from manifests.units import UNITS_SCHEMA, TableCommit, record_row, tables_version

if TYPE_CHECKING:
    from deltalake import DeltaTable

DEFAULT_ROW_GROUP_ROWS = 65_536
DEFAULT_ROW_GROUP_BYTES = 32 << 20
ROW_GROUP_BYTES = {"object_frames": 1 << 20}
"""Tables read a few rows at a time (one object's masks) get small row groups: a read touches about a MiB."""
RACED_ATTEMPTS = 5
META_UNIT_KEY = b"liveditor.unit"
FooterMetadata = Callable[[int, int], dict[bytes, bytes]]
"""(first row, rows) of a file being written -> extra footer key-values (compaction records unit runs)."""


class ManifestWriter:
    """Writes units of rows of one table under `root` (or, as `_units`, completion records); safe from many
    processes at once, even on one unit."""

    def __init__(
        self,
        root: Root,
        table: str,
        max_rows_per_shard: int = 250_000,
        max_bytes_per_shard: int = 128 << 20,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        row_group_bytes: int | None = None,
        compression: str = "zstd",
    ) -> None:
        self.units = table == UNITS_DIR
        self.folder = units_dir(root) if self.units else table_dir(root, table)
        if row_group_bytes is None:
            row_group_bytes = ROW_GROUP_BYTES.get(table, DEFAULT_ROW_GROUP_BYTES)
        if min(max_rows_per_shard, max_bytes_per_shard, row_group_rows, row_group_bytes) < 1:
            raise ManifestError("ManifestWriter: shard and row-group limits must be positive")
        self.root = location(root)
        self.table = table
        self.max_rows = max_rows_per_shard
        self.max_bytes = max_bytes_per_shard
        self.row_group_rows = row_group_rows
        self.row_group_bytes = min(row_group_bytes, max_bytes_per_shard)
        self.compression = compression
        self.base_schema = UNITS_SCHEMA if self.units else SCHEMAS[table]
        self.schema = self.base_schema.with_metadata(
            {META_VERSION_KEY: SCHEMA_VERSION.encode(), META_TABLE_KEY: table.encode()}
        )

    def _latest(self) -> DeltaTable | None:
        return delta.latest(self.folder)

    def is_committed(self, unit_id: str) -> bool:
        """Whether this table holds a commit of `unit_id` (visible to readers only once the unit is complete)."""
        check_unit_id(unit_id)
        table = self._latest()
        return table is not None and table.transaction_version(unit_id) is not None

    def write(self, unit_id: str, rows: Rows, complete: bool = True) -> CommitInfo:
        """Commit one unit's rows to this table; `complete=False` leaves the unit to a later mark_unit_complete."""
        check_unit_id(unit_id)
        data = conform(self.table, rows)
        digest_hex, app_version = delta.digest(data.sort_by([(k, "ascending") for k in PRIMARY_KEYS[self.table]]))
        info = self.commit(unit_id, data, digest_hex, app_version)
        if complete:
            mark_unit_complete(self.root, unit_id, [self.table], commits=[info])
        return info

    def commit(self, unit_id: str, data: pa.Table, digest_hex: str, app_version: int) -> CommitInfo:
        """Write `data` as files under a lease and commit them with application transaction (unit_id, app_version);
        a commit that met a metadata change (delta.Raced) starts over from a fresh read."""
        for _ in range(RACED_ATTEMPTS - 1):
            try:
                return self._commit_once(unit_id, data, digest_hex, app_version)
            except delta.Raced:
                continue
        return self._commit_once(unit_id, data, digest_hex, app_version)

    def _commit_once(self, unit_id: str, data: pa.Table, digest_hex: str, app_version: int) -> CommitInfo:
        table = delta.create(self.folder, self.base_schema)  # creates, or adds a newer minor version's columns
        skipped = self._already(table, unit_id, app_version, data.num_rows)
        if skipped:
            return skipped
        written: list[Location] = []
        token = new_token()
        with writer_lease(self.root, token):
            try:
                files = self.write_files(unit_id, data, written, token)
                actions: list[delta.Action] = [delta.add_action(p.name, p, n) for p, n, _ in files]
                meta = {"liveditor.unit": unit_id, "liveditor.rows": data.num_rows, "liveditor.digest": digest_hex}
                try:
                    version = delta.commit(table, actions, self.schema, unit_id, app_version, meta)
                except delta.AlreadyCommitted:
                    skipped = self._already(self._latest(), unit_id, app_version, data.num_rows)
                    if skipped is None:
                        raise ManifestError(
                            f"{self.table}: commit of unit {unit_id} lost a race, but the winner is not visible"
                        ) from None
                    return skipped
                written.clear()  # committed: these files belong to the table now
            finally:
                self.discard_uncommitted(written)
        return CommitInfo(
            table=self.table,
            unit_id=unit_id,
            files=tuple(p.name for p, _, _ in files),
            rows=data.num_rows,
            bytes=sum(size for _, _, size in files),
            schema_version=SCHEMA_VERSION,
            written_at=_now(),
            version=version,
            txn=app_version,
        )

    def _already(self, table: DeltaTable | None, unit_id: str, app_version: int, rows: int) -> CommitInfo | None:
        """The skipped CommitInfo when `unit_id` is committed with these rows; an error when with other rows."""
        if table is None or (found := table.transaction_version(unit_id)) is None:
            return None
        if found != app_version:
            if self.units:
                raise ManifestError(f"unit {unit_id} is already complete with other tables")
            raise ManifestError(
                f"{self.table}: unit {unit_id} is already committed with different rows; "
                "a committed unit is never replaced (use a new unit id)"
            )
        return CommitInfo(self.table, unit_id, (), rows, 0, SCHEMA_VERSION, _now(), table.version(), txn=found, skipped=True)

    def discard_uncommitted(self, written: list[Location]) -> None:
        """Remove files this call wrote that no table version references (a failed or lost commit)."""
        if not written:
            return
        table = self._latest()
        referenced = {f.path for f in delta.files(table)}
        for path in written:
            if path.name not in referenced:
                path.unlink(missing_ok=True)

    def _rows_per_group(self, data: pa.Table) -> int:
        """Rows per row group so that a group holds about `row_group_bytes` (in-memory size, an upper bound)."""
        per_row: int = max(1, data.nbytes // max(1, data.num_rows))
        return max(1, min(self.row_group_rows, self.row_group_bytes // per_row))

    def write_files(
        self, unit_id: str, data: pa.Table, written: list[Location], token: str, footer: FooterMetadata | None = None
    ) -> list[tuple[Location, int, int]]:
        """Write `data` as files rolled at max rows or max bytes (checked after each row group), fsync'ed;
        returns (path, rows, bytes) per file.

        The caller holds a writer lease on `token` (every file name carries it)."""
        schema = self.schema.with_metadata({**self.schema.metadata, META_UNIT_KEY: unit_id.encode()})
        group_rows = self._rows_per_group(data)
        self.folder.mkdir(parents=True, exist_ok=True)
        out: list[tuple[Location, int, int]] = []
        offset = 0
        while offset < data.num_rows:
            path = self.folder / data_file_name(unit_id, token, len(out))
            written.append(path)
            first, rows_in_file = offset, 0
            with open_write(path) as sink:
                writer = pq.ParquetWriter(sink, schema, compression=self.compression)
                while offset < data.num_rows and (
                    rows_in_file == 0 or (rows_in_file < self.max_rows and sink.tell() < self.max_bytes)
                ):
                    n = min(group_rows, self.max_rows - rows_in_file, data.num_rows - offset)
                    writer.write_table(data.slice(offset, n), row_group_size=n)
                    offset += n
                    rows_in_file += n
                if footer is not None:
                    writer.add_key_value_metadata(footer(first, rows_in_file))
                writer.close()
                size = sink.tell()
            out.append((path, rows_in_file, size))
        fsync_path(self.folder)
        return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def mark_unit_complete(
    root: Root,
    unit_id: str,
    tables: Iterable[str],
    config_digest: str | None = None,
    commits: Iterable[CommitInfo] = (),
) -> None:
    """Record that `unit_id` is complete in `tables` (each must hold its commit) and what each holds; a repeat
    is a no-op. `commits` are the writer's own CommitInfos (the rest are read from the tables)."""
    check_unit_id(unit_id)
    names = sorted(set(tables))
    known = {c.table: c for c in commits}
    records = [_table_commit(root, unit_id, name, known.get(name)) for name in names]
    row = record_row(unit_id, records, _now(), config_digest)
    ManifestWriter(root, UNITS_DIR).commit(unit_id, row, "", tables_version(names))


def _table_commit(root: Root, unit_id: str, table: str, info: CommitInfo | None) -> TableCommit:
    """What `table` holds of `unit_id`, from the writer's CommitInfo or else from the table's latest version."""
    check_table_name(table)
    if info is not None and info.version is not None and info.txn is not None:
        return TableCommit(table, info.rows, info.txn, info.version)
    current = delta.latest(table_dir(root, table))
    if current is None or (txn := current.transaction_version(unit_id)) is None:
        raise ManifestError(f"unit {unit_id} cannot be complete: table {table} does not hold it")
    rows = sum(f.rows for f in delta.files(current) if unit_of_file(f.path) == unit_id)
    return TableCommit(table, rows, txn, current.version())


def commit_unit_tables(
    root: Root,
    unit_id: str,
    rows_by_table: Mapping[str, Rows],
    config_digest: str | None = None,
    after_commit: Callable[[], None] | None = None,
) -> list[CommitInfo]:
    """The one way a unit lands: its rows committed to each table (empty tables included; a table that holds
    them already is skipped), then its completion record. `after_commit` runs after each commit actually made
    (fault injection counts them)."""
    infos = []
    for table, rows in rows_by_table.items():
        infos.append(ManifestWriter(root, table).write(unit_id, rows, complete=False))
        if after_commit is not None and not infos[-1].skipped:
            after_commit()
    mark_unit_complete(root, unit_id, rows_by_table, config_digest, infos)
    if after_commit is not None:
        after_commit()
    return infos
