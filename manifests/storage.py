"""Where a dataset lives: a local folder, or a prefix on object storage (`s3://bucket/prefix`).

`location(text)` gives a `pathlib.Path` for a local path (so local behaviour is exactly pathlib's) and an
`ObjectPath` for `s3://`: the subset of the Path interface the manifests use (`/`, name, parent, is_dir,
is_file, stat, glob, read/write, unlink), over a pyarrow S3FileSystem. What holds on object storage:

- there is no fsync and no rename: a PUT (single or multipart) is atomic, so an object is either absent or
  whole, and `write_bytes` / `open_write` are the atomic write (nothing is visible before the stream closes);
- folders do not exist, so `mkdir` is a no-op and `is_dir` means "some key has this prefix";
- credentials come only from the standard AWS chain (environment, config files, instance roles) and
  `AWS_ENDPOINT_URL` selects an S3-compatible server; nothing here reads, logs or stores them.

Errors of the object store (wrong key, missing bucket, server gone) surface as OSError whose text names the
operation; `first_line` of it never carries a credential (the AWS SDK does not print secrets).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import posixpath
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.fs as pafs

from manifests.errors import ManifestError

SCHEMES = ("s3://",)
"""Object stores a dataset root or input may name (pyarrow's S3 client; Google and Azure are not wired yet)."""
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 60.0
RETRIES = 3
"""Attempts per request: a server that is gone fails in seconds, not in the SDK's default minutes."""


@dataclass(frozen=True)
class Stat:
    st_size: int
    st_mtime: float


@dataclass(frozen=True)
class Entry:
    """A file directly in a folder (or an object directly under a prefix): name, bytes, modification time."""

    name: str
    size: int
    mtime: float


class ObjectPath:
    """A key (or key prefix) in a bucket, addressed like a Path; `str()` is its `s3://bucket/key` URI."""

    def __init__(self, scheme: str, key: str) -> None:
        self.scheme = scheme
        self.key = key.strip("/")

    @property
    def fs(self) -> pafs.FileSystem:
        return filesystem(self.scheme)

    def __str__(self) -> str:
        return f"{self.scheme}{self.key}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and (self.scheme, self.key) == (other.scheme, other.key)

    def __hash__(self) -> int:
        return hash((self.scheme, self.key))

    def __truediv__(self, part: str | os.PathLike[str]) -> ObjectPath:
        joined = posixpath.normpath(posixpath.join(self.key, os.fspath(part).replace("\\", "/")))
        return ObjectPath(self.scheme, joined)

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def stem(self) -> str:
        return posixpath.splitext(self.name)[0]

    @property
    def suffix(self) -> str:
        return posixpath.splitext(self.name)[1]

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.scheme, posixpath.dirname(self.key))

    def absolute(self) -> ObjectPath:
        return self

    resolve = absolute

    def _info(self) -> pafs.FileInfo:
        return self.fs.get_file_info(self.key)

    def is_dir(self) -> bool:
        return bool(self._info().type == pafs.FileType.Directory)

    def is_file(self) -> bool:
        return bool(self._info().type == pafs.FileType.File)

    def exists(self) -> bool:
        return bool(self._info().type != pafs.FileType.NotFound)

    def stat(self) -> Stat:
        info = self._info()
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"{self}: no such object")
        return Stat(int(info.size), info.mtime.timestamp() if info.mtime else 0.0)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Folders are implied by keys on object storage: nothing to create."""

    def iterdir(self) -> Iterator[ObjectPath]:
        """The objects directly under this prefix (one level, like a folder listing)."""
        selector = pafs.FileSelector(self.key, allow_not_found=True, recursive=False)
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File:
                yield ObjectPath(self.scheme, info.path)

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        return (p for p in self.iterdir() if fnmatch.fnmatchcase(p.name, pattern))

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.delete_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def open(self, mode: str = "rb") -> pa.NativeFile:
        """A binary stream of the object (reading only), as `Path.open("rb")` gives a file."""
        if mode != "rb":
            raise ValueError(f"{self}: objects open for reading only ('rb'), not {mode!r}")
        return self.fs.open_input_stream(self.key)

    def read_bytes(self) -> bytes:
        with self.open() as stream:
            return bytes(stream.read())

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, data: bytes) -> None:
        """One PUT: the object appears whole, or not at all."""
        with self.fs.open_output_stream(self.key) as out:
            out.write(data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())


Location: TypeAlias = Path | ObjectPath
Root: TypeAlias = str | os.PathLike[str] | ObjectPath
"""What a dataset root may be given as: a local path, an `s3://` URI string, or an ObjectPath."""
_FILESYSTEMS: dict[tuple[int, str, str], pafs.FileSystem] = {}


def endpoint() -> str:
    """The S3-compatible server named by the standard variables (empty: AWS itself)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""


def filesystem(scheme: str) -> pafs.FileSystem:
    """This process's client for `scheme` and the current endpoint (a forked child builds its own)."""
    url = endpoint()
    key = (os.getpid(), scheme, url)
    if key not in _FILESYSTEMS:
        retry = pafs.AwsStandardS3RetryStrategy(max_attempts=RETRIES)
        server: dict[str, Any] = {}
        if url:
            found = re.match(r"^(https?)://([^/]+)/?$", url)
            if not found:
                raise ManifestError(f"AWS_ENDPOINT_URL {url!r}: expected http(s)://host[:port]")
            server = {"scheme": found.group(1), "endpoint_override": found.group(2)}
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        _FILESYSTEMS[key] = pafs.S3FileSystem(
            region=region, connect_timeout=CONNECT_TIMEOUT_S, request_timeout=REQUEST_TIMEOUT_S, retry_strategy=retry,
            **server,
        )
    return _FILESYSTEMS[key]


def is_remote(text: Root) -> bool:
    return isinstance(text, ObjectPath) or (isinstance(text, str) and text.startswith(SCHEMES))


def location(text: Root, what: str = "path") -> Location:
    """`text` as a Path, or as an ObjectPath for `s3://bucket/prefix`; any other scheme is refused in one line."""
    if isinstance(text, ObjectPath):
        return text
    if isinstance(text, str) and (found := _SCHEME_RE.match(text)):
        scheme = found.group(0)
        if scheme not in SCHEMES:
            raise ManifestError(f"{what} {text}: {scheme} paths are not supported (local paths and s3:// only)")
        key = text[len(scheme):].strip("/")
        if not key or key.startswith(".") or "//" in key:
            raise ManifestError(f"{what} {text}: name a bucket and an optional prefix, s3://bucket/prefix")
        return ObjectPath(scheme, key)
    return Path(text)


def list_files(folder: Location) -> list[Entry]:
    """The files directly in `folder`, with sizes and times, in one listing (one LIST request on S3); a
    folder that does not exist lists as empty, and a file removed while listing is left out."""
    if isinstance(folder, ObjectPath):
        selector = pafs.FileSelector(folder.key, allow_not_found=True, recursive=False)
        return [Entry(posixpath.basename(i.path), int(i.size), i.mtime.timestamp() if i.mtime else 0.0)
                for i in folder.fs.get_file_info(selector) if i.type == pafs.FileType.File]
    if not folder.is_dir():
        return []
    out = []
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                if entry.is_file():
                    stat = entry.stat()
                    out.append(Entry(entry.name, stat.st_size, stat.st_mtime))
            except FileNotFoundError:
                continue
    return out


def delta_options(folder: Location) -> dict[str, str] | None:
    """delta-rs storage options for `folder`: none locally; on S3 only what the AWS chain cannot say (plain
    HTTP allowed when AWS_ENDPOINT_URL names an http:// server, as test and on-premise servers do)."""
    if not isinstance(folder, ObjectPath):
        return None
    return {"AWS_ALLOW_HTTP": "true"} if endpoint().startswith("http://") else {}


def arrow_source(path: Location) -> tuple[str, pafs.FileSystem | None]:
    """(path, filesystem) as pyarrow's readers take them: the local path as before, or the key and its client."""
    if isinstance(path, ObjectPath):
        return path.key, path.fs
    return str(path), None


@contextmanager
def open_write(path: Location) -> Iterator[Any]:
    """A writable stream that becomes `path` whole when the block completes: locally a file fsync'ed on close
    (the caller fsyncs the folder); on S3 a buffer uploaded (multipart when large) only after the block ends
    without error, since an upload stream cannot be abandoned (closing it publishes what was written)."""
    if isinstance(path, ObjectPath):
        buffer = pa.BufferOutputStream()
        yield buffer
        with path.fs.open_output_stream(path.key) as out:
            out.write(buffer.getvalue())
        return
    with open(path, "wb") as sink:
        yield sink
        sink.flush()
        os.fsync(sink.fileno())


def upload(source: Path, dest: ObjectPath) -> None:
    """Copy a finished local file to `dest`, streamed (multipart for large files); the object appears only
    once the upload completes, and a failed one leaves at most an object no manifest row names (gc's)."""
    pafs.copy_files(str(source), dest.key, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=dest.fs)


STAGING_ENV = "LIVEDITOR_STAGING_DIR"


def staging_dir() -> Path:
    """Where local copies of objects go (staged outputs, cached inputs and training files):
    LIVEDITOR_STAGING_DIR, or the system temp folder."""
    return Path(os.environ.get(STAGING_ENV) or tempfile.gettempdir())


def cached_path(obj: ObjectPath) -> Path:
    """Where `obj` is cached on this machine: a folder per URI, keeping the file name (and its extension)."""
    return staging_dir() / "liveditor-cache" / hashlib.sha256(str(obj).encode()).hexdigest()[:24] / obj.name


def cached_copy(obj: ObjectPath) -> Path:
    """A local copy of `obj`, downloaded once (to a temp name, then renamed: a reader never sees half a file).
    Committed dataset files are never rewritten, so a copy is valid as long as it exists; a missing object
    raises FileNotFoundError naming its URI."""
    target = cached_path(obj)
    if not target.is_file():
        download(obj, target)
    return target


def download(obj: ObjectPath, target: Path) -> None:
    """Copy `obj` to the local file `target` (to a temp name, then renamed: a reader never sees half a file);
    a missing object raises FileNotFoundError naming its URI."""
    if not obj.is_file():
        raise FileNotFoundError(f"{obj}: no such object")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        pafs.copy_files(obj.key, str(temp), source_filesystem=obj.fs, destination_filesystem=pafs.LocalFileSystem())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def drop_cached(obj: ObjectPath) -> None:
    """Remove the local copy of `obj`, if any."""
    target = cached_path(obj)
    target.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        target.parent.rmdir()

