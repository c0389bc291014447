"""Human tables and JSON-safe values for the CLI's two output modes."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from manifests.media.atomic import atomic_output

MAX_CELL = 48
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories a terminal acts on or hides: controls (ESC, BEL, CR, LF, DEL, C1), format characters
(bidi overrides, zero-width), lone surrogates (undecodable file names), line and paragraph separators."""
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` with every character a terminal would act on or hide shown as a visible escape (`\\x1b`, `\\n`,
    `\\u202e`): a name or value from a manifest can neither rewrite the screen nor break a table's lines."""
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(_escape(c) if unicodedata.category(c) in ESCAPED_CATEGORIES else c for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def jsonable(value: object) -> object:
    """A value json.dumps accepts and scripts can rely on: NaN/inf become null, bytes base64."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return value


def print_json(payload: object) -> None:
    """JSON on stdout (looked up at each call, so a caller's redirect_stdout or capture applies)."""
    json.dump(jsonable(payload), sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")


def cell(value: object) -> str:
    """A value as a printable table cell of at most MAX_CELL characters (escaping only the part shown)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    shown = printable(text[: MAX_CELL + 1])
    return shown if len(shown) <= MAX_CELL else shown[: MAX_CELL - 3] + "..."


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Left-aligned columns sized to their widest cell; headers and cells made printable."""
    headers = [printable(h) for h in headers]
    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    for row in [headers, *text]:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def write_json_atomically(path: Path, data: object) -> None:
    """Write JSON to `path` atomically (see `manifests.media.atomic`), so no reader sees half of it."""
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(jsonable(data), indent=1) + "\n")
