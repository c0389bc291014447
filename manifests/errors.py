"""The one exception the manifest layer raises, so callers and the CLI can catch one thing."""

from __future__ import annotations


class ManifestError(Exception):
    """A bad manifest input or file, described in one line (table, column or file, and the problem)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def first_line(exc: BaseException, limit: int = 500) -> str:
    """The first line of an exception's message (Arrow errors can span many lines), at most `limit` characters
    (a hostile value quoted in a message can be megabytes long)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else f"{line[:limit - 3]}..."
