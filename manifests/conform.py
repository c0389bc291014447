"""Turn rows (list of dicts or an Arrow table) into a table of exactly SCHEMAS[table], or say why not.

Casts are allowed only within a kind (int to wider int or float, float to float, string flavours,
lists of compatible items), so a float never silently becomes an int and a string never parses
into a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sized
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from manifests.errors import ManifestError, first_line
from manifests.layout import check_table_name
from manifests.schema import PROVENANCE_FIELDS, SCHEMAS

Rows: TypeAlias = pa.Table | pa.RecordBatch | Iterable[Mapping[str, object]]
_PROVENANCE = tuple(f.name for f in PROVENANCE_FIELDS)


def conform(table: str, rows: Rows) -> pa.Table:
    """Validate `rows` against the table's schema and return them cast to it, columns in schema order."""
    check_table_name(table)
    schema = SCHEMAS[table]
    columns = _columns_of(table, rows)
    if not columns:  # no rows at all: an empty unit is legal (its commit records that it is done)
        return schema.empty_table()
    unknown = [name for name in columns if schema.get_field_index(name) < 0]
    if unknown:
        raise ManifestError(f"{table}.{unknown[0]}: unknown column (not in the {table} schema)")
    n_rows = _row_count(table, columns)
    arrays = []
    for field in schema:
        if field.name not in columns:
            if not field.nullable:
                raise ManifestError(f"{table}.{field.name}: required column is missing")
            arrays.append(pa.chunked_array([pa.nulls(n_rows, field.type)]))
            continue
        arrays.append(_cast_column(table, field, columns[field.name]))
    out = pa.Table.from_arrays(arrays, schema=schema)
    _check_required(table, out)
    return out


def _columns_of(table: str, rows: Rows) -> dict[str, pa.Array | pa.ChunkedArray | list[object]]:
    if isinstance(rows, pa.RecordBatch):
        rows = pa.Table.from_batches([rows])
    if isinstance(rows, pa.Table):
        return {name: rows.column(name) for name in rows.column_names}
    columns: dict[str, list[object]] = {}
    row: object
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ManifestError(f"{table}: row {i} is a {type(row).__name__}, expected a dict")
        for name in row:
            if name not in columns:
                columns[name] = [None] * i
        for name, values in columns.items():
            values.append(row.get(name))
    return columns


def _row_count(table: str, columns: Mapping[str, Sized]) -> int:
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ManifestError(f"{table}: columns have different lengths {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def _cast_column(table: str, field: pa.Field, values: pa.Array | pa.ChunkedArray | list[object]) -> pa.ChunkedArray:
    """Cast one column, keeping its chunks: combining them could pass a 32-bit offset's 2 GiB."""
    where = f"{table}.{field.name}"
    if isinstance(values, list):
        try:
            values = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ManifestError(f"{where}: wrong type, expected {field.type} ({first_line(exc)})") from None
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values])
    if not compatible(values.type, field.type):
        raise ManifestError(f"{where}: wrong type {values.type}, expected {field.type}")
    try:
        return values.cast(field.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ManifestError(f"{where}: cannot convert to {field.type} ({first_line(exc)})") from None


def compatible(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether values of type `src` may be cast to `dst` without changing their kind."""
    if src.equals(dst) or pa.types.is_null(src):
        return True
    if pa.types.is_dictionary(src):
        return compatible(src.value_type, dst)
    if pa.types.is_integer(src):
        return bool(pa.types.is_integer(dst) or pa.types.is_floating(dst))
    if pa.types.is_floating(src):
        return bool(pa.types.is_floating(dst))
    if _is_string(src):
        return _is_string(dst)
    if _is_list(src) and _is_list(dst):
        return compatible(src.value_type, dst.value_type)
    return False


def _is_string(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def _check_required(table: str, out: pa.Table) -> None:
    for field in out.schema:
        column = out.column(field.name)
        if not field.nullable and column.null_count:
            row = pc.index(pc.is_null(column), True).as_py()
            raise ManifestError(f"{table}.{field.name}: null in required column (row {row})")
        if field.name in _PROVENANCE and len(column):
            blank = pc.equal(pc.utf8_trim_whitespace(column), "")
            if pc.any(blank).as_py():
                row = pc.index(blank, True).as_py()
                raise ManifestError(f"{table}.{field.name}: empty provenance value (row {row})")

