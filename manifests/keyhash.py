"""64-bit hashes of string key columns, vectorised in numpy.

Validation must check key uniqueness and references over millions of rows without holding the
strings in Python sets; 8 bytes a key in a sorted numpy array does it. Collisions (about n^2/2^65,
~1e-7 at 1.7M keys) can only hide a problem, never invent one: duplicates found by hash are
re-checked on the real values.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pyarrow as pa

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL_HASH = np.uint64(0x5BD1E9955BD1E995)
_CHUNK_ROWS = 65_536


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return cast(np.ndarray, x ^ (x >> np.uint64(31)))


def hash_strings(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One uint64 per value, chaining mix64 over the string's 8-byte words, seeded by its length."""
    if isinstance(arr, pa.ChunkedArray):
        parts = [hash_strings(chunk) for chunk in arr.chunks]
        return np.concatenate(parts) if parts else np.empty(0, np.uint64)
    if len(arr) > _CHUNK_ROWS:  # cache-sized pieces are several times faster than one big pass
        return np.concatenate([hash_strings(arr.slice(i, _CHUNK_ROWS)) for i in range(0, len(arr), _CHUNK_ROWS)])
    if pa.types.is_dictionary(arr.type):
        hashes: np.ndarray = hash_strings(arr.dictionary)[arr.indices.fill_null(0).to_numpy(zero_copy_only=False)]
    else:
        hashes = _hash_plain(arr)
    if arr.null_count:
        hashes[arr.is_null().to_numpy(zero_copy_only=False)] = _NULL_HASH
    return hashes


def _hash_plain(arr: pa.Array) -> np.ndarray:
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1] if n else np.zeros(1, np.int64)
    start = int(offsets[0])
    padded = np.zeros(int(offsets[-1]) - start + 8, dtype=np.uint8)  # 8 spare bytes: every word read is in bounds
    if data_buf is not None and len(padded) > 8:
        padded[:-8] = np.frombuffer(data_buf, dtype=np.uint8)[start : int(offsets[-1])]
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))  # a word at every byte
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")  # longest first: the strings still hashing are a prefix
    length = lengths[order]
    begin = offsets[:-1][order] - start
    n_words = (length + 7) // 8
    acc = mix64(length.astype(np.uint64) + _GOLDEN)
    for k in range(int(n_words[0]) if n else 0):
        active = int(np.searchsorted(-n_words, -k, side="left"))
        word = words[begin[:active] + 8 * k]
        drop = (np.uint64(8) - np.minimum(length[:active] - 8 * k, 8).astype(np.uint64)) * np.uint64(8)
        word = (word << drop) >> drop  # keep only this string's bytes of the last word
        acc[:active] = mix64(acc[:active] * _GOLDEN + word)
    hashes = np.empty(n, dtype=np.uint64)
    hashes[order] = acc
    return hashes


def hash_rows(columns: list[np.ndarray]) -> np.ndarray:
    """One uint64 per row of a (possibly composite) key, from each column's hash_strings."""
    hashes = columns[0]
    for column in columns[1:]:
        hashes = mix64(hashes * _GOLDEN + column)
    return hashes


def sorted_unique(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, sorted distinct values that occur more than once), by one in-place sort."""
    ordered = hashes
    ordered.sort()
    if len(ordered) == 0:
        return ordered, ordered
    repeat = ordered[1:] == ordered[:-1]
    distinct = ordered[np.concatenate([[True], ~repeat])]
    repeated = ordered[1:][repeat]
    return distinct, repeated[np.concatenate([[True], repeated[1:] != repeated[:-1]])] if len(repeated) else repeated


def count_missing(hashes: np.ndarray, sorted_reference: np.ndarray) -> int:
    """How many of `hashes` are absent from the sorted `sorted_reference` (sorts `hashes` in place, for locality)."""
    hashes.sort()
    return int(missing_from(hashes, sorted_reference).sum())


def missing_from(hashes: np.ndarray, sorted_reference: np.ndarray) -> np.ndarray:
    """Boolean mask of `hashes` not present in the sorted `sorted_reference`."""
    if len(sorted_reference) == 0:
        return np.ones(len(hashes), dtype=bool)
    idx = np.searchsorted(sorted_reference, hashes)
    idx[idx == len(sorted_reference)] = 0
    return cast(np.ndarray, sorted_reference[idx] != hashes)
