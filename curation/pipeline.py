"""Run the curation stages over a corpus, through Ray Data or in-process, one committed unit at a time.

Units and their commits are in curation/units.py: a re-run skips done units and redoes the others from
scratch, which gives the same rows because every stage is deterministic and every file a unit writes
(clip mp4s, manifest parts) is written to a temp name and renamed.

Ray: `ray.data.from_items(units)` then one `map_batches` per stage with an actor pool (the stage's
`setup()` runs once per actor; model stages keep their model loaded) and `batch_size=1` unit. Only the
unit's small JSON crosses the object store; frames are decoded and dropped inside a stage. The driver
pulls finished units with `iter_rows()` (streaming, so memory does not grow with the corpus) and
commits each through the ManifestWriter. In-process mode runs the same stage objects in a loop.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from curation.faults import CommitFaults, Faults
from curation.job_config import RunSettings, StageResources
from curation.publish import Publisher, publisher, run_on_this_node
from curation.ray_runtime import cluster_address, ray_session
from curation.stage import Stage, WorkUnit
from curation.stages import enabled_stages, tables_written
from curation.units import PipelineError, commit_unit, config_digest, is_done, plan_units
from manifests.errors import ManifestError
from manifests.storage import ObjectPath, location

__all__ = ["PipelineError", "RunStats", "run"]


@dataclass
class RunStats:
    tables: tuple[str, ...]
    units_total: int = 0
    units_skipped: int = 0
    units_done: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    clips_ok: int = 0
    source_seconds: float = 0.0
    wall_s: float = 0.0

    def __post_init__(self) -> None:
        self.rows = dict.fromkeys(self.tables, 0)

    def add(self, unit: WorkUnit) -> None:
        self.units_done += 1
        for table in self.tables:
            self.rows[table] += len(unit.rows(table))
        self.clips_ok += sum(1 for c in unit.rows("clips") if c["status"] == "ok")
        self.source_seconds += sum(v["duration_s"] or 0.0 for v in unit.rows("videos"))


def build_stages(config: RunSettings) -> list[Stage]:
    return [stage_cls.from_job(config) for stage_cls in enabled_stages(config)]


def resources_of(config: RunSettings, stage_cls: type[Stage]) -> StageResources:
    declared = StageResources(num_cpus=stage_cls.resources.num_cpus, num_gpus=stage_cls.resources.num_gpus)
    return config.stage_resources(stage_cls.name, declared)


class StageActor:
    """Ray Data callable class around one stage: builds and sets it up once per actor.

    `stage_actor_class` makes one subclass per stage with the stage class and config as class attributes,
    so the actor has no constructor arguments: Ray would park those in the object store, and warns on the
    console that restarted actors could lose them.
    """

    stage_cls: ClassVar[type[Stage]]
    config: ClassVar[RunSettings]
    driver_node: ClassVar[str]  # the Ray node id of the driver: its staging folder is the one it publishes from

    def __init__(self) -> None:
        import ray

        self.stage = self.stage_cls.from_job(self.config)
        self.stage.setup()
        self.on_driver_node = ray.get_runtime_context().get_node_id() == self.driver_node

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        done = [run_on_this_node(self.stage.run, WorkUnit.from_json(str(text)), self.config.output,
                                 keep_files=self.on_driver_node).to_json() for text in batch["unit"]]
        return {"unit": np.array(done, dtype=object)}


def stage_actor_class(stage_cls: type[Stage], config: RunSettings, driver_node: str) -> type[StageActor]:
    """The actor class of one stage, named after it (e.g. `IngestStageActor` in `ps` and Ray's logs)."""
    return type(f"{stage_cls.__name__}Actor", (StageActor,),
                {"stage_cls": stage_cls, "config": config, "driver_node": driver_node})


def check_fits(config: RunSettings) -> None:
    """An embedded Ray has `num_cpus` CPUs; actor pools that reserve more would wait forever."""
    pools = [resources_of(config, s) for s in enabled_stages(config)]
    if cluster_address(config.ray_address) is not None:
        return
    wanted = sum(r.num_cpus * r.concurrency for r in pools)
    if wanted > config.num_cpus + 1e-9:
        raise PipelineError(f"the stages' actors reserve {wanted:g} CPUs but num_cpus is {config.num_cpus}: "
                            "lower resources.<stage>.num_cpus or concurrency, or raise num_cpus")
    gpus = sum(r.num_gpus * r.concurrency for r in pools)
    if gpus > 0 and gpus > local_gpus() + 1e-9:
        raise PipelineError(f"the stages' actors reserve {gpus:g} GPUs but this machine has {local_gpus()}: set "
                            "resources.<stage>.num_gpus to 0 (models then run on the CPU)")


def local_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def _iter_in_process(config: RunSettings, units: list[WorkUnit]) -> Iterator[WorkUnit]:
    stages = build_stages(config)
    for stage in stages:
        stage.setup()
    for unit in units:
        for stage in stages:
            unit = stage.run(unit)
        yield unit


def _iter_ray(config: RunSettings, units: list[WorkUnit]) -> Iterator[WorkUnit]:
    import ray
    import ray.data

    driver_node = ray.get_runtime_context().get_node_id()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # one line per committed unit instead (see `run`)
    ds: ray.data.Dataset = ray.data.from_items([{"unit": u.to_json()} for u in units], override_num_blocks=len(units))
    for stage_cls in enabled_stages(config):
        res = resources_of(config, stage_cls)
        ds = ds.map_batches(
            stage_actor_class(stage_cls, config, driver_node),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=res.concurrency),
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus,
        )
    for row in ds.iter_rows():
        yield WorkUnit.from_json(str(row["unit"]))


def run(
    config: RunSettings,
    in_process: bool = False,
    resume: bool = False,
    log: Callable[[str], Any] = lambda line: print(line, file=sys.stderr, flush=True),
) -> RunStats:
    """Run the job; without `resume` an output that already holds a run is refused."""
    faults = CommitFaults(Faults.from_env())
    try:
        roots = [location(config.input, "input"), location(config.output, "output")]
    except ManifestError as exc:
        raise PipelineError(str(exc)) from None
    config = config.with_paths(*(str(r) if isinstance(r, ObjectPath) else str(r.absolute()) for r in roots))
    if not in_process:
        check_fits(config)
    for stage in build_stages(config):
        stage.preflight()
    tables = tables_written(config)
    units = plan_units(config, resume)
    digest = config_digest(config)
    pending = [u for u in units if not is_done(config.output, u.unit_id, tables)]
    stats = RunStats(tables, units_total=len(units), units_skipped=len(units) - len(pending))
    mode = "in-process" if in_process else "ray"
    log(f"curate: {sum(len(u.inputs) for u in units)} inputs in {len(units)} units, "
        f"{stats.units_skipped} already committed, {len(pending)} to run ({mode})")
    start = time.perf_counter()
    if pending:
        with publisher(config.output) as out:
            pending = [replace(u, out_root=out.work_root) for u in pending]
            if in_process:
                _drain(_iter_in_process(config, pending), stats, log, start, faults, digest, out)
            else:
                with ray_session(config.num_cpus, config.ray_address, Path(out.work_root) / "logs" / "ray") as where:
                    log(f"curate: ray {where}")
                    _drain(_iter_ray(config, pending), stats, log, start, faults, digest, out)
    stats.wall_s = time.perf_counter() - start
    return stats


def _drain(done: Iterator[WorkUnit], stats: RunStats, log: Callable[[str], Any], start: float,
           faults: CommitFaults, digest: str, out: Publisher) -> None:
    todo = stats.units_total - stats.units_skipped
    for unit in done:
        out.publish(unit)  # files first: rows never name a file readers cannot open
        commit_unit(unit, out.output, stats.tables, digest, faults.after_commit)
        out.release(unit)
        stats.add(unit)
        clips = unit.rows("clips")
        ok = sum(1 for c in clips if c["status"] == "ok")
        counts = ", ".join(f"{len(unit.rows(t))} {t}" for t in stats.tables if t not in ("videos", "clips"))
        log(f"curate: [{stats.units_done}/{todo}] {unit.unit_id} committed: {len(unit.rows('videos'))} videos, "
            f"{len(clips)} clips ({ok} ok), {counts}, {time.perf_counter() - start:.1f}s")
