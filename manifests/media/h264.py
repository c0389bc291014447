"""What an H.264 packet holds, read from its NAL unit headers without decoding: whether it is an IDR picture
(stream copy may start there) and whether any later picture may reference it (a sparse read may skip it)."""

from __future__ import annotations

from collections.abc import Iterator

IDR_SLICE = 5
SLICE = 1


def nal_length_size(extradata: bytes | None) -> int | None:
    """Bytes of each NAL unit's length prefix (AVCC, as in mp4) from the stream's avcC record; None for Annex B
    streams (start codes, as in .h264 or MPEG-TS)."""
    data = extradata or b""
    return (data[4] & 3) + 1 if len(data) > 4 and data[0] == 1 else None


def nal_headers(data: bytes | memoryview, length_size: int | None) -> Iterator[int]:
    """The header byte of each NAL unit in one packet (forbidden bit, nal_ref_idc in bits 5-6, type in 0-4)."""
    if length_size is None:
        raw = bytes(data)
        for chunk in raw.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")[1:]:
            if chunk:
                yield chunk[0]
        return
    pos = 0
    while pos + length_size < len(data):
        size = int.from_bytes(data[pos : pos + length_size], "big")
        yield data[pos + length_size]
        pos += length_size + size


def holds_idr(data: bytes | memoryview, length_size: int | None) -> bool:
    return any(h & 0x1F == IDR_SLICE for h in nal_headers(data, length_size))


def is_disposable(data: bytes | memoryview, length_size: int | None) -> bool:
    """True when the packet holds picture slices and every one has nal_ref_idc 0: no other picture references
    it, so a decoder that does not need this picture may skip it (a non-reference B-frame, typically)."""
    slices = [h for h in nal_headers(data, length_size) if h & 0x1F in (SLICE, IDR_SLICE)]
    return bool(slices) and all((h >> 5) & 3 == 0 for h in slices)
