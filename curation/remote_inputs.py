"""Inputs on object storage (`--input s3://bucket/prefix`): listed for the plan, staged into a local cache
for the stages that decode them, and removed from the cache once their unit is committed.

Rows keep the `s3://` URI of each input (videos.uri, errors.input, error ids), so a run, its resume and a
local run of the same files differ only in that URI. A stage opens an input through `local_input`, which
is the identity for local paths and, for an object, downloads it once per node into the cache of
manifests.storage (under LIVEDITOR_STAGING_DIR or the temp folder; a temp name, then renamed: a reader
never sees half a file). The driver removes a unit's cached inputs after its commit, so the cache holds
the inputs of the units in flight.
"""

from __future__ import annotations

import fnmatch

import pyarrow.fs as pafs

from curation.inputs import InputPlan, plan_sizes, sha256_of
from manifests.storage import ObjectPath, cached_copy, drop_cached, is_remote, location


def list_objects(root: ObjectPath, pattern: str) -> dict[str, int]:
    """Relative key -> size of every object under `root` that the glob `pattern` matches (`**/` also matches
    no folder, as in Path.glob), sorted by key."""
    infos = root.fs.get_file_info(pafs.FileSelector(root.key, allow_not_found=True, recursive=True))
    found = {}
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(root.key) + 1:]
        if fnmatch.fnmatchcase(rel, pattern) or (pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:])):
            found[rel] = int(info.size)
    return dict(sorted(found.items()))


def plan_objects(root: ObjectPath, rels: list[str], sizes: dict[str, int]) -> dict[str, InputPlan]:
    """The plan of objects `rels` (keyed by their full `s3://` URIs): sizes from the listing, and hashes,
    streamed, only among objects of equal size."""
    objects = {str(root / rel): root / rel for rel in rels}
    known = {str(root / rel): sizes[rel] for rel in rels if rel in sizes}
    return plan_sizes(list(objects), known, lambda uri: sha256_of(objects[uri]))


def local_input(uri: str) -> str:
    """A local path holding the input `uri`: the path itself, or the object's cached copy (downloaded once per
    node; a missing object raises FileNotFoundError naming the URI)."""
    found = location(uri) if is_remote(uri) else None
    return str(cached_copy(found)) if isinstance(found, ObjectPath) else uri


def drop_inputs(uris: list[str]) -> None:
    """Remove the cached copies of the inputs `uris` (after their unit committed)."""
    for uri in uris:
        found = location(uri) if is_remote(uri) else None
        if isinstance(found, ObjectPath):
            drop_cached(found)
