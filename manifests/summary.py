"""Per-table summary from Parquet footers (rows, shards, bytes, per-column min/max/nulls), plus value
counts of a few categorical columns read by projecting just that column, batch by batch.

Footers only for the column statistics: a 1.7M-row table costs a few kilobytes of reads, not a scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from manifests.layout import check_table_name
from manifests.reader import Part, committed_parts, part_batches
from manifests.schema import SCHEMAS
from manifests.storage import Root

if TYPE_CHECKING:
    import pyarrow.parquet as pq

CATEGORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "videos": ("status",),
    "clips": ("status",),
    "objects": ("class_name",),
    "scores": (),  # rows per signal come with its grouped value statistics
    "edit_pairs": ("edit_type", "split"),
    "errors": ("error_class",),
}
"""Columns whose value counts a summary shows (`status` wherever it exists)."""
GROUPED_VALUES: dict[str, tuple[str, str]] = {"scores": ("signal", "value")}
"""Tables whose summary also shows min/max/mean of a value column per category."""


@dataclass
class ColumnStats:
    """Column statistics merged over every row group's footer entry; None where a footer lacks them."""

    name: str
    type: str
    min: object = None
    max: object = None
    nulls: int | None = 0


@dataclass
class TableSummary:
    table: str
    rows: int = 0
    shards: int = 0
    units: int = 0
    bytes: int = 0
    columns: list[ColumnStats] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, float | int | None]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "table": self.table,
            "rows": self.rows,
            "shards": self.shards,
            "units": self.units,
            "bytes": self.bytes,
            "columns": [c.__dict__ for c in self.columns],
            "counts": self.counts,
            "groups": self.groups,
        }


def summarize(root: Root, table: str) -> TableSummary:
    """Summary of one table; a missing or empty table gives zero rows, not an error."""
    check_table_name(table)
    parts = committed_parts(root, table)
    summary = TableSummary(
        table=table,
        rows=sum(p.metadata.num_rows for p in parts),
        shards=len(parts),
        units=len({p.unit_id for p in parts}),
        bytes=sum(p.path.stat().st_size for p in parts),
        columns=footer_stats(parts, SCHEMAS[table]),
    )
    for column in CATEGORY_COLUMNS.get(table, ()):
        summary.counts[column] = value_counts(part_batches(parts, table, [column]), column)
    if table in GROUPED_VALUES:
        key, value = GROUPED_VALUES[table]
        summary.groups[f"{value} by {key}"] = grouped_stats(part_batches(parts, table, [key, value]), key, value)
    return summary


def footer_stats(parts: list[Part], schema: pa.Schema) -> list[ColumnStats]:
    """Merge row-group statistics of top-level primitive columns; nested columns report only their type."""
    out = {f.name: ColumnStats(f.name, str(f.type)) for f in schema}
    nested = {f.name for f in schema if pa.types.is_nested(f.type)}
    for stats in out.values():
        if stats.name in nested:
            stats.nulls = None
    for part in parts:
        meta = part.metadata
        paths = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
        for name, stats in out.items():
            if name in nested:
                continue
            if name not in paths:  # an older minor version without this nullable column: all null
                stats.nulls = None if stats.nulls is None else stats.nulls + meta.num_rows
                continue
            for rg in range(meta.num_row_groups):
                _merge(stats, meta.row_group(rg).column(paths[name]).statistics)
    return list(out.values())


def _merge(stats: ColumnStats, chunk: pq.Statistics | None) -> None:
    if chunk is None or not chunk.has_null_count:
        stats.nulls = None
    elif stats.nulls is not None:
        stats.nulls += chunk.null_count
    if chunk is not None and chunk.has_min_max:
        low: Any  # a footer value of the column's own type (number, string, bytes, date...)
        high: Any
        low, high = (v + 0.0 if isinstance(v, float) else v for v in (chunk.min, chunk.max))  # Parquet writes -0.0
        stats.min = low if stats.min is None else min(stats.min, low)
        stats.max = high if stats.max is None else max(stats.max, high)


def value_counts(batches: Iterable[pa.RecordBatch], column: str) -> dict[str, int]:
    """Counts of each value of one column (nulls as 'null'), most frequent first."""
    counts: Counter[str] = Counter()
    for batch in batches:
        for item in pc.value_counts(batch.column(column)).to_pylist():
            counts["null" if item["values"] is None else str(item["values"])] += item["counts"]
    return dict(counts.most_common())


def grouped_stats(batches: Iterable[pa.RecordBatch], key: str, value: str) -> dict[str, dict[str, float | int | None]]:
    """Per value of `key`: rows, nulls, min, max and mean of `value`, merged batch by batch."""
    merged: dict[str, dict[str, Any]] = {}  # running sums and extremes of pyarrow's (untyped) row values
    aggregations = [(value, "min"), (value, "max"), (value, "sum"), (value, "count"), ([], "count_all")]
    for batch in batches:
        grouped = pa.table(batch).group_by(key).aggregate(aggregations)
        for row in grouped.to_pylist():
            group = merged.setdefault(str(row[key]), {"rows": 0, "nulls": 0, "min": None, "max": None, "sum": 0.0})
            group["rows"] += row["count_all"]
            group["nulls"] += row["count_all"] - row[f"{value}_count"]
            group["sum"] += row[f"{value}_sum"] or 0.0
            for op, pick in (("min", min), ("max", max)):
                found = row[f"{value}_{op}"]
                if found is not None:
                    group[op] = found if group[op] is None else pick(group[op], found)
    for group in merged.values():
        present = group["rows"] - group["nulls"]
        group["mean"] = group.pop("sum") / present if present else None
    return dict(sorted(merged.items()))
