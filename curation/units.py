"""Units of work: the deterministic plan of a curation run, saved for resume, and per-unit commits.

Every path the input glob matches, sorted, is cut into batches of `batch_size`: unit `b000000`,
`b000001`, ... The plan also holds what curation/inputs.py learns on the driver (sizes, and hashes and
duplicates among inputs of equal size), so every unit, on any node, in any order, and after any resume,
decides duplicates the same way. It is saved in `<output>/curate_plan.json` at the start; `--resume` runs
that saved plan, refusing changed settings or inputs added since. A unit is done when its rows are
committed in every table it writes; its completion record carries the digest of the row-shaping settings,
so a resume also refuses an output whose committed units were made under other settings, or that holds
committed units but no plan.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curation.inputs import list_matches, plan_inputs
from curation.job_config import RunSettings
from curation.remote_inputs import list_objects, plan_objects
from curation.stage import WorkUnit
from manifests import SCHEMAS, commit_unit_tables, is_unit_complete
from manifests.errors import first_line
from manifests.media.atomic import atomic_output
from manifests.storage import Location, ObjectPath, location
from manifests.units import complete_units


class PipelineError(Exception):
    """The job cannot start (no inputs, output in the way, resume of another plan); one line."""


PLAN_FILE = "curate_plan.json"
PLAN_VERSION = 2
_RUNTIME_KEYS = {"input", "output", "num_cpus", "ray_address", "resources"}
"""Config keys that may change between a run and its resume: they move or schedule work, not shape rows."""


def list_inputs(config: RunSettings) -> list[Path]:
    """Every path under `config.input` that the glob matches, sorted by path so units are deterministic."""
    root = Path(config.input)
    if not root.is_dir():
        raise PipelineError(f"input {root} is not a directory")
    matches = list_matches(root, config.input_glob)
    if not matches:
        raise PipelineError(f"no input files match {config.input_glob!r} under {root}")
    return matches


def list_objects_of(root: ObjectPath, pattern: str) -> dict[str, int]:
    """The objects under an `s3://` input that the glob matches (relative key -> size); none is an error."""
    try:
        found = list_objects(root, pattern)
    except OSError as exc:
        raise PipelineError(f"input {root}: cannot list objects ({first_line(exc)})") from None
    if not found:
        raise PipelineError(f"no input files match {pattern!r} under {root}")
    return found


def new_plan(config: RunSettings) -> dict[str, Any]:
    """The plan as saved: row-shaping settings, units of input paths (relative to the input root), inputs."""
    source = location(config.input)
    if isinstance(source, ObjectPath):
        sizes = list_objects_of(source, config.input_glob)
        relative = list(sizes)
        planned = plan_objects(source, relative, sizes)
        root: Location = source
    else:
        root = source.absolute()
        paths = [root / p.relative_to(config.input) for p in list_inputs(config)]
        planned = plan_inputs(paths, root, config.follow_symlinks_outside_input)
        relative = [p.relative_to(root).as_posix() for p in paths]
    size = config.batch_size
    return {
        "plan_version": PLAN_VERSION,
        "settings": row_settings(config),
        "units": [[f"b{i // size:06d}", relative[i : i + size]] for i in range(0, len(relative), size)],
        "inputs": {rel: planned[str(root / rel)].to_json() for rel in relative},
    }


def row_settings(config: RunSettings) -> dict[str, Any]:
    """The settings that shape rows (everything but where and how the work runs), as saved in the plan."""
    return config.model_dump(mode="json", exclude=_RUNTIME_KEYS)


def config_digest(config: RunSettings) -> str:
    """A digest of the row-shaping settings, recorded in every unit's completion record."""
    text = json.dumps(row_settings(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def units_of(plan: dict[str, Any], config: RunSettings) -> list[WorkUnit]:
    source = location(config.input)
    root = source if isinstance(source, ObjectPath) else source.absolute()
    output = location(config.output)
    out_root = str(output if isinstance(output, ObjectPath) else output.absolute())

    def absolute(rel: str) -> str:
        return str(root / rel)

    return [
        WorkUnit(unit_id, [absolute(r) for r in inputs], out_root,
                 planned={absolute(r): plan["inputs"][r] for r in inputs})
        for unit_id, inputs in plan["units"]
    ]


def _read_plan(path: Location) -> dict[str, Any]:
    try:
        plan = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{path}: cannot read the saved plan ({exc})") from None
    if not isinstance(plan, dict) or plan.get("plan_version") != PLAN_VERSION:
        raise PipelineError(f"{path}: a plan of another version of this job; resume into a new output")
    return plan


def _write_plan(path: Location, plan: dict[str, Any]) -> None:
    text = json.dumps(plan, indent=1, sort_keys=True) + "\n"
    if isinstance(path, ObjectPath):  # one PUT: whole or absent
        path.write_text(text)
        return
    with atomic_output(path) as temp:
        temp.write_text(text)


def check_writable(out: Location) -> None:
    """Refuse at start, in one line, an output root that cannot be written (read-only, not a folder; on object
    storage a missing bucket, a wrong key, a server that does not answer)."""
    if isinstance(out, ObjectPath):
        probe = out / f".write-check-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise PipelineError(f"output {out} is not writable ({first_line(exc)})") from None
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise PipelineError(f"output {out} is not writable ({exc.strerror or type(exc).__name__})") from None


def plan_units(config: RunSettings, resume: bool) -> list[WorkUnit]:
    """The run's units: a new plan (refusing an output that holds a run), or with `resume` the saved one.

    A resume refuses other row-shaping settings and inputs that match now but were not planned (they would
    be silently left out); planned inputs deleted since become `errors` rows when their unit runs.
    """
    out = location(config.output)
    plan_path = out / PLAN_FILE
    check_writable(out)
    if not resume:
        if (out / "manifests").exists() or plan_path.exists():
            raise PipelineError(f"output {out} already holds a curation run; pass --resume to continue it")
    elif plan_path.is_file():
        plan = _read_plan(plan_path)
        settings = row_settings(config)
        if plan["settings"] != settings:
            changed = sorted(k for k in settings if plan["settings"].get(k) != settings[k])
            raise PipelineError(f"output {out} was made with different settings ({', '.join(changed)}); "
                                "resume needs the same settings (or use a new output)")
        _check_committed_settings(out, config_digest(config))
        source = location(config.input)
        if isinstance(source, ObjectPath):
            matching = set(list_objects_of(source, config.input_glob))
        else:
            matching = {p.relative_to(source).as_posix() for p in list_matches(source, config.input_glob)}
        added = sorted(matching - set(plan["inputs"]))
        if added:
            raise PipelineError(f"{len(added)} input(s) match now that the run did not plan (first: {added[0]}); "
                                "resume needs the same inputs (or use a new output)")
        return units_of(plan, config)
    elif (out / "manifests").exists():
        raise PipelineError(f"output {out} holds committed manifests but no {PLAN_FILE}: the settings they were made "
                            "with are unknown, so a resume could mix two configs; use a new output")
    plan = new_plan(config)
    _write_plan(plan_path, plan)
    return units_of(plan, config)


def _check_committed_settings(out: Location, digest: str) -> None:
    """Refuse a resume into an output whose committed units were made under other row-shaping settings."""
    _, records = complete_units(out)
    other = sorted(u for u, r in records.items() if r.config_digest is not None and r.config_digest != digest)
    if other:
        raise PipelineError(f"unit {other[0]} (and {len(other) - 1} more) of output {out} was committed under other "
                            "settings than this config's; resume needs the same settings (or use a new output)")


def is_done(root: str, unit_id: str, tables: tuple[str, ...]) -> bool:
    return is_unit_complete(root, unit_id, tables)


def commit_unit(unit: WorkUnit, root: str, tables: tuple[str, ...], settings_digest: str,
                after_commit: Callable[[], None] = lambda: None) -> None:
    """Commit the unit's rows under dataset `root` to every table it writes (empty tables included), then its
    completion record."""
    rows = {table: unit.rows(table) or SCHEMAS[table].empty_table() for table in tables}  # [] carries no columns
    commit_unit_tables(root, unit.unit_id, rows, settings_digest, after_commit)
