"""What a stage is configured with: its own section of the job config, and the few job settings it may read.

A stage's section (`<stage name>:` in the YAML) is a `StageConfig` declared in the stage's file. The job config
(curation/job_config.py) adds one field per registered stage's section, so neither this module nor any stage
imports the job config: stages see it only as `JobSettings`.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from filters.thresholds import FilterThresholds


class StageConfig(BaseModel):
    """Base of a stage's section: frozen, and an unknown key is an error (a typo must not fall back to a default).

    Options that another owner validates (a detector's fields, the pair gates, ...) stay a mapping as the user
    wrote them, so the saved plan dumps them unchanged; the section builds the owner's typed config from them
    once, in a validator, into a private attribute that the stage reuses.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def owner_error(exc: Exception) -> ValueError:
    """An owner's own error (filters, a detector, an editor) as one config line; pydantic adds where it is."""
    return ValueError(" ".join(str(exc).split()) or type(exc).__name__)


class JobSettings(Protocol):
    """What a stage may read of the job config besides its own section (the job config satisfies this)."""

    @property
    def input(self) -> str: ...

    @property
    def follow_symlinks_outside_input(self) -> bool: ...

    @property
    def filter_thresholds(self) -> FilterThresholds: ...

    def section(self, name: str) -> StageConfig | None:
        """Stage `name`'s section; None when an optional stage's section is absent."""
        ...
