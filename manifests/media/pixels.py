"""What a source's stored pixels need before they are clip pixels: square pixels, SDR, 8 bits, progressive.

Pure functions over what `probe` reads, so ingest (which fills the `videos` row) and extraction (which
converts the frames) describe and size a conversion the same way.

Size rule (`display_size`): a source's sample aspect ratio (SAR) stretches its stored pixel grid along the
stored rows, so the display size scales the stored width by the SAR and keeps the stored height (a 704x576
source at SAR 16:11 displays at 1024x576, 16:9); sides are rounded down to even. Rotation composes after
it: the display matrix turns the stretched picture, so on a quarter turn the scaled axis is the upright
picture's height. `VideoInfo.width`/`height` are already upright (turned), hence the `rotation` argument.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

DEINTERLACER = "yadif"
"""The FFmpeg filter extraction deinterlaces with (bundled with PyAV), named in the conversion text."""
DEINTERLACER_ARGS = "mode=send_frame:parity=auto:deint=all"
"""One output frame per input frame (frame count and rate unchanged), field order from the stream,
every frame: the video was judged interlaced as a whole by `probe`."""

# FFmpeg's names of the transfer characteristics (libavutil av_color_transfer_name), by AVColorTransferCharacteristic
_TRANSFER_NAMES = {
    1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
    15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}
_HDR: dict[str, Literal["pq", "hlg"]] = {"smpte2084": "pq", "arib-std-b67": "hlg"}


def transfer_name(code: int) -> str:
    """FFmpeg's name of a transfer characteristic code (what `ffprobe` prints as color_transfer)."""
    return _TRANSFER_NAMES.get(int(code), "unknown")


def hdr_kind(color_transfer: str) -> Literal["pq", "hlg"] | None:
    """"pq" (SMPTE ST 2084) or "hlg" (ARIB STD-B67) for an HDR transfer, None for SDR or unknown."""
    return _HDR.get(color_transfer)


def sar_text(sar: tuple[int, int]) -> str:
    """The SAR as the `videos.sar` column holds it: "16:11", "1:1"."""
    return f"{sar[0]}:{sar[1]}"


def _even(value: Fraction | int) -> int:
    return max(2, int(value) // 2 * 2)  # down, as resolution buckets round: never a pixel the source lacks


def display_size(width: int, height: int, sar: tuple[int, int], rotation: int = 0) -> tuple[int, int]:
    """Square-pixel (width, height) showing an upright `width` x `height` picture at its display aspect.

    `width`/`height` are upright (after `rotation`, degrees as `VideoInfo.rotation`); the SAR scales the
    stored width, which a quarter turn makes the upright height. The other side is kept (even). `sar` is
    positive, as `VideoInfo.sar` always is.
    """
    scale = Fraction(*sar)
    if rotation % 180 == 90:
        return _even(width), _even(height * scale)
    return _even(width * scale), _even(height)


def conversion(bit_depth: int, interlaced: bool, sar: tuple[int, int]) -> str | None:
    """What extraction does to a source's pixels beyond scaling, e.g. "10-bit to 8-bit; deinterlaced (yadif)";
    None when nothing. HDR sources never get here: ingest rejects them (no tone map in this FFmpeg)."""
    steps = []
    if bit_depth > 8:
        steps.append(f"{bit_depth}-bit to 8-bit")
    if interlaced:
        steps.append(f"deinterlaced ({DEINTERLACER})")
    if Fraction(*sar) != 1:
        steps.append(f"SAR {sar_text(sar)} to square pixels")
    return "; ".join(steps) or None


def upright_filters(rotation: int) -> list[tuple[str, str]]:
    """FFmpeg filters (name, arguments) that turn a stored picture upright, `rotation` being the degrees
    counterclockwise its display matrix turns it (0, 90, 180 or 270, as `probe` reads it)."""
    turns: dict[int, list[tuple[str, str]]] = {
        0: [], 90: [("transpose", "cclock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "clock")],
    }
    return turns[round(rotation / 90) * 90 % 360]
