"""The inputs of a run: every path the glob matches, why one cannot be read, and byte-identical duplicates.

Every match is accounted for: a path that is a folder, a dangling link, not a regular file, or a link that
resolves outside the input root (refused unless the config allows it) is still an input; the ingest stage
turns it into an `errors` row. Duplicates are found once, on the driver, over the whole plan: only inputs
whose size equals another's are hashed, and the first in plan order keeps the video id while the others
become `errors` rows naming it. So the winner does not depend on scheduling, units, nodes or resumes.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from manifests.storage import ObjectPath

_HASH_CHUNK = 1 << 20


class InputError(Exception):
    """An input path that cannot be a video file (folder, dangling link, link out of the root, gone, changed)."""


class DuplicateInput(Exception):
    """An input byte-identical to an earlier one in plan order."""


def sha256_of(path: Path | ObjectPath) -> str:
    """The file's or object's sha256, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_matches(root: Path, pattern: str) -> list[Path]:
    """Every path under `root` that `pattern` matches (files, folders, links, dangling or not), sorted."""
    return sorted(root.glob(pattern), key=lambda p: p.as_posix())


def input_problem(path: Path, root: Path, allow_outside: bool) -> str | None:
    """Why `path` cannot be read as an input file, as one line; None when it can.

    A path that reaches its file through a symbolic link is refused when the file lies outside `root`,
    unless `allow_outside`; it is never opened before that check.
    """
    absolute = Path(path).absolute()
    try:
        real = absolute.resolve(strict=True)
    except FileNotFoundError:
        return f"{path}: dangling symbolic link" if absolute.is_symlink() else f"{path}: no such file"
    except (OSError, RuntimeError) as exc:  # a link loop, a permission problem on the way
        return f"{path}: cannot resolve ({type(exc).__name__}: {exc})"
    through_link = real != Path(os.path.normpath(absolute))  # a link somewhere on the way
    if through_link and not allow_outside and not real.is_relative_to(Path(root).resolve()):
        return (f"{path}: symbolic link to {real}, outside the input root "
                "(set follow_symlinks_outside_input: true to allow it)")
    if real.is_dir():
        return f"{path}: a folder, not a video file"
    if not real.is_file():
        return f"{path}: not a regular file"
    return None


@dataclass(frozen=True)
class InputPlan:
    """What the plan knows of one input; ingest checks the file still matches it."""

    size: int | None = None  # None: the path was not readable at planning (ingest reports why)
    sha256: str | None = None  # set only where another input had the same size
    duplicate_of: str | None = None  # the earlier input (plan order) with the same bytes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputPlan:
        return cls(**data)


def plan_inputs(paths: list[Path], root: Path, allow_outside: bool) -> dict[str, InputPlan]:
    """Size of every readable input and, among inputs of equal size, hashes and duplicates (plan order)."""
    sizes: dict[str, int] = {}
    for path in paths:
        if input_problem(path, root, allow_outside) is None:
            sizes[str(path)] = path.stat().st_size
    return plan_sizes([str(p) for p in paths], sizes, lambda name: sha256_of(Path(name)))


def plan_sizes(names: list[str], sizes: dict[str, int], hash_of: Callable[[str], str]) -> dict[str, InputPlan]:
    """The plan of inputs `names` (in plan order) of which `sizes` are readable: inputs of equal size are
    hashed with `hash_of`, and a later byte-identical copy names the first."""
    same_size: dict[int, list[str]] = defaultdict(list)
    for name, size in sizes.items():
        same_size[size].append(name)
    hashes: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    for group in same_size.values():
        if len(group) < 2:
            continue
        first_with: dict[str, str] = {}
        for name in group:  # `paths` is in plan order, so each group is too
            hashes[name] = hash_of(name)
            duplicates_first = first_with.setdefault(hashes[name], name)
            if duplicates_first != name:
                duplicates[name] = duplicates_first
    return {name: InputPlan(sizes.get(name), hashes.get(name), duplicates.get(name)) for name in names}


def check_unchanged(path: Path, size: int, sha256: str, planned: InputPlan | None) -> None:
    """Raise InputError if the file is not the one that was planned (size, and hash where one was taken)."""
    if planned is None:
        return
    if (planned.size is not None and planned.size != size) or planned.sha256 not in (None, sha256):
        raise InputError(f"{path}: changed since the run was planned")
