"""Output on object storage: stages write a unit's files to a local staging folder, and the driver uploads
them before the unit's rows commit.

Stages open files with local paths (PyAV, NumPy, PNG writers), so with an `s3://` output each unit's
`out_root` is a folder under manifests.storage.staging_dir() (LIVEDITOR_STAGING_DIR, default: the system
temp folder), made for this run.
Before a unit commits, every file its rows name (the URI columns of manifests.schema, inputs excepted) is
uploaded to the same relative key under the output root; the rows commit only after every upload
returned, so a file is visible to readers only once rows name it. A killed run leaves at most uploaded
objects no row names yet: the resume uploads them again (the stages are deterministic) and gc collects
what no row ever names. After its commit the unit's staged files are removed, and the whole staging
folder when the run ends, so staging holds about one unit per stage worker in flight.

Stages of one unit run on nodes that share the staging folder (an embedded Ray, or one node per unit);
the dataset itself needs no shared disk. Where they do not, the driver finds a file the rows name missing
from its staging folder and stops with one line before that unit commits: rows never name an absent file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from curation.remote_inputs import drop_inputs
from curation.stage import WorkUnit
from curation.units import PipelineError
from manifests.schema import URI_COLUMNS
from manifests.storage import ObjectPath, location, staging_dir, upload
from manifests.uris import resolve_uri

INPUT_COLUMNS = {("videos", "uri")}
"""URI columns that name inputs (which stay where they are), not files the run made."""


def unit_files(unit: WorkUnit) -> list[str]:
    """The relative URIs of the files a unit's rows name (each once, in row order)."""
    names: dict[str, None] = {}
    for table, columns in URI_COLUMNS.items():
        for column in columns:
            if (table, column) in INPUT_COLUMNS:
                continue
            for row in unit.rows(table):
                if row.get(column):
                    names.setdefault(row[column])
    return list(names)


class Publisher:
    """Where stages write (`work_root`) and how a finished unit's files reach the output root."""

    def __init__(self, output: str, remote: ObjectPath | None = None, staging: Path | None = None) -> None:
        self.output = output
        self.remote = remote  # with `staging`, or neither: a local output is written in place
        self.staging = staging

    @property
    def work_root(self) -> str:
        return self.output if self.staging is None else str(self.staging)

    def publish(self, unit: WorkUnit) -> None:
        """Upload the unit's staged files (a no-op for a local output, where stages wrote in place)."""
        if self.staging is None or self.remote is None:
            return
        for uri in unit_files(unit):
            source = resolve_uri(self.staging, uri)
            if not source.is_file():  # never commit rows naming a file readers cannot open
                raise PipelineError(f"unit {unit.unit_id}: {uri}, named by its rows, is not in the staging folder "
                                    f"{self.staging} (did its stage run on a node that does not share it?)")
            upload(source, self.remote / uri)

    def release(self, unit: WorkUnit) -> None:
        """Remove the committed unit's staged files, and its inputs' cached copies (curation.remote_inputs)."""
        drop_inputs(unit.inputs)
        if self.staging is None:
            return
        for uri in unit_files(unit):
            resolve_uri(self.staging, uri).unlink(missing_ok=True)


@contextmanager
def publisher(output: str) -> Iterator[Publisher]:
    """A Publisher for `output`: local outputs are written in place; `s3://` ones through a staging folder
    that is removed when the block ends."""
    remote = location(output)
    if not isinstance(remote, ObjectPath):
        yield Publisher(output)
        return
    parent = staging_dir()
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="liveditor-staging-", dir=parent))
    try:
        yield Publisher(output, remote, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
