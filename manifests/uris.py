"""Which URI values point outside the dataset root: vectorised over Arrow arrays, exact where it matters."""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests.errors import ManifestError
from manifests.storage import Location, ObjectPath, Root, cached_copy, is_remote, location

SCHEME_RE = r"^[A-Za-z][A-Za-z0-9+.\-]*://"
ABSOLUTE_RE = r"^([/\\]|[A-Za-z]:[/\\])"
# Problem kinds, in the order they are tested; a value counts under the first that applies.
EMPTY, ABSOLUTE, ESCAPES = "empty", "absolute", "escapes"


def uri_problems(values: pa.Array, allow_absolute: bool) -> dict[str, np.ndarray]:
    """Boolean masks (one per problem kind) over `values`; nulls are never a problem."""
    present = pc.is_valid(values)
    empty = pc.and_(present, pc.equal(pc.utf8_trim_whitespace(values), ""))
    outside = pc.or_(pc.match_substring_regex(values, SCHEME_RE), pc.match_substring_regex(values, ABSOLUTE_RE))
    outside = pc.fill_null(outside, False)
    relative = pc.and_(pc.and_(present, pc.invert(outside)), pc.invert(empty))
    maybe_escapes = pc.fill_null(pc.and_(relative, pc.match_substring(values, "..")), False)
    escapes = np.zeros(len(values), dtype=bool)
    for i in np.flatnonzero(maybe_escapes.to_numpy(zero_copy_only=False)):
        escapes[i] = escapes_root(values[int(i)].as_py())
    absolute = np.zeros(len(values), dtype=bool) if allow_absolute else outside.to_numpy(zero_copy_only=False)
    return {EMPTY: _np(empty), ABSOLUTE: absolute, ESCAPES: escapes}


def escapes_root(relative_uri: str) -> bool:
    """Whether a relative path climbs above its root once normalised (`a/../../b` does, `a/../b` not)."""
    normal = posixpath.normpath(relative_uri.replace("\\", "/"))
    return normal == ".." or normal.startswith("../")


def _np(mask: pa.Array) -> np.ndarray:
    return cast(np.ndarray, pc.fill_null(mask, False).to_numpy(zero_copy_only=False))


def resolve_uri(root: str | os.PathLike[str], uri: str) -> Path:
    """The local path of a dataset URI under a local `root` (see `resolve_location`); a root on object storage
    is refused in one line: its files must be read through `resolve_location` (or staged locally first)."""
    found = resolve_location(root, uri)
    if isinstance(found, ObjectPath):
        raise ManifestError(f"uri {uri!r}: the dataset root {root} is on object storage; this reader needs local files")
    return found


def local_file(root: Root, uri: str) -> Path:
    """`resolve_location` for readers that need a local file (decoders): under an `s3://` root, the object's
    local copy (manifests.storage.cached_copy)."""
    found = resolve_location(root, uri)
    return cached_copy(found) if isinstance(found, ObjectPath) else found


def resolve_location(root: Root, uri: str) -> Location:
    """The path (a local Path, or an ObjectPath under an `s3://` root) of a dataset URI, which must stay under `root`.

    The one resolver for every reader and writer of clip, mask and target files: a URI is a relative
    POSIX path; empty strings, `~`, schemes (`file:`, `s3://`), absolute paths, `..` that climbs out and
    symlinks whose target lies outside the root are refused with a one-line ManifestError. Under a root on
    object storage the URI names a key below the root's prefix (no symlinks there).
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ManifestError(f"uri {uri!r}: empty")
    if uri.startswith("~") or re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", uri) or re.match(ABSOLUTE_RE, uri):
        raise ManifestError(f"uri {uri!r}: must be a path relative to the dataset root (no ~, scheme or absolute path)")
    if "\0" in uri or escapes_root(uri):
        raise ManifestError(f"uri {uri!r}: escapes the dataset root")
    if isinstance(root, ObjectPath) or is_remote(root):
        return location(root) / uri.replace("\\", "/")
    base = Path(root).resolve()
    path = base / uri.replace("\\", "/")
    real = path.resolve()
    if real != base and base not in real.parents:
        raise ManifestError(f"uri {uri!r}: resolves outside the dataset root (symlink?)")
    return path


def local_path(text: str, what: str) -> Path:
    """`text` as a local path, refusing a scheme URI (`s3://`, `gs://`, `http://`...) in one line: a dataset root
    or input on object storage is not supported yet, and must never become a local folder named `s3:`."""
    found = re.match(SCHEME_RE, text)
    if found:
        raise ManifestError(f"{what} {text}: {found.group(0)} paths are not supported (local paths only for now)")
    return Path(text)
