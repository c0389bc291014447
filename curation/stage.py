"""The stage contract every curation stage follows (modelled on Cosmos-curate's stages).

A stage is a small class: its frozen section of the job config (a `StageConfig` declared in the stage's
file, see curation/stage_config.py) given to a cheap `__init__` (it runs on the driver and again on every
worker), `setup()` that loads models once per worker, and one method `process(unit) -> StageOutput` that
turns the rows of one unit of work into new rows per manifest table. Class attributes name the stage, its
version, its section's class and the resources one worker of it needs. Rows
get their provenance from `Stage.stamp` only, and a failure for one input becomes an `errors` row
(through `Stage.isolate`) while the rest of the unit goes on.

A `WorkUnit` is what crosses Ray's object store between stages: a unit id, a few input paths and
small rows (URIs and numbers, never frames), serialised as one JSON string.
"""

from __future__ import annotations

import errno
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self, TypeVar

from curation.faults import crash_fault, raise_fault
from curation.stage_config import JobSettings, StageConfig
from manifests.schema import NO_MODEL, PRIMARY_KEYS

T = TypeVar("T")
R = TypeVar("R")

MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EMFILE, errno.ENFILE,
                            errno.ENOMEM})
"""OS errors that say the machine (disk full, file too large, read-only, out of descriptors) failed, not the
input: they fail the unit instead of becoming `errors` rows, so a resume on a mended machine redoes it."""


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage reserves from Ray (fractions allowed, as in Ray)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0


@dataclass
class WorkUnit:
    """One unit of work: a deterministic batch of input videos and the rows made for it so far."""

    unit_id: str
    inputs: list[str]
    out_root: str
    attempt: int = 1
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    planned: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What the plan knows of each input (curation.inputs.InputPlan as JSON): size, hash, duplicate_of."""

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])

    def to_json(self) -> str:
        return json.dumps(
            {"unit_id": self.unit_id, "inputs": self.inputs, "out_root": self.out_root,
             "attempt": self.attempt, "tables": self.tables, "planned": self.planned},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> WorkUnit:
        data = json.loads(text)
        return cls(data["unit_id"], list(data["inputs"]), data["out_root"], int(data["attempt"]), data["tables"],
                   data["planned"])


@dataclass(frozen=True)
class StageOutput:
    """Rows a stage made or updated, per manifest table.

    Merged into the unit by primary key: a row whose key already exists replaces it in place
    (e.g. the extract stage filling `clips.uri`), a new key is appended. Order stays deterministic.
    """

    rows: dict[str, list[dict[str, Any]]]


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    """Upsert `new` into `old` by primary key, keeping the first-seen order of keys."""
    merged = {tuple(r[k] for k in key): r for r in old}
    for row in new:
        merged[tuple(row[k] for k in key)] = row
    return list(merged.values())


def merge_output(unit: WorkUnit, output: StageOutput) -> WorkUnit:
    tables = dict(unit.tables)
    for table, rows in output.rows.items():
        tables[table] = merge_rows(tables.get(table, []), rows, PRIMARY_KEYS[table])
    return replace(unit, tables=tables)


def error_id(input_name: str, stage: str, attempt: int) -> str:
    """Deterministic id of one failure, so a re-run of the same unit writes the same errors rows."""
    return hashlib.sha256(f"{input_name}\0{stage}\0{attempt}".encode()).hexdigest()[:24]


def one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class Stage(ABC):
    """Base of every curation stage: rows in, rows out, declared resources, provenance in one place."""

    name: ClassVar[str]
    """Also the key of the stage's section in the job config."""
    version: ClassVar[str]
    resources: ClassVar[Resources] = Resources()
    writes: ClassVar[tuple[str, ...]]
    """The manifest tables this stage makes or updates rows of (a unit commits every enabled stage's tables)."""
    Config: ClassVar[type[StageConfig] | None] = None
    """The class of the stage's section (`<name>:` in the YAML); None: the stage has no section. A stage with
    one takes it as `__init__(self, config: <its Config>)`."""
    optional: ClassVar[bool] = False
    """An optional stage runs only when the job config has its section (e.g. `objects:`); absent or null, not."""

    @classmethod
    def enabled(cls, job: JobSettings) -> bool:
        return not cls.optional or job.section(cls.name) is not None

    @classmethod
    def from_job(cls, job: JobSettings) -> Self:
        """The stage of this job, built from its own section; a stage that needs job settings overrides this."""
        if cls.Config is None:
            return cls()
        return cls(job.section(cls.name))  # type: ignore[call-arg]  # a stage with a Config takes its section (see Config)

    def __init__(self) -> None:
        self.model_name = NO_MODEL
        self.weights_id = NO_MODEL

    def preflight(self) -> None:  # noqa: B027 - an optional hook: most stages check nothing
        """Checks on the driver before any worker starts (e.g. that model weights exist); raise to refuse."""

    def setup(self) -> None:  # noqa: B027 - an optional hook: most stages load nothing
        """Load models on the worker that will run `process`; the default stage has none."""

    @abstractmethod
    def process(self, unit: WorkUnit) -> StageOutput:
        """Make this stage's rows for one unit; must not raise for a bad input (see `isolate`)."""

    def run(self, unit: WorkUnit) -> WorkUnit:
        crash_fault(self.name, unit.out_root)
        return merge_output(unit, self.process(unit))

    def provenance(self, source: Any = None) -> dict[str, str]:
        """Provenance columns of this stage's rows.

        `source` is the detector or signal that made the value (anything with name, version,
        model_name and weights_id): its model and weights replace the stage's, and its version joins
        the stage's as "<stage version>+<source name>-<source version>".
        """
        if source is None:
            return {"stage": self.name, "stage_version": self.version,
                    "model_name": self.model_name, "weights_id": self.weights_id}
        return {
            "stage": self.name,
            "stage_version": f"{self.version}+{source.name}-{source.version}",
            "model_name": source.model_name,
            "weights_id": source.weights_id,
        }

    def stamp(self, row: dict[str, Any], source: Any = None) -> dict[str, Any]:
        return {**row, **self.provenance(source)}

    def error_row(self, input_name: str, exc: BaseException, attempt: int) -> dict[str, Any]:
        return self.stamp({
            "error_id": error_id(input_name, self.name, attempt),
            "input": input_name,
            "error_class": type(exc).__name__,
            "message": one_line(str(exc)) or type(exc).__name__,
            "attempt": attempt,
        })

    def isolate(
        self, items: Iterable[T], fn: Callable[[T], R], input_of: Callable[[T], str], attempt: int
    ) -> tuple[list[R], list[dict[str, Any]]]:
        """Apply `fn` to each item; an exception for one item becomes an errors row, the others go on."""
        results: list[R] = []
        errors: list[dict[str, Any]] = []
        for item in items:
            try:
                raise_fault(self.name, input_of(item))
                results.append(fn(item))
            except Exception as exc:
                if getattr(exc, "errno", None) in MACHINE_ERRNOS:
                    raise  # the machine, not the input: the unit fails and a resume redoes it
                errors.append(self.error_row(input_of(item), exc, attempt))
        return results, errors
