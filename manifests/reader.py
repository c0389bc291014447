"""Read the files of a snapshot (complete units only) through pyarrow.dataset, refusing files that are not ours.

Every part's footer is checked before use: it must carry our table name and a schema version with
our major, its columns must have our types and its row count must be what the Delta log says. Footers
are small, so this stays cheap at scale. Nothing here calls delta-rs once a snapshot is in hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from manifests.errors import ManifestError, first_line
from manifests.layout import check_table_name
from manifests.schema import META_TABLE_KEY, META_VERSION_KEY, SCHEMA_VERSION, SCHEMAS
from manifests.snapshot import Snapshot, SnapshotFile, take_snapshot
from manifests.storage import Location, Root, arrow_source, location

if TYPE_CHECKING:
    import pyarrow.dataset as ds

SCAN_BATCH_ROWS = 65_536
FOOTER_THREADS = 8
READAHEAD_BATCHES = 4
"""Streaming scans read ahead a little (pyarrow's default of 16 batches x 4 files holds ~200 MB more)."""


@dataclass(frozen=True)
class Part:
    """One committed Parquet file of a complete unit and its (already read) footer."""

    path: Location
    unit_id: str
    metadata: pq.FileMetaData


def major(version: str) -> str:
    return version.split(".", 1)[0]


def check_part(path: Location, table: str) -> pq.FileMetaData:
    """Read and check one part's footer; raise a one-line ManifestError naming the file if it is not ours."""
    source, fs = arrow_source(path)
    try:
        meta = pq.read_metadata(source, filesystem=fs)
    except FileNotFoundError:
        raise ManifestError(f"{path}: committed part is missing") from None
    except (pa.ArrowException, OSError) as exc:
        raise ManifestError(f"{path}: not a readable Parquet file (truncated or corrupt: {first_line(exc)})") from None
    kv = meta.metadata or {}
    if META_TABLE_KEY not in kv or META_VERSION_KEY not in kv:
        raise ManifestError(f"{path}: foreign Parquet file (no liveditor metadata)")
    found_table = kv[META_TABLE_KEY].decode(errors="replace")
    if found_table != table:
        raise ManifestError(f"{path}: belongs to table {found_table!r}, not {table!r}")
    version = kv[META_VERSION_KEY].decode(errors="replace")
    if major(version) != major(SCHEMA_VERSION):
        raise ManifestError(
            f"{path}: unsupported schema version {version} (this reader handles {major(SCHEMA_VERSION)}.x)"
        )
    try:
        file_schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, ValueError) as exc:
        raise ManifestError(f"{path}: unreadable schema ({first_line(exc)})") from None
    for field in SCHEMAS[table]:
        idx = file_schema.get_field_index(field.name)
        if idx < 0:
            if not field.nullable:
                raise ManifestError(f"{path}: required column {field.name!r} is missing")
            continue
        if not file_schema.field(idx).type.equals(field.type):
            raise ManifestError(
                f"{path}: column {field.name!r} has type {file_schema.field(idx).type}, expected {field.type}"
            )
    return meta


def committed_parts(
    root: Root,
    table: str,
    on_error: Callable[[ManifestError], None] | None = None,
    version: int | None = None,
    snapshot: Snapshot | None = None,
) -> list[Part]:
    """The parts of `table` in `snapshot` (default: one taken now, with the table at `version`), footers checked.

    With `on_error`, a bad part is reported there and left out instead of raising.
    """
    check_table_name(table)
    if snapshot is None:
        snapshot = take_snapshot(root, [table], None if version is None else {table: version})
    def checked(entry: SnapshotFile) -> Part | ManifestError:
        path = location(snapshot.root) / entry.path
        try:
            meta = check_part(path, table)
        except ManifestError as exc:
            return ManifestError(f"unit {entry.unit}: {exc}") if entry.unit else exc
        if entry.rows >= 0 and meta.num_rows != entry.rows:
            return ManifestError(f"{path}: the Delta log says {entry.rows} rows, the file holds {meta.num_rows}")
        return Part(path, entry.unit, meta)

    files = snapshot.table(table).files
    if len(files) > FOOTER_THREADS:  # footers are small reads: overlap them (pyarrow releases the GIL)
        with ThreadPoolExecutor(FOOTER_THREADS) as pool:
            results = list(pool.map(checked, files))
    else:
        results = [checked(f) for f in files]
    parts: list[Part] = []
    for result in results:
        if isinstance(result, ManifestError):
            if on_error is None:
                raise result
            on_error(result)
        else:
            parts.append(result)
    return parts


def dataset_of(parts: list[Part], table: str) -> ds.Dataset:
    """A dataset over checked parts with our schema (absent nullable columns read as nulls)."""
    import pyarrow.dataset as ds  # imported here: it pulls in pandas, which footer-only commands never need

    schema = SCHEMAS[table]
    if not parts:
        return ds.dataset(schema.empty_table())
    sources = [arrow_source(p.path) for p in parts]
    return ds.dataset([s for s, _ in sources], schema=schema, format="parquet", filesystem=sources[0][1])


def open_table(
    root: Root, table: str, version: int | None = None, snapshot: Snapshot | None = None
) -> ds.Dataset:
    """A pyarrow dataset over the complete units of `table` (latest, at `version`, or as in `snapshot`)."""
    return dataset_of(committed_parts(root, table, version=version, snapshot=snapshot), table)


def read_table(
    root: Root,
    table: str,
    columns: list[str] | None = None,
    filter: ds.Expression | None = None,  # noqa: A002 - mirrors pyarrow's own keyword
    version: int | None = None,
    snapshot: Snapshot | None = None,
) -> pa.Table:
    """Read `columns` of the rows matching `filter`, letting Parquet skip what it can."""
    dataset = open_table(root, table, version, snapshot)
    check_columns(table, columns)
    try:
        return dataset.to_table(columns=columns, filter=filter)
    except (pa.ArrowException, OSError) as exc:
        raise read_error(dataset, table, columns, exc) from None


MASK_COLUMNS = ["frame_index", "box", "mask_rle", "mask_height", "mask_width"]


def read_object_masks(
    root: Root, object_id: str, snapshot: Snapshot | None = None, frames: list[int] | None = None
) -> pa.Table:
    """One object's per-frame boxes and RLE masks (optionally only `frames`), sorted by frame.

    `object_frames` rows of a unit are stored object by object in row groups of about a MiB, so Parquet
    statistics on `object_id` let the scan read only the row groups holding this object.
    """
    where = pc.field("object_id") == object_id
    if frames is not None:
        where = where & pc.field("frame_index").isin(frames)
    return read_table(root, "object_frames", MASK_COLUMNS, where, snapshot=snapshot).sort_by("frame_index")


def scan_batches(
    dataset: ds.Dataset,
    table: str,
    columns: list[str] | None = None,
    filter: ds.Expression | None = None,  # noqa: A002
    batch_rows: int = SCAN_BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Stream record batches (bounded memory), turning Arrow read errors into ManifestError."""
    check_columns(table, columns)
    try:
        yield from dataset.to_batches(
            columns=columns, filter=filter, batch_size=batch_rows, batch_readahead=READAHEAD_BATCHES, fragment_readahead=1
        )
    except (pa.ArrowException, OSError) as exc:
        raise read_error(dataset, table, columns, exc) from None


def read_error(dataset: ds.Dataset, table: str, columns: list[str] | None, exc: BaseException) -> ManifestError:
    """A one-line error naming the part whose data pages fail to decode (found by re-reading each part)."""
    import pyarrow.dataset as ds

    for fragment in dataset.get_fragments() if isinstance(dataset, ds.FileSystemDataset) else []:
        try:
            for _ in fragment.to_batches(columns=columns):
                pass
        except (pa.ArrowException, OSError) as bad:
            return ManifestError(f"{fragment.path}: corrupt data ({first_line(bad)})")
    return ManifestError(f"{table}: read failed ({first_line(exc)})")


def part_batches(
    parts: list[Part], table: str, columns: list[str], batch_rows: int = SCAN_BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Stream `columns` of parts straight from Parquet (no pyarrow.dataset); absent columns read as nulls."""
    check_columns(table, columns)
    schema = pa.schema([SCHEMAS[table].field(c) for c in columns])
    for part in parts:
        present = [c for c in columns if c in part.metadata.schema.names]
        try:
            source, fs = arrow_source(part.path)
            for batch in pq.ParquetFile(source, filesystem=fs).iter_batches(batch_size=batch_rows, columns=present):
                yield pa.record_batch(
                    [batch.column(c) if c in present else pa.nulls(batch.num_rows, f.type) for c, f in zip(columns, schema)],
                    schema=schema,
                )
        except (pa.ArrowException, OSError) as exc:
            raise ManifestError(f"{part.path}: corrupt data ({first_line(exc)})") from None


def read_part(path: Location, schema: pa.Schema) -> pa.Table:
    """All rows of one part with `schema` (absent nullable columns as nulls), its footer metadata dropped."""
    source, fs = arrow_source(path)
    return pq.read_table(source, schema=schema, filesystem=fs).replace_schema_metadata(None)


def check_columns(table: str, columns: list[str] | None) -> None:
    schema = SCHEMAS[table]
    for name in columns or []:
        if schema.get_field_index(name) < 0:
            raise ManifestError(f"{table}.{name}: unknown column; columns are: {', '.join(schema.names)}")

