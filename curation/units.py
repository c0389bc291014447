"""Units of work: the deterministic plan of a curation run, its fingerprint for resume, and commits.

The sorted input list is cut into batches of `batch_size` videos, unit `b000000`, `b000001`, ... A unit
is done when its rows are committed in every table it writes; a resume redoes the others and must see
the same plan and the same row-shaping settings, recorded in `<output>/curate_plan.json` at the start.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from curation.job_config import CurateConfig
from curation.stage import TABLES_WRITTEN, WorkUnit
from manifests import SCHEMAS, ManifestWriter, is_unit_complete, mark_unit_complete


class PipelineError(Exception):
    """The job cannot start (no inputs, output in the way, resume of another plan); one line."""


def list_inputs(config: CurateConfig) -> list[Path]:
    """Input files under `config.input` matching the glob, sorted by path so units are deterministic."""
    root = Path(config.input)
    if not root.is_dir():
        raise PipelineError(f"input {root} is not a directory")
    files = sorted((p for p in root.glob(config.input_glob) if p.is_file()), key=lambda p: p.as_posix())
    if not files:
        raise PipelineError(f"no input files match {config.input_glob!r} under {root}")
    return files


def plan_units(config: CurateConfig) -> list[WorkUnit]:
    inputs = [str(p.absolute()) for p in list_inputs(config)]
    out_root = str(Path(config.output).absolute())
    size = config.batch_size
    return [
        WorkUnit(f"b{i // size:06d}", inputs[i : i + size], out_root) for i in range(0, len(inputs), size)
    ]


PLAN_FILE = "curate_plan.json"
_RUNTIME_KEYS = {"input", "output", "num_cpus", "ray_address", "resources"}
"""Config keys that may change between a run and its resume: they move or schedule work, not shape rows."""


def plan_fingerprint(config: CurateConfig, units: list[WorkUnit]) -> dict[str, Any]:
    """What a resume must match: the unit plan (inputs per unit) and every setting that shapes rows."""
    settings = config.model_dump(mode="json", exclude=_RUNTIME_KEYS)
    digest = hashlib.sha256()
    for unit in units:
        digest.update(json.dumps([unit.unit_id, [os.path.relpath(p, config.input) for p in unit.inputs]]).encode())
    return {"units": len(units), "inputs_sha256": digest.hexdigest(), "settings": settings}


def check_plan(config: CurateConfig, units: list[WorkUnit], resume: bool) -> None:
    """Refuse to mix outputs: no silent overwrite, and a resume only with the same inputs and settings."""
    out = Path(units[0].out_root)
    plan_path = out / PLAN_FILE
    fingerprint = plan_fingerprint(config, units)
    if not resume:
        if (out / "manifests").exists() or plan_path.exists():
            raise PipelineError(f"output {out} already holds a curation run; pass --resume to continue it")
    elif plan_path.is_file():
        before = json.loads(plan_path.read_text())
        if before != fingerprint:
            changed = sorted(k for k in fingerprint if before.get(k) != fingerprint[k])
            raise PipelineError(f"output {out} was made with different {', '.join(changed)}; "
                                "resume needs the same inputs and settings (or use a new output)")
        return
    out.mkdir(parents=True, exist_ok=True)
    temp = plan_path.with_name(f".{PLAN_FILE}.tmp")
    temp.write_text(json.dumps(fingerprint, indent=1, sort_keys=True) + "\n")
    temp.replace(plan_path)


def is_done(root: str, unit_id: str) -> bool:
    return is_unit_complete(root, unit_id, TABLES_WRITTEN)


def commit_unit(unit: WorkUnit) -> None:
    """Write the unit's rows to every table (a table that already holds them is skipped), then mark it complete."""
    for table in TABLES_WRITTEN:
        rows = unit.rows(table) or SCHEMAS[table].empty_table()  # an empty list carries no columns
        ManifestWriter(unit.out_root, table).write(unit.unit_id, rows, complete=False)
    mark_unit_complete(unit.out_root, unit.unit_id, TABLES_WRITTEN)


