"""Human tables and JSON-safe values for the CLI's two output modes."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from manifests.media.atomic import atomic_output

MAX_CELL = 48


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


def print_json(payload: object, out: TextIO = sys.stdout) -> None:
    json.dump(jsonable(payload), out, indent=1, allow_nan=False)
    out.write("\n")


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO = sys.stdout) -> None:
    """Left-aligned columns sized to their widest cell."""
    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip() + "\n")
    for row in text:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")


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
