"""64-bit hashes of string key columns, vectorised in numpy.

Validation must check key uniqueness and references over millions of rows without holding the
strings in Python sets; 8 bytes a key in a sorted numpy array does it. Collisions (about n^2/2^65,
~1e-7 at 1.7M keys) can only hide a problem, never invent one: duplicates found by hash are
re-checked on the real values.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL_HASH = np.uint64(0x5BD1E9955BD1E995)
_POSITIONS = 256
_CHUNK_ROWS = 65_536
# Tabulation hashing: one random 64-bit word per (position mod 256, byte value).
_TABLE = np.random.default_rng(0x11EED170).integers(0, 2**64, size=_POSITIONS * 256, dtype=np.uint64)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hash_strings(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One uint64 per value: sum of table[position mod 256, byte] over the string, mixed with its length."""
    if isinstance(arr, pa.ChunkedArray):
        parts = [hash_strings(chunk) for chunk in arr.chunks]
        return np.concatenate(parts) if parts else np.empty(0, np.uint64)
    if len(arr) > _CHUNK_ROWS:  # cache-sized pieces are several times faster than one big pass
        return np.concatenate([hash_strings(arr.slice(i, _CHUNK_ROWS)) for i in range(0, len(arr), _CHUNK_ROWS)])
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    start = int(offsets[0]) if n else 0
    data = np.frombuffer(data_buf, dtype=np.uint8)[start : int(offsets[-1])] if n and data_buf else np.empty(0, np.uint8)
    rel = offsets - start
    lengths = np.diff(rel)
    position = np.arange(len(data), dtype=np.int64) - np.repeat(rel[:-1], lengths)
    elems = _TABLE[((position % _POSITIONS) << 8) | data]
    cumulative = np.concatenate([np.zeros(1, np.uint64), np.cumsum(elems, dtype=np.uint64)])
    sums = cumulative[rel[1:]] - cumulative[rel[:-1]]
    hashes = mix64(sums ^ mix64(lengths.astype(np.uint64) + _GOLDEN))
    if arr.null_count:
        hashes[arr.is_null().to_numpy(zero_copy_only=False)] = _NULL_HASH
    return hashes


def hash_rows(columns: list[pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """One uint64 per row of a (possibly composite) string key."""
    hashes = hash_strings(columns[0])
    for column in columns[1:]:
        hashes = mix64(hashes * _GOLDEN + hash_strings(column))
    return hashes


def duplicated(hashes: np.ndarray) -> np.ndarray:
    """The distinct hash values that occur more than once."""
    ordered = np.sort(hashes)
    repeats = ordered[1:][ordered[1:] == ordered[:-1]]
    return np.unique(repeats)


def missing_from(hashes: np.ndarray, sorted_reference: np.ndarray) -> np.ndarray:
    """Boolean mask of `hashes` not present in the sorted `sorted_reference`."""
    if len(sorted_reference) == 0:
        return np.ones(len(hashes), dtype=bool)
    idx = np.searchsorted(sorted_reference, hashes)
    idx[idx == len(sorted_reference)] = 0
    return sorted_reference[idx] != hashes
