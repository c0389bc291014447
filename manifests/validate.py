"""Check a whole dataset: file integrity, required values, unique keys, references, URIs, provenance, per-frame shapes.

Everything streams: each table is scanned once, batch by batch, over only the columns a check needs;
keys are kept as 64-bit hashes (8 bytes a row), and the rare second pass that names examples runs
only when a problem was found. That keeps a 1.7M-row dataset well inside a gigabyte.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests import delta
from manifests.domains import count_bad, domains_of, undecodable_masks
from manifests.errors import ManifestError
from manifests.keyhash import count_missing, hash_rows, hash_strings, missing_from, sorted_unique
from manifests.layout import COMPACTED, MANIFESTS_DIR
from manifests.progress import bar
from manifests.reader import Part, committed_parts, dataset_of, read_part, scan_batches
from manifests.schema import FOREIGN_KEYS, PRIMARY_KEYS, PROVENANCE_FIELDS, SCHEMAS, URI_COLUMNS
from manifests.snapshot import take_snapshot, unreadable_files
from manifests.storage import Location, Root, location
from manifests.units import compacted_units, complete_units
from manifests.uris import ABSOLUTE, EMPTY, ESCAPES, resolve_location, uri_problems

if TYPE_CHECKING:
    import pyarrow.dataset as ds

MAX_EXAMPLES = 3
INPUT_URI_COLUMNS = {("videos", "uri")}
"""URI columns that name inputs, which may live anywhere (absolute paths and scheme URIs allowed)."""
PER_FRAME_LISTS: dict[str, tuple[str, ...]] = {"objects": ("frame_indices", "boxes", "mask_rle")}
"""List columns holding one entry per frame: in a row, each non-null one has the first one's length."""
MASK_SIZE: dict[str, tuple[str, str, str]] = {
    "objects": ("mask_rle", "mask_height", "mask_width"),
    "object_frames": ("mask_rle", "mask_height", "mask_width"),
}
"""RLE columns and the size columns without which they cannot be decoded."""
_REFERENCED = {ref_table for refs in FOREIGN_KEYS.values() for _, ref_table, _ in refs}
_URI_PROBLEM_TEXT = {
    EMPTY: "are empty strings",
    ABSOLUTE: "are absolute paths or scheme URIs (allowed only with --allow-absolute-uris)",
    ESCAPES: "escape the dataset root with '..'",
}


@dataclass(frozen=True)
class Issue:
    """One kind of problem in one table (and column), with how many rows have it and a few examples."""

    table: str
    check: str  # file | required | provenance | uri | shape | primary_key | reference | domain | unit | orphan
    message: str
    column: str | None = None
    count: int = 1
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        suffix = f" (e.g. {', '.join(self.examples)})" if self.examples else ""
        return f"{self.message}{suffix}"

    def to_json(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass
class _Scanned:
    """What later checks need from one table's scan."""

    dataset: ds.Dataset
    keys: np.ndarray  # sorted unique primary-key hashes
    refs: dict[str, np.ndarray] = field(default_factory=dict)  # foreign-key column -> hashes of non-null values
    complete: bool = True  # False when a corrupt part stopped the scan: its keys are partial


def validate_dataset(
    root: Root, allow_absolute_uris: bool = False, progress: bool = False, check_files: bool = False
) -> list[Issue]:
    """All problems found in the dataset at `root` (empty list: valid); `check_files`: referenced files must exist."""
    root = location(root)
    if not (root / MANIFESTS_DIR).is_dir():
        raise ManifestError(f"{root}: not a dataset root (no {MANIFESTS_DIR}/ folder)")
    issues: list[Issue] = []
    files_root = root if check_files else None
    scanned = {table: _scan_table(root, table, allow_absolute_uris, issues, progress, files_root) for table in SCHEMAS}
    for table in SCHEMAS:
        _check_units(root, table, issues)
    for table, references in FOREIGN_KEYS.items():
        for column, ref_table, ref_column in references:
            if scanned[table].complete and scanned[ref_table].complete:
                _check_references(table, column, scanned[table], ref_table, ref_column, scanned[ref_table], issues)
    return issues


class _RowChecks:
    """Per-batch checks of one table, accumulated over a streaming scan."""

    def __init__(self, table: str, total_rows: int, allow_absolute: bool, files_root: Location | None = None) -> None:
        self.table = table
        self.files_root = files_root
        self.domains = domains_of(table)
        self.domain_counts: Counter[str] = Counter()
        self.domain_examples: dict[str, list[str]] = {}
        self.allow_absolute = allow_absolute
        self.key_columns = list(PRIMARY_KEYS[table])
        self.ref_columns = [column for column, _, _ in FOREIGN_KEYS.get(table, [])]
        self.uri_columns = list(URI_COLUMNS.get(table, ()))
        self.required = [f.name for f in SCHEMAS[table] if not f.nullable]
        self.per_frame = list(PER_FRAME_LISTS.get(table, ()))
        self.mask_size = MASK_SIZE.get(table)
        extra = self.per_frame + list(self.mask_size or ()) + [c for d in self.domains for c in d.columns]
        self.columns = list(dict.fromkeys(self.required + self.uri_columns + self.key_columns + self.ref_columns + extra))
        self.misaligned: Counter[str] = Counter()  # per-frame list column -> rows of another length
        self.unsized = 0  # rows with an RLE mask but no mask size
        self.nulls: Counter[str] = Counter()
        self.blanks: Counter[str] = Counter()
        self.uri_counts: Counter[tuple[str, str]] = Counter()
        self.uri_examples: dict[tuple[str, str], list[str]] = {}
        self.keys = np.empty(total_rows, np.uint64)  # filled in place: no list of pieces plus a concatenated copy
        self.rows = 0
        self.refs = {c: np.empty(total_rows, np.uint64) for c in self.ref_columns}
        self.ref_rows: Counter[str] = Counter()

    def add(self, batch: pa.RecordBatch) -> None:
        hashed = {c: hash_strings(batch.column(c)) for c in dict.fromkeys(self.key_columns + self.ref_columns)}
        for name in self.required:
            self.nulls[name] += batch.column(name).null_count
        for prov in PROVENANCE_FIELDS:
            self.blanks[prov.name] += _count_blank(batch.column(prov.name))
        self.keys[self.rows : self.rows + batch.num_rows] = hash_rows([hashed[c] for c in self.key_columns])
        self.rows += batch.num_rows
        for column in self.ref_columns:
            valid = hashed[column][pc.is_valid(batch.column(column)).to_numpy(zero_copy_only=False)]
            self.refs[column][self.ref_rows[column] : self.ref_rows[column] + len(valid)] = valid
            self.ref_rows[column] += len(valid)
        self._check_shapes(batch)
        self._check_domains(batch)
        for column in self.uri_columns:
            loose = self.allow_absolute or (self.table, column) in INPUT_URI_COLUMNS
            for kind, mask in uri_problems(batch.column(column), loose).items():
                if mask.any():
                    self.uri_counts[column, kind] += int(mask.sum())
                    seen = self.uri_examples.setdefault((column, kind), [])
                    picked = batch.column(column).filter(pa.array(mask))[: MAX_EXAMPLES - len(seen)]
                    seen.extend(str(v) for v in picked.to_pylist())

    def _count(self, text: str, found: tuple[int, list[str]]) -> None:
        n, examples = found
        if n:
            self.domain_counts[text] += n
            seen = self.domain_examples.setdefault(text, [])
            seen.extend(examples[: MAX_EXAMPLES - len(seen)])

    def _check_domains(self, batch: pa.RecordBatch) -> None:
        key = self.key_columns[0]
        for domain in self.domains:
            self._count(domain.text, count_bad(domain, batch, key))
        if self.mask_size:
            self._count("masks do not decode to mask_height x mask_width", undecodable_masks(batch, key))
        if self.files_root is not None:
            for column in self.uri_columns:
                if (self.table, column) not in INPUT_URI_COLUMNS:
                    missing = self._missing(batch, column, self.files_root)
                    self._count(f"{column} names a file that is missing or outside the root", missing)

    def _missing(self, batch: pa.RecordBatch, column: str, files_root: Location) -> tuple[int, list[str]]:
        bad = [uri for uri in batch.column(column).drop_null().to_pylist() if not _file_exists(files_root, uri)]
        return len(bad), bad[:MAX_EXAMPLES]

    def _check_shapes(self, batch: pa.RecordBatch) -> None:
        if self.per_frame:
            frames = pc.list_value_length(batch.column(self.per_frame[0]))
            for column in self.per_frame[1:]:
                differs = pc.not_equal(pc.list_value_length(batch.column(column)), frames)
                self.misaligned[column] += int(pc.sum(pc.fill_null(differs, False)).as_py() or 0)
        if self.mask_size:
            rle, height, width = (batch.column(c) for c in self.mask_size)
            unsized = pc.and_(pc.is_valid(rle), pc.or_(pc.is_null(height), pc.is_null(width)))
            self.unsized += int(pc.sum(unsized).as_py() or 0)

    def issues(self) -> list[Issue]:
        t = self.table
        found = [Issue(t, "required", f"{t}.{c}: {n} nulls in a required column", c, n) for c, n in self.nulls.items() if n]
        found += [Issue(t, "provenance", f"{t}.{c}: {n} rows with empty provenance", c, n) for c, n in self.blanks.items() if n]
        for column, n in self.misaligned.items():
            if n:
                text = f"{t}.{column}: {n} rows whose length differs from {self.per_frame[0]} (one entry per frame)"
                found.append(Issue(t, "shape", text, column, n))
        if self.unsized and self.mask_size:  # only rows with mask columns count as unsized
            rle, height, width = self.mask_size
            text = f"{t}.{rle}: {self.unsized} rows have masks but no {height}/{width} to decode them"
            found.append(Issue(t, "shape", text, rle, self.unsized))
        for text, n in self.domain_counts.items():
            found.append(Issue(t, "domain", f"{t}: {n} rows where {text}", None, n, tuple(self.domain_examples[text])))
        for (column, kind), n in self.uri_counts.items():
            text = f"{t}.{column}: {n} URIs {_URI_PROBLEM_TEXT[kind]}"
            found.append(Issue(t, "uri", text, column, n, tuple(self.uri_examples[column, kind])))
        return found


def _file_exists(root: Location, uri: str) -> bool:
    try:
        return resolve_location(root, uri).is_file()
    except (ManifestError, OSError):  # e.g. a name too long for the file system: it cannot exist
        return False


def _scan_table(
    root: Location, table: str, allow_absolute: bool, issues: list[Issue], progress: bool, files_root: Location | None
) -> _Scanned:
    def file_issue(exc: ManifestError) -> None:
        issues.append(Issue(table, "file", str(exc)))

    try:
        snapshot = take_snapshot(root, [table])
    except ManifestError as exc:  # the rows differ from a unit's completion record: report, then check the rest
        issues.append(Issue(table, "unit", str(exc)))
        snapshot = take_snapshot(root, [table], verify=False)
    parts = committed_parts(root, table, on_error=file_issue, snapshot=snapshot)
    _check_digests(root, table, parts, issues)
    dataset = dataset_of(parts, table)
    checks = _RowChecks(table, sum(p.metadata.num_rows for p in parts), allow_absolute, files_root)
    complete = True
    with bar(len(checks.keys), f"validate {table}", progress) as pbar:
        try:
            for batch in scan_batches(dataset, table, checks.columns):
                checks.add(batch)
                pbar.update(batch.num_rows)
        except ManifestError as exc:  # corrupt data pages: report, and keep checking the other tables
            file_issue(exc)
            complete = False
    issues.extend(checks.issues())
    keys, suspects = sorted_unique(checks.keys[: checks.rows])
    if len(suspects) and complete:
        _check_unique(table, dataset, checks.key_columns, suspects, issues)
    refs = {c: h[: checks.ref_rows[c]] for c, h in checks.refs.items()}
    return _Scanned(dataset, keys if table in _REFERENCED else keys[:0], refs, complete)


def _check_units(root: Location, table: str, issues: list[Issue]) -> None:
    """Report units committed to `table` but not complete, files no commit names (both unread), and parts of
    complete units that the log lost (their rows are missing: never advised for gc)."""
    hidden, orphans, detached = unreadable_files(root, table)
    if detached:
        text = (f"{table}: {len(detached)} parts of complete units that no commit names: the Delta log lost their "
                "commit and the units' rows are missing (gc keeps these files)")
        issues.append(Issue(table, "unit", text, None, len(detached), tuple(detached[:MAX_EXAMPLES])))
    if hidden:
        text = f"{table}: {len(hidden)} units are committed here but not complete (readers skip them until they are)"
        issues.append(Issue(table, "unit", text, None, len(hidden), tuple(sorted(hidden)[:MAX_EXAMPLES])))
    if orphans:
        text = f"{table}: {len(orphans)} Parquet files no commit names (a killed writer's; `manifests gc` removes them)"
        issues.append(Issue(table, "orphan", text, None, len(orphans), tuple(orphans[:MAX_EXAMPLES])))


def _check_digests(root: Location, table: str, parts: list[Part], issues: list[Issue]) -> None:
    """Each complete unit's rows must hash to the transaction version its completion record lists (the
    writer's digest of the rows): a part replaced by another of the same size is caught here, not by counts."""
    _, records = complete_units(root)
    expected = {u: r.committed[table] for u, r in records.items() if table in r.committed}
    if not expected:
        return
    keys = [(k, "ascending") for k in PRIMARY_KEYS[table]]
    pieces: dict[str, list[pa.Table]] = defaultdict(list)
    held: Counter[str] = Counter()
    altered: list[str] = []
    for part in parts:
        runs = compacted_units(part.path) if part.unit_id == COMPACTED else [(part.unit_id, part.metadata.num_rows)]
        if runs is None:  # compacted by an earlier version: its rows cannot be attributed to units
            continue
        try:
            data = read_part(part.path, SCHEMAS[table])
        except (pa.ArrowException, OSError):
            continue  # reported by the scan as corrupt data
        offset = 0
        for unit, n in runs:
            if unit in expected:
                pieces[unit].append(data.slice(offset, n))
                held[unit] += n
                if held[unit] == expected[unit].rows:  # the unit's last piece: hash it and let it go
                    rows = pa.concat_tables(pieces.pop(unit))
                    if delta.digest(rows.sort_by(keys))[1] != expected[unit].txn:
                        altered.append(unit)
            offset += n
    if altered:
        text = f"{table}: {len(altered)} units hold other rows than their completion records vouch for (a part was altered)"
        issues.append(Issue(table, "unit", text, None, len(altered), tuple(sorted(altered)[:MAX_EXAMPLES])))


def _count_blank(values: pa.Array) -> int:
    """Rows whose value is empty or whitespace (checked on the few distinct values, then counted)."""
    distinct = pc.unique(values)
    blank = distinct.filter(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(distinct), ""), False))
    return int(pc.sum(pc.is_in(values, value_set=blank)).as_py() or 0) if len(blank) else 0


def _check_unique(table: str, dataset: ds.Dataset, key_columns: list[str], suspects: np.ndarray, issues: list[Issue]) -> None:
    """Report primary keys whose hash occurs more than once, confirmed on the real values."""
    counts: Counter[tuple[object, ...]] = Counter()
    for batch in scan_batches(dataset, table, key_columns):
        hit = np.isin(hash_rows([hash_strings(batch.column(c)) for c in key_columns]), suspects)
        if hit.any():
            picked = batch.filter(pa.array(hit))
            counts.update(zip(*(picked.column(c).to_pylist() for c in key_columns)))
    repeated = [key for key, n in counts.items() if n > 1]
    if repeated:
        examples = tuple("/".join(map(str, key)) for key in repeated[:MAX_EXAMPLES])
        text = f"{table}: {len(repeated)} primary keys ({', '.join(key_columns)}) occur more than once"
        issues.append(Issue(table, "primary_key", text, ",".join(key_columns), len(repeated), examples))


def _check_references(
    table: str, column: str, child: _Scanned, ref_table: str, ref_column: str, parent: _Scanned, issues: list[Issue]
) -> None:
    """Report values of `table.column` with no matching `ref_table.ref_column` (the parent's primary key)."""
    dangling = count_missing(child.refs[column], parent.keys)
    if not dangling:
        return
    examples: list[str] = []
    for batch in scan_batches(child.dataset, table, [column]):
        values = batch.column(column).drop_null()
        lost = missing_from(hash_strings(values), parent.keys)
        for value in pc.unique(values.filter(pa.array(lost))).to_pylist():
            if value not in examples and len(examples) < MAX_EXAMPLES:
                examples.append(value)
        if len(examples) >= MAX_EXAMPLES:
            break
    empty = f" ({ref_table} has no rows)" if not len(parent.keys) else ""
    text = f"{table}.{column}: {dangling} rows reference missing {ref_table}.{ref_column}{empty}"
    issues.append(Issue(table, "reference", text, column, dangling, tuple(examples)))
