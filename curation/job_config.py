"""The curation job's configuration: run settings plus one section per registered stage, validated at start.

Loaded from YAML; unknown keys are rejected so a typo never silently falls back to a default. The run
settings (paths, units, Ray's resources, the filter thresholds ingest and signals share) are declared here;
each stage's section is declared in the stage's file (`Stage.Config`) and joins the job config through the
stage registry (curation/stages/__init__.py), so no stage imports this module and adding a stage edits
nothing here. Owners' options (thresholds, detector options, signals, proposer, editors, gates, splits)
are validated by their owners and built once, when the config is loaded, not when the first worker meets them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from curation.stage import Stage
from curation.stage_config import StageConfig, owner_error
from curation.stages import STAGES
from filters.thresholds import FilterThresholds


class ConfigError(Exception):
    """The job config is missing, unreadable or invalid; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageResources(_Strict):
    """Ray resources of one stage: each of `concurrency` workers reserves num_cpus/num_gpus."""

    num_cpus: float = Field(default=0.5, gt=0)
    num_gpus: float = Field(default=0.0, ge=0)
    concurrency: int = Field(default=1, ge=1)


class RunSettings(_Strict):
    """What belongs to no single stage: paths (relative to the working directory), units, Ray, the thresholds.

    The job config is this plus one field per registered stage's section (`config_model`); an optional
    stage's section (`objects`, `clip_scores`, `vlm_scores`, `pairs`) is its switch: absent or null, the
    stage does not run.
    """

    stages: ClassVar[tuple[type[Stage], ...]] = ()
    """The stage registry whose sections this config holds (set by `config_model`)."""

    input: str
    input_glob: str = "**/*.mp4"
    follow_symlinks_outside_input: bool = False
    output: str
    batch_size: int = Field(4, ge=1)
    num_cpus: int = Field(2, ge=1)
    ray_address: str | None = None
    resources: dict[str, StageResources] = Field(default_factory=dict)
    thresholds: dict[str, Any] = Field(default_factory=dict)  # filters.thresholds.FilterThresholds fields
    _filter_thresholds: FilterThresholds = PrivateAttr()

    @field_validator("resources")
    @classmethod
    def _known_stages(cls, value: dict[str, StageResources]) -> dict[str, StageResources]:
        names = [s.name for s in cls.stages]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; stages are {names}")
        return value

    @model_validator(mode="after")
    def _build_thresholds(self) -> Self:
        try:
            self._filter_thresholds = FilterThresholds.from_dict(self.thresholds)
        except Exception as exc:  # noqa: BLE001 - filters' own errors, reported as one config line
            raise owner_error(exc) from None
        return self

    @property
    def filter_thresholds(self) -> FilterThresholds:
        """`thresholds` as the filters' frozen config, built once at validation."""
        return self._filter_thresholds

    def section(self, name: str) -> StageConfig | None:
        """Stage `name`'s section; None when an optional stage's section is absent."""
        if not any(s.name == name and s.Config is not None for s in self.stages):
            raise KeyError(f"the job config has no section {name!r}")
        return getattr(self, name)

    def stage_resources(self, stage_name: str, default: StageResources) -> StageResources:
        return self.resources.get(stage_name, default)

    def with_paths(self, input: str | None = None, output: str | None = None) -> Self:  # noqa: A002 - named as the field it sets
        return self.model_copy(update={k: v for k, v in (("input", input), ("output", output)) if v is not None})


def config_model(stages: Sequence[type[Stage]]) -> type[RunSettings]:
    """The job config class of a stage registry: the run settings plus one field per stage with a section,
    named after the stage, in registry order (an optional stage's defaults to None, the others' to defaults)."""
    sections: dict[str, Any] = {}
    for stage in stages:
        if stage.Config is None:
            continue
        if stage.name in RunSettings.model_fields:
            raise ValueError(f"stage {stage.name!r}: its section would hide the run setting of that name")
        if stage.optional:
            sections[stage.name] = (stage.Config | None, None)
        else:
            sections[stage.name] = (stage.Config, Field(default_factory=stage.Config))
    model = create_model("CurateConfig", __base__=RunSettings, __module__=__name__, **sections,
                         __doc__="Everything `python -m jobs.curate` needs: run settings and every stage's section.")
    model.stages = tuple(stages)
    return model


CurateConfig = config_model(STAGES)


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def parse_config(data: Any, source: str = "config", model: type[RunSettings] = CurateConfig) -> RunSettings:
    """Validate a config mapping (as the job config `model` of a stage registry); any problem is one ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_one_line(exc)}") from None


def merge_configs(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`: mappings merge key by key, anything else (lists too) replaces."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge_configs(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> Any:
    """The YAML mapping of `path`, on top of the file its `extends:` names (relative to it), recursively."""
    if path.resolve() in chain:
        raise ConfigError(f"{path}: `extends` loops back to itself ({' -> '.join(p.name for p in (*chain, path))})")
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or "extends" not in data:
        return data
    base_name = data.pop("extends")
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(f"{path}: extends must name a config file, got {base_name!r}")
    base = _read_yaml(path.parent / base_name, (*chain, path.resolve()))
    if not isinstance(base, dict):
        raise ConfigError(f"{path.parent / base_name}: expected a mapping at the top level")
    return merge_configs(base, data)


def load_config(path: str | Path) -> RunSettings:
    """Read and validate a YAML config (and the config it `extends:`); any problem is a ConfigError with one line."""
    p = Path(path)
    return parse_config(_read_yaml(p), str(p))
