"""Edit-pair contract: the input and result types, the editor base class and the registry.

Modelled on the shot detectors: a cheap constructor taking a frozen config, `setup()` that loads any
model, and one method `edit(EditInput) -> EditResult` over decoded frames. Editors do no file I/O;
`curation.editors.output.write_pair` turns a result into files, so a later stage can write rows from
the result alone (parameters as JSON, instruction slots, which region changed, provenance).
"""

from __future__ import annotations

import importlib
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from curation.registry import FrozenConfig, Registry, build

REGIONS = ("inside", "outside", "global")
"""Where an edit means to change pixels: inside the mask, outside it, or the whole frame."""


class EditError(ValueError):
    """An edit cannot be made from this input (a later stage turns it into an `errors` row); one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class MaskFileError(EditError):
    """A mask file is missing or malformed."""


@dataclass(frozen=True)
class EditInput:
    """One clip to edit: decoded frames and, for local edits, one object's per-frame mask.

    `mask` is False on frames where the object is not visible; None means the clip has no object.
    `others` is the union of the clip's other objects' masks: a removal never copies them into the hole.
    `seed` picks every random choice (colour, style, phrasing), so the same input gives the same pair.
    `text_overlay` is the clip's OCR signal (fraction of the frame under read text; None: not measured).
    """

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float
    mask: np.ndarray | None = None  # (T, H, W) bool
    object_id: str | None = None
    object_class: str | None = None
    seed: int = 0
    others: np.ndarray | None = None  # (T, H, W) bool
    text_overlay: float | None = None


@dataclass(frozen=True)
class EditResult:
    """What an editor made. `source`/`target` None means "the input clip itself" (an addition's target
    is the input; every other editor's source is), so the writer never re-encodes what it need not."""

    edit_type: str
    source: np.ndarray | None  # (T, H, W, 3) uint8, or None: the input clip
    target: np.ndarray | None  # (T, H, W, 3) uint8, or None: the input clip
    mask: np.ndarray | None  # (T, H, W) bool: the region the edit used; None for global edits
    region: str  # one of REGIONS
    params: dict[str, Any]  # JSON-able: everything needed to redo the edit
    slots: dict[str, str]  # instruction slots (object, colour, style, background, ...)
    object_id: str | None = None
    editor_version: str = "1"
    model_name: str = "none"
    weights_id: str = "none"

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise EditError(f"region must be one of {REGIONS}, got {self.region!r}")
        if (self.source is None) == (self.target is None):
            raise EditError("exactly one of source and target must be the input clip (None)")
        if self.region != "global" and self.mask is None:
            raise EditError(f"a {self.region!r} edit must carry its mask")

    def frames(self, input_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source, target) frames, with the input clip standing in for whichever is None."""
        source = input_frames if self.source is None else self.source
        target = input_frames if self.target is None else self.target
        return source, target


def check_frames(frames: np.ndarray, min_frames: int) -> None:
    """Raise EditError unless frames are (T, H, W, 3) uint8 with T >= min_frames and even H, W (H.264 4:2:0)."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise EditError(f"frames must be (T, H, W, 3), got {getattr(frames, 'shape', type(frames).__name__)}")
    if frames.dtype != np.uint8:
        raise EditError(f"frames must be uint8 RGB, got {frames.dtype}")
    t, h, w = frames.shape[:3]
    if t < min_frames:
        raise EditError(f"clip has {t} frame(s); an edit pair needs at least {min_frames}")
    if h < 8 or w < 8 or h % 2 or w % 2:
        raise EditError(f"frame size {w}x{h} must be even and at least 8x8")


def check_mask(inp: EditInput) -> np.ndarray:
    """The input's mask, validated: raises EditError when the clip has no object or the mask is empty."""
    if inp.mask is None:
        raise EditError("this edit needs an object mask; the clip has no objects")
    mask = np.asarray(inp.mask)
    if mask.dtype != np.bool_ or mask.shape != inp.frames.shape[:3]:
        raise EditError(f"mask must be bool {inp.frames.shape[:3]}, got {mask.dtype} {mask.shape}")
    if not mask.any():
        raise EditError(f"mask of object {inp.object_id!r} is empty on every frame")
    if inp.others is not None and (inp.others.dtype != np.bool_ or inp.others.shape != mask.shape):
        raise EditError(f"others mask must be bool {mask.shape}, got {inp.others.dtype} {inp.others.shape}")
    return mask


class Editor(ABC):
    """An edit type: cheap to build, `setup()` loads models, `edit()` makes one pair from one clip."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    local: ClassVar[bool]  # True: needs an object mask
    min_frames: ClassVar[int] = 2

    def __init__(self, config: FrozenConfig) -> None:
        self.config = config
        self.model_name = "none"
        self.weights_id = "none"

    def accepts(self, text_overlay: float | None) -> bool:
        """Whether this edit may use a clip whose OCR signal is `text_overlay` (text edits need a clean one)."""
        return True

    def setup(self) -> None:  # noqa: B027 - an optional hook: the classical editors load nothing
        """Load models or other heavy state; called once per worker before the first edit()."""

    def edit(self, inp: EditInput) -> EditResult:
        """Validate the input, then make the pair."""
        check_frames(inp.frames, self.min_frames)
        if inp.fps <= 0:
            raise EditError(f"fps must be > 0, got {inp.fps}")
        mask = check_mask(inp) if self.local else None
        return self._edit(inp, mask)

    @abstractmethod
    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        """The edit on validated input; `mask` is the validated object mask for local editors."""

    def _result(self, inp: EditInput, **kw: Any) -> EditResult:
        """An EditResult stamped with this editor's type, version, provenance and the input's object."""
        kw.setdefault("edit_type", self.name)
        return EditResult(editor_version=self.version, object_id=inp.object_id,
                          model_name=self.model_name, weights_id=self.weights_id, **kw)


_REGISTRY: Registry = {
    "removal": ("curation.editors.removal", "ObjectRemoval", "RemovalConfig"),
    "addition": ("curation.editors.addition", "ObjectAddition", "RemovalConfig"),
    "recolour": ("curation.editors.recolour", "ObjectRecolour", "RecolourConfig"),
    "background": ("curation.editors.background", "BackgroundChange", "BackgroundConfig"),
    "style": ("curation.editors.style", "GlobalStyle", "StyleConfig"),
    "generative": ("curation.editors.generative", "GenerativeEditor", "GenerativeConfig"),
    "add_text": ("curation.editors.text", "TextAddition", "TextConfig"),
    "remove_text": ("curation.editors.text", "TextRemoval", "TextConfig"),
}
EDITOR_NAMES = tuple(_REGISTRY)


def get_editor(name: str, config: FrozenConfig | None = None) -> Editor:
    """Build editor `name` with `config` (its default config when None)."""
    return build(_REGISTRY, "editor", name, config, EditError)


def editor_config(name: str, options: Mapping[str, Any]) -> FrozenConfig:
    """Editor `name`'s frozen config built from a mapping of its fields (a job config's options), so a bad
    option fails when the config is loaded; EditError (one line) for an unknown editor or field."""
    if name not in _REGISTRY:
        raise EditError(f"unknown editor {name!r}; known: {', '.join(_REGISTRY)}")
    module_name, _, config_name = _REGISTRY[name]
    config_cls = getattr(importlib.import_module(module_name), config_name)
    try:
        return config_cls(**options)
    except TypeError as exc:  # an unknown or missing field
        raise EditError(f"editor {name}: {exc}") from None


def pick(options: tuple[str, ...] | list[str], seed: int, salt: str) -> str:
    """A deterministic choice among `options` from (seed, salt): same input, same choice, any process."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(salt.encode())])
    return options[int(rng.integers(len(options)))]
