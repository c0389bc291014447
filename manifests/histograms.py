"""Histogram PNGs of manifest columns, computed in two streaming passes (range, then bin counts).

Numeric columns get a histogram; string and boolean columns a bar chart of their commonest values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from matplotlib.figure import Figure  # the OO API: no pyplot state, no GUI backend

from manifests.errors import ManifestError
from manifests.progress import bar
from manifests.reader import check_columns, scan_batches
from manifests.schema import SCHEMAS
from manifests.summary import value_counts

TOP_VALUES = 30


def plot_columns(
    dataset: ds.Dataset,
    table: str,
    columns: list[str],
    out_dir: Path,
    bins: int = 50,
    where: ds.Expression | None = None,
    title_suffix: str = "",
    progress: bool = False,
) -> list[Path]:
    """One PNG per column in `out_dir` (created), named `<table>.<column>.png`; returns their paths."""
    check_columns(table, columns)
    schema = SCHEMAS[table]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for column in columns:
        kind = schema.field(column).type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            edges, counts = numeric_histogram(dataset, table, column, bins, where, progress)
            fig = Figure(figsize=(7, 4))
            ax = fig.subplots()
            ax.stairs(counts, edges, fill=True)
            ax.set_xlabel(column)
        elif pa.types.is_string(kind) or pa.types.is_boolean(kind):
            batches = _counted(scan_batches(dataset, table, [column], where), f"{column} values", progress)
            top = list(value_counts(batches, column).items())[:TOP_VALUES]
            fig = Figure(figsize=(7, max(3.0, 0.25 * len(top) + 1)))
            ax = fig.subplots()
            ax.barh([k for k, _ in top][::-1], [v for _, v in top][::-1])
            ax.set_xlabel("rows")
        else:
            raise ManifestError(f"{table}.{column}: type {kind} has no histogram (numeric, string or bool only)")
        ax.set_title(f"{table}.{column}{title_suffix}")
        fig.tight_layout()
        path = out_dir / f"{table}.{column}.png"
        fig.savefig(path, dpi=100)
        written.append(path)
    return written


def numeric_histogram(
    dataset: ds.Dataset, table: str, column: str, bins: int, where: ds.Expression | None, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and counts over the finite values of one numeric column (bounded memory)."""
    low, high = np.inf, -np.inf
    for batch in _counted(scan_batches(dataset, table, [column], where), f"{column} range", progress):
        values = _finite(batch.column(column))
        if len(values):
            low, high = min(low, values.min()), max(high, values.max())
    if low > high:
        return np.array([0.0, 1.0]), np.zeros(1)
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    counts = np.zeros(bins)
    for batch in _counted(scan_batches(dataset, table, [column], where), f"{column} bins", progress):
        counts += np.histogram(_finite(batch.column(column)), bins=edges)[0]
    return edges, counts


def _counted(batches: Iterable[pa.RecordBatch], desc: str, progress: bool) -> Iterator[pa.RecordBatch]:
    """Pass batches through, counting matching rows on a progress bar."""
    with bar(None, desc, progress) as pbar:
        for batch in batches:
            pbar.update(batch.num_rows)
            yield batch


def _finite(values: pa.Array) -> np.ndarray:
    array = pc.drop_null(values).to_numpy(zero_copy_only=False).astype(np.float64)
    return cast(np.ndarray, array[np.isfinite(array)])
