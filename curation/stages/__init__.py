"""The curation stages in pipeline order; each is a `curation.stage.Stage` that Ray runs as an actor pool."""

from curation.stages.extract import ExtractStage
from curation.stages.ingest import IngestStage
from curation.stages.shots import ShotsStage
from curation.stages.signals import SignalsStage

STAGES = (IngestStage, ShotsStage, ExtractStage, SignalsStage)

__all__ = ["STAGES", "ExtractStage", "IngestStage", "ShotsStage", "SignalsStage"]
