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

Through Ray, a unit's stages may run on nodes that share no disk: each node stages under its own
staging_dir(), in a folder of the run's name (`run_on_this_node`). A stage actor first downloads the files the
unit's rows already name that its node lacks (an earlier stage wrote them elsewhere), and uploads the files
its stage added as soon as it returns; on a node other than the driver's it then removes the unit's files,
so no node but the driver's keeps anything. The driver uploads what is still only in its own staging folder
(in-process runs: all of it) and checks that every other file is there; a file neither staged nor uploaded
stops the run with one line before that unit commits: rows never name an absent file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from curation.remote_inputs import drop_inputs
from curation.stage import WorkUnit
from curation.units import PipelineError
from manifests.schema import URI_COLUMNS
from manifests.storage import ObjectPath, download, location, staging_dir, upload
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
        """Upload the unit's staged files, or check that a stage actor on another node did (a no-op for a
        local output, where stages wrote in place)."""
        if self.staging is None or self.remote is None:
            return
        for uri in unit_files(unit):
            source = resolve_uri(self.staging, uri)
            if source.is_file():
                upload(source, self.remote / uri)
            elif not (self.remote / uri).is_file():  # never commit rows naming a file readers cannot open
                raise PipelineError(f"unit {unit.unit_id}: {uri}, named by its rows, is neither in the staging "
                                    f"folder {self.staging} nor uploaded by the stage that wrote it")

    def release(self, unit: WorkUnit) -> None:
        """Remove the committed unit's staged files, and its inputs' cached copies (curation.remote_inputs)."""
        drop_inputs(unit.inputs)
        if self.staging is None:
            return
        for uri in unit_files(unit):
            resolve_uri(self.staging, uri).unlink(missing_ok=True)


def run_on_this_node(run: Callable[[WorkUnit], WorkUnit], unit: WorkUnit, output: str, keep_files: bool) -> WorkUnit:
    """`run(unit)` in a stage actor, for an `s3://` output: the unit re-rooted on this node's staging folder,
    the files its rows name fetched from `output` where this node lacks them; then the files the stage added
    uploaded and, unless `keep_files` (the driver's node), the unit's files and cached `s3://` inputs
    removed here. For a local output, `run(unit)` as it came."""
    remote = location(output)
    if not isinstance(remote, ObjectPath):
        return run(unit)
    local = replace(unit, out_root=str(staging_dir() / Path(unit.out_root).name))
    before = unit_files(local)
    for uri in before:
        path = resolve_uri(local.out_root, uri)
        if not path.is_file():
            download(remote / uri, path)
    done = run(local)
    named = unit_files(done)
    for uri in set(named) - set(before):
        path = resolve_uri(local.out_root, uri)
        if path.is_file():  # one that is not: the driver refuses to commit the unit (Publisher.publish)
            upload(path, remote / uri)
    if not keep_files:
        for uri in named:
            resolve_uri(local.out_root, uri).unlink(missing_ok=True)
        drop_inputs(unit.inputs)  # the driver empties only its own node's input cache
    return done


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
