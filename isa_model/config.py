"""Run configuration: model, data and training settings as frozen dataclasses, read from one JSON file.

A config file is a JSON object with `name`, `model`, `data` and `train` sections; unknown keys and bad
values are refused at start with a one-line `ConfigError`. A file may name a `base` (`small`, or a path
relative to itself) whose values it changes: a variant then states only what differs from its base.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isa_model.objective import OBJECTIVES, STARTS_AT_SOURCE
from kernels import IsaConfig

CONFIG_DIR = Path(__file__).parent / "configs"

# Bounds on what a config may ask for, about 10x the `small` config (8 frames of 64x64 in 1x4x4 patches, dim
# 512, depth 8, 4 heads, a 256-wide 4-layer text tower over 32 tokens, batch 8): generous for real runs, yet a
# tampered checkpoint config (depth 10**6, frames 10**9) is refused before anything is allocated.
MODEL_LIMITS: dict[str, tuple[float, float]] = {
    "frames": (1, 80), "height": (1, 640), "width": (1, 640), "channels": (1, 64), "patch": (1, 64),
    "dim": (16, 5120), "depth": (1, 80), "heads": (1, 40), "mlp_ratio": (0.25, 40.0),
    "text_width": (0, 2560), "text_layers": (0, 40), "text_heads": (0, 40), "text_context": (1, 770),
}
MAX_TOKENS_PER_CLIP = 65_536
"""Twice the largest clip benchmarked (32 frames of 128x128 in 1x4x4 patches: 32K tokens, 64K per sample)."""
DATA_LIMITS: dict[str, tuple[float, float]] = {
    "synthetic_clips": (1, 10_000), "synthetic_size": (8, 2048), "synthetic_frames": (1, 1000),
    "batch_size": (1, 256), "workers": (0, 64), "frame_stride": (1, 64), "mirror": (0.0, 1.0), "reverse": (0.0, 1.0),
}

CROPS = ("random", "centre")
"""data.crop: `random` draws each training sample's first frame and crop; `centre` reads a pair as validation
does, the middle frames and the middle of the frame, so a place an instruction names in the whole clip (an added
object's path, a caption on the left) lands in the same place of every sample the model sees (docs/MODEL.md,
"Where the crop puts a named place")."""

TRAIN_LIMITS: dict[str, tuple[float, float]] = {"mask_weight": (0.0, 100.0), "mask_threshold": (0.01, 0.99),
                                                "edit_weight": (0.0, 100.0), "decay_steps": (0, 10_000_000)}


class ConfigError(ValueError):
    """A config file or checkpoint does not fit; the message is one line."""


@dataclass(frozen=True)
class IsaSettings(IsaConfig):
    """The kernel's parameters (validated there) plus which implementation runs them."""

    backend: str = "triton"  # "triton" or "torch" (the readable oracle, for CPU tests)
    graph_plan_train: bool = False  # CUDA training calls replay the block selection as a graph (TileConfig)
    graph_call_train: bool = False  # CUDA training calls replay their whole call, backward too (TileConfig)
    fp8_scores: bool = False  # sampling only: the exact blocks' scores from e4m3 q and k (TileConfig.fwd_fp8)

    def kernel_config(self) -> IsaConfig:
        """The algorithm's parameters alone, as `isa_attention` takes them."""
        return IsaConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(IsaConfig)})


@dataclass(frozen=True)
class ModelConfig:
    frames: int = 4  # clip length T in frames (pixel space; latent frames when an encoder is set)
    height: int = 32
    width: int = 32
    channels: int = 3
    patch: tuple[int, int, int] = (1, 8, 8)  # (pt, ph, pw)
    dim: int = 64
    depth: int = 2
    heads: int = 2
    mlp_ratio: float = 4.0
    attention: str = "isa"  # "isa" or "dense" (torch SDPA)
    context_cache: bool = False  # source tokens at timestep 0, attending only to source (cacheable K/V)
    objective: str = "noise"  # "noise" (rectified flow), "source" (bridge) or "delta" (change): objective.py
    blend_mask: bool = False  # also predict where the edit acts; velocity = mask * u ("source", "delta" only)
    compile: bool = False  # torch.compile each block's element-wise work around its attention call (model.py)
    clip_coords: bool = False  # each token also embeds its place in the whole clip (data.sample_box; model.py)
    text_attention: bool = False  # each block also attends to the instruction's tokens, not only its pooled vector
    layout: bool = False  # each token also embeds its offset from the place the instruction names (layout.py)
    isa: IsaSettings = field(default_factory=IsaSettings)
    text_model: str = "ViT-B-32"  # open_clip config whose text tower and tokenizer are used
    text_width: int = 0  # 0: the open_clip config's own; else override (tiny towers for tests)
    text_layers: int = 0
    text_heads: int = 0
    text_context: int = 77
    text_weights: str = ""  # path to an open_clip CLIP checkpoint; empty = random-init
    latent: str = "pixel"  # where a latent encoder plugs in; only "pixel" exists (no VAE weights offline)

    def __post_init__(self) -> None:
        if not isinstance(self.patch, tuple) or len(self.patch) != 3:
            raise ConfigError(f"model.patch must be three sizes (pt, ph, pw), got {self.patch!r}")
        check_limits("model", self, MODEL_LIMITS)
        if self.attention not in ("isa", "dense"):
            raise ConfigError(f"model.attention must be 'isa' or 'dense', got {self.attention!r}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"model.objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.blend_mask and self.objective not in STARTS_AT_SOURCE:
            raise ConfigError("model.blend_mask needs model.objective 'source' or 'delta' (outside an edit the "
                              "noise path's velocity is not zero)")
        for flag in ("compile", "clip_coords", "text_attention", "layout", "blend_mask", "context_cache"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"model.{flag} must be true or false, got {getattr(self, flag)!r}")
        for flag in ("graph_plan_train", "graph_call_train", "fp8_scores"):
            if not isinstance(getattr(self.isa, flag), bool):
                raise ConfigError(f"model.isa.{flag} must be true or false, got {getattr(self.isa, flag)!r}")
        if self.isa.fp8_scores and self.isa.backend != "triton":
            raise ConfigError(f"model.isa.fp8_scores needs the triton backend, got {self.isa.backend!r}")
        if self.latent != "pixel":
            raise ConfigError(f"model.latent {self.latent!r}: only 'pixel' is available")
        if self.dim % self.heads:
            raise ConfigError(f"model.dim {self.dim} is not a multiple of heads {self.heads}")
        head_dim = self.dim // self.heads
        if head_dim & (head_dim - 1) or not 16 <= head_dim <= 256:
            raise ConfigError(f"head dim {head_dim} must be a power of two in 16..256 (ISA kernels)")
        for size, p, name in zip((self.frames, self.height, self.width), self.patch, ("frames", "height", "width")):
            if size % p:
                raise ConfigError(f"model.{name} {size} is not a multiple of its patch size {p}")
        if self.tokens_per_clip > MAX_TOKENS_PER_CLIP:
            raise ConfigError(f"model: {self.tokens_per_clip} tokens per clip, more than {MAX_TOKENS_PER_CLIP}")
        import open_clip  # here, not at the top: a config error must not wait for open_clip's import

        if self.text_model not in open_clip.list_models():
            raise ConfigError(f"model.text_model {self.text_model!r} is not an open_clip model config")

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (Tn, Hn, Wn) of one clip."""
        return (self.frames // self.patch[0], self.height // self.patch[1], self.width // self.patch[2])

    @property
    def tokens_per_clip(self) -> int:
        t, h, w = self.grid
        return t * h * w


@dataclass(frozen=True)
class DataConfig:
    root: str = ""  # dataset root holding manifests/edit_pairs; empty = build the synthetic pair set
    snapshot: str = ""  # a manifests snapshot JSON whose edit_pairs rows to read (files under root); no Delta log read
    synthetic_clips: int = 8  # clips in the synthetic set when root is empty
    synthetic_size: tuple[int, int] = (48, 64)  # (height, width) of the synthetic clips
    synthetic_frames: int = 12
    batch_size: int = 2
    workers: int = 0
    frame_stride: int = 1
    crop: str = "random"  # random: each training sample's first frame and crop drawn; centre: as validation
    mirror: float = 0.0  # probability a training sample is mirrored left-right, "left" and "right" swapped (augment.py)
    reverse: float = 0.0  # probability a training sample plays backwards, its instruction's path reversed

    def __post_init__(self) -> None:
        check_limits("data", self, DATA_LIMITS)
        if self.crop not in CROPS:
            raise ConfigError(f"data.crop must be one of {', '.join(CROPS)}, got {self.crop!r}")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 20
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup: int = 10
    decay_steps: int = 0  # the learning rate falls linearly to 0 over the last this many steps (0: constant)
    grad_clip: float = 1.0
    ema: float = 0.999
    text_dropout: float = 0.1  # probability of the empty instruction, for classifier-free guidance
    log_every: int = 5
    ckpt_every: int = 10
    seed: int = 0
    sample_steps: int = 8
    guidance: float = 1.5
    mask_weight: float = 0.1  # the blend mask's cross-entropy beside the velocity MSE (objective.loss)
    mask_threshold: float = 0.5  # sampling: a pixel whose mask is under this is the source's (objective.keep_source)
    edit_weight: float = 0.0  # a pair weighs 1 + this / its edited fraction (objective.pair_weights)
    bf16: bool = True  # autocast on GPU only

    def __post_init__(self) -> None:
        check_limits("train", self, TRAIN_LIMITS)


@dataclass(frozen=True)
class Config:
    name: str
    model: ModelConfig
    data: DataConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_limits(section: str, settings: Any, limits: dict[str, tuple[float, float]]) -> None:
    """One-line ConfigError for a field (or any item of a tuple field) outside its (low, high) bounds; integer
    bounds want integers."""
    for name, (low, high) in limits.items():
        values = getattr(settings, name)
        wanted = int if isinstance(high, int) else (int, float)
        for value in values if isinstance(values, tuple) else (values,):
            if isinstance(value, bool) or not isinstance(value, wanted) or not low <= value <= high:
                raise ConfigError(f"{section}.{name} {values!r} is outside {low}..{high}")


def _build(cls, values: dict[str, Any], where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: must be a JSON object, got {values!r}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kwargs = {}
    for key, value in values.items():
        if key == "isa":
            value = _build(IsaSettings, value, f"{where}.isa")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # a wrong type, or a value the kernels' config refuses
        raise ConfigError(f"{where}: {exc}") from None


def config_from_dict(values: dict[str, Any]) -> Config:
    """Validate a config dict (as written in a config file or a checkpoint)."""
    unknown = sorted(set(values) - {"name", "model", "data", "train"})
    if unknown:
        raise ConfigError(f"config: unknown section(s) {', '.join(unknown)}")
    return Config(
        name=str(values.get("name", "custom")),
        model=_build(ModelConfig, values.get("model", {}), "model"),
        data=_build(DataConfig, values.get("data", {}), "data"),
        train=_build(TrainConfig, values.get("train", {}), "train"),
    )


def load_config(name_or_path: str, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """`tiny` / `small` (files in isa_model/configs) or a path to a JSON config; overrides per section."""
    values = _read_config(name_or_path, Path.cwd(), ())
    _merge(values, overrides or {})
    return config_from_dict(values)


MAX_BASE_DEPTH = 4
"""How many `base` links a config may follow: a variant of a variant is fine, a long chain is a mistake."""


def _read_config(name_or_path: str, relative_to: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The values of one config file with its `base` chain resolved (the file's own values win)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.json"
    elif not path.is_absolute():
        path = relative_to / path
    if not path.is_file():
        raise ConfigError(f"config {name_or_path!r}: no such file")
    if path.resolve() in chain or len(chain) > MAX_BASE_DEPTH:
        raise ConfigError(f"config {path.name}: its base chain loops or runs past {MAX_BASE_DEPTH} links")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path.name}: not JSON ({exc})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config {path.name}: not a JSON object")
    base = values.pop("base", None)
    if base is None:
        return values
    if not isinstance(base, str):
        raise ConfigError(f"config {path.name}: base must be a config name or path, got {base!r}")
    merged = _read_config(base, path.parent, (*chain, path.resolve()))
    merged.pop("name", None)  # a variant is its own config, never its base's name
    _merge(merged, values)
    return merged


def _merge(values: dict[str, Any], changes_by_section: dict[str, Any]) -> None:
    """Apply changes section by section into values, in place; a nested part (model.isa) is merged into the one
    it changes, not replaced. `name` (not a section) is replaced."""
    for section, changes in changes_by_section.items():
        target = values.get(section)
        if target is None or not isinstance(changes, dict):
            values[section] = changes
            continue
        if not isinstance(target, dict):  # a section that is no object stays, for validation to refuse
            continue
        for key, value in changes.items():
            nested = isinstance(value, dict) and isinstance(target.get(key), dict)
            target[key] = {**target[key], **value} if nested else value
