"""The curation job's configuration: every threshold, the output root and Ray's resources, validated at start.

Loaded from YAML; unknown keys are rejected so a typo never silently falls back to a default. The
filter thresholds and the detector options are validated by their owners (filters.thresholds and
curation.shots) when the config is loaded, not when the first worker meets them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from curation.stages.clip_scores import ClipScoresConfig
from curation.stages.objects import ObjectsConfig
from curation.stages.pairs import PairsConfig
from curation.stages.vlm_scores import VlmScoresConfig


class ConfigError(Exception):
    """The job config is missing, unreadable or invalid; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageResources(_Strict):
    """Ray resources of one stage: each of `concurrency` workers reserves num_cpus/num_gpus."""

    num_cpus: float = Field(0.5, gt=0)
    num_gpus: float = Field(0.0, ge=0)
    concurrency: int = Field(1, ge=1)


class ShotsConfig(_Strict):
    detector: str = "fast"
    detector_options: dict[str, Any] = Field(default_factory=dict)
    min_clip_s: float = Field(1.0, gt=0)
    max_clip_s: float = Field(10.0, gt=0)
    trim_frames: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _lengths(self) -> "ShotsConfig":
        if self.min_clip_s > self.max_clip_s:
            raise ValueError(f"min_clip_s {self.min_clip_s} > max_clip_s {self.max_clip_s}")
        return self


class ExtractConfig(_Strict):
    buckets: tuple[int, ...] = (144, 240, 360, 480, 720, 1080)
    crf: int = Field(20, ge=0, le=51)


class SignalsConfig(_Strict):
    """Which filters/ signals to compute (each samples frames as its `Sampling` says) and their options."""

    names: tuple[str, ...] = ("luminance", "blur", "motion", "static", "slideshow", "text_overlay")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)


class CurateConfig(_Strict):
    """Everything `python -m jobs.curate` needs; paths are relative to the working directory.

    The optional stages' sections (`objects`, `clip_scores`, `vlm_scores`, `pairs`) are their switches: absent
    or null, the stage does not run.
    """

    input: str
    input_glob: str = "**/*.mp4"
    follow_symlinks_outside_input: bool = False
    output: str
    batch_size: int = Field(4, ge=1)
    num_cpus: int = Field(2, ge=1)
    ray_address: str | None = None
    resources: dict[str, StageResources] = Field(default_factory=dict)
    shots: ShotsConfig = ShotsConfig()
    extract: ExtractConfig = ExtractConfig()
    signals: SignalsConfig = SignalsConfig()
    thresholds: dict[str, Any] = Field(default_factory=dict)
    objects: ObjectsConfig | None = None
    clip_scores: ClipScoresConfig | None = None
    vlm_scores: VlmScoresConfig | None = None
    pairs: PairsConfig | None = None

    @field_validator("resources")
    @classmethod
    def _known_stages(cls, value: dict[str, StageResources]) -> dict[str, StageResources]:
        from curation.stages import STAGES

        unknown = sorted(set(value) - {s.name for s in STAGES})
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; stages are {[s.name for s in STAGES]}")
        return value

    @model_validator(mode="after")
    def _owners_accept(self) -> "CurateConfig":
        from curation.stages.common import build_detector, build_thresholds
        from filters import get_signal

        try:
            build_thresholds(self.thresholds)
            build_detector(self.shots)
            for name in self.signals.names:
                get_signal(name, **self.signals.options.get(name, {}))
        except Exception as exc:  # noqa: BLE001 - the owners' own errors, reported as one config line
            raise ValueError(" ".join(str(exc).split()) or type(exc).__name__) from None
        return self

    def stage_resources(self, stage_name: str, default: StageResources) -> StageResources:
        return self.resources.get(stage_name, default)

    def with_paths(self, input: str | None = None, output: str | None = None) -> "CurateConfig":
        return self.model_copy(update={k: v for k, v in (("input", input), ("output", output)) if v is not None})


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def parse_config(data: Any, source: str = "config") -> CurateConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return CurateConfig.model_validate(data)
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


def load_config(path: str | Path) -> CurateConfig:
    """Read and validate a YAML config (and the config it `extends:`); any problem is a ConfigError with one line."""
    p = Path(path)
    return parse_config(_read_yaml(p), str(p))
