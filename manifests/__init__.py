"""Parquet manifests on Delta Lake: the contract between curation stages and the model's data loader."""

from manifests.errors import ManifestError
from manifests.layout import CommitInfo
from manifests.reader import open_table, read_table
from manifests.rle import rle_decode, rle_encode
from manifests.schema import FOREIGN_KEYS, PRIMARY_KEYS, SCHEMA_VERSION, SCHEMAS, URI_COLUMNS
from manifests.snapshot import Snapshot, take_snapshot
from manifests.units import is_unit_complete
from manifests.validate import Issue, validate_dataset
from manifests.writer import ManifestWriter, commit_unit_tables, mark_unit_complete

__all__ = [
    "FOREIGN_KEYS",
    "PRIMARY_KEYS",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "URI_COLUMNS",
    "CommitInfo",
    "Issue",
    "ManifestError",
    "ManifestWriter",
    "Snapshot",
    "commit_unit_tables",
    "is_unit_complete",
    "mark_unit_complete",
    "take_snapshot",
    "open_table",
    "read_table",
    "rle_decode",
    "rle_encode",
    "validate_dataset",
]
