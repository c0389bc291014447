"""The stage registry: the curation stages in pipeline order; each is a `curation.stage.Stage` that Ray runs as
an actor pool, and its `Config` is its section of the job config (curation/job_config.py composes them).

Ingest, shots, extract and signals always run; the model stages (objects, clip_scores, vlm_scores) and
the edit-pair stage (pairs) run when the job config has their section. A new stage is its own file and
one entry in `STAGES`.
"""

from __future__ import annotations

from collections.abc import Sequence

from curation.stage import Stage
from curation.stage_config import JobSettings
from curation.stages.clip_scores import ClipScoresStage
from curation.stages.extract import ExtractStage
from curation.stages.ingest import IngestStage
from curation.stages.objects import ObjectsStage
from curation.stages.pairs import PairsStage
from curation.stages.shots import ShotsStage
from curation.stages.signals import SignalsStage
from curation.stages.vlm_scores import VlmScoresStage
from manifests.schema import SCHEMAS

STAGES: tuple[type[Stage], ...] = (IngestStage, ShotsStage, ExtractStage, SignalsStage, ObjectsStage,
                                   ClipScoresStage, VlmScoresStage, PairsStage)


def enabled_stages(job: JobSettings, stages: Sequence[type[Stage]] = STAGES) -> list[type[Stage]]:
    """The stages of the registry `stages` this job config runs, in pipeline order."""
    return [stage for stage in stages if stage.enabled(job)]


def tables_written(job: JobSettings, stages: Sequence[type[Stage]] = STAGES) -> tuple[str, ...]:
    """The manifest tables a unit of this job commits (in schema order); a unit is done when all hold it."""
    wanted = {table for stage in enabled_stages(job, stages) for table in stage.writes}
    return tuple(table for table in SCHEMAS if table in wanted)


__all__ = ["STAGES", "ClipScoresStage", "ExtractStage", "IngestStage", "ObjectsStage", "PairsStage", "ShotsStage",
           "SignalsStage", "VlmScoresStage", "enabled_stages", "tables_written"]
