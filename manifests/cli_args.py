"""What the project's command lines share: a parser whose usage errors are one printable line, and
`type=` functions with explicit ranges.

A number outside its range (`-n 99999999999999999999`, `--retention-hours inf`) is then a one-line usage
error and exit 2 at parse time, instead of an OverflowError or a huge allocation deep in a command.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

from manifests.render import printable

EXIT_USAGE = 2
_SHOWN = 40  # characters of a rejected argument quoted back (it may be thousands of digits)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one printable `error:` line and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {printable(message)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _quoted(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")


def int_in(low: int, high: int) -> Callable[[str], int]:
    """A `type=` accepting whole numbers from `low` to `high` inclusive."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # also a digit string too long for int()
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low:,} to {high:,}, got {_quoted(text)}")
        return value

    return parse


def float_in(low: float, high: float) -> Callable[[str], float]:
    """A `type=` accepting finite numbers from `low` to `high` inclusive (no nan, no inf)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"expected a finite number from {low:g} to {high:g}, got {_quoted(text)}")
        return value

    return parse
