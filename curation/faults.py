"""Fault injection for tests and drills, set from the environment of the job's driver.

`LIVEDITOR_FAULTS` holds comma-separated `name=value` items:
- `kill_after_commits=N`: SIGKILL this process right after its N-th manifest commit (a unit makes one
  commit per table, then its completion record, so N can land between two tables of one unit);
- `pause_after_commits=N` with `pause_file=PATH`: after the N-th commit, create `PATH.paused` and wait
  until PATH exists (a test inspects the running job, then releases it);
- `crash_in=STAGE+STAGE...`: the Ray actor of each named stage exits hard (os._exit) on its first unit,
  once per output root (a marker under `<output>/logs/faults/` keeps the restarted actor alive);
- `raise_in=STAGE:TEXT+STAGE:TEXT...`: the stage raises for every input whose name (path, or clip id)
  contains TEXT (an `errors` row).
Counting commits, not time, makes a driver fault land at the same point on every run. Workers read the
same variable: a local Ray inherits the driver's environment, `ray job submit` passes it in `env_vars`.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

FAULTS_ENV = "LIVEDITOR_FAULTS"


class FaultSpecError(ValueError):
    """LIVEDITOR_FAULTS cannot be parsed; one line."""


@dataclass(frozen=True)
class Faults:
    kill_after_commits: int | None = None
    pause_after_commits: int | None = None
    pause_file: str | None = None
    crash_in: tuple[str, ...] = ()
    raise_in: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, spec: str) -> Faults:
        values: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, value = item.partition("=")
            if not sep or name not in cls.__dataclass_fields__:
                raise FaultSpecError(f"{FAULTS_ENV}: bad item {item!r}; known: {sorted(cls.__dataclass_fields__)}")
            values[name] = value
        pairs = (pair.partition(":") for pair in values.get("raise_in", "").split("+") if pair)
        raise_in = tuple((stage, text) for stage, _, text in pairs)
        if not all(stage and text for stage, text in raise_in):
            raise FaultSpecError(f"{FAULTS_ENV}: raise_in needs STAGE:TEXT items, got {values['raise_in']!r}")
        try:
            faults = cls(
                kill_after_commits=int(values["kill_after_commits"]) if "kill_after_commits" in values else None,
                pause_after_commits=int(values["pause_after_commits"]) if "pause_after_commits" in values else None,
                pause_file=values.get("pause_file"),
                crash_in=tuple(filter(None, values.get("crash_in", "").split("+"))),
                raise_in=raise_in,
            )
        except ValueError:
            raise FaultSpecError(f"{FAULTS_ENV}: commit counts must be integers in {spec!r}") from None
        if (faults.pause_after_commits is None) != (faults.pause_file is None):
            raise FaultSpecError(f"{FAULTS_ENV}: pause_after_commits and pause_file go together")
        return faults

    @classmethod
    def from_env(cls) -> Faults:
        return cls.parse(os.environ.get(FAULTS_ENV, ""))


class CommitFaults:
    """Counts the driver's manifest commits and fires the configured faults at their commit."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.commits = 0

    def after_commit(self) -> None:
        self.commits += 1
        if self.commits == self.faults.kill_after_commits:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.commits == self.faults.pause_after_commits and self.faults.pause_file:
            release = Path(self.faults.pause_file)
            Path(f"{release}.paused").touch()
            while not release.exists():
                time.sleep(0.05)


class InjectedFault(RuntimeError):
    """Raised by `raise_in`: stands for any failure of one input inside a stage."""


def crash_fault(stage: str, out_root: str) -> None:
    """`crash_in`: exit this worker hard on the stage's first unit of this output root."""
    if stage in Faults.from_env().crash_in:
        marker = Path(out_root) / "logs" / "faults" / f"crashed-{stage}"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os._exit(3)


def raise_fault(stage: str, input_name: str) -> None:
    """`raise_in`: fail this input of this stage."""
    if any(stage == where and text in input_name for where, text in Faults.from_env().raise_in):
        raise InjectedFault(f"{input_name}: injected fault in stage {stage}")
