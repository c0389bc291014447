"""The plug-in point for generative editors that users bring (inpainting or video-to-video models).

Write one class with one method::

    class MyInpainter(GenerativeModel):
        name = "my-inpainter"; weights_id = "my-inpainter-v2.safetensors"
        def generate(self, frames, mask, instruction):   # (T, H, W, 3) uint8, (T, H, W) bool | None, str
            return frames_edited                          # (T, H, W, 3) uint8, same shape

and select it by import path: ``get_editor("generative", GenerativeConfig(model="my_pkg.mod:MyInpainter",
edit_type="removal"))``. `GenerativeEditor` validates the input and the model's output, builds the
instruction the model is asked to follow, and stamps the model's name and weights id on the result.
Load weights lazily in `generate` (or override `setup`, called once per worker). `TeleaInpaint` is
the weights-free example.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np

from curation.editors.base import REGIONS, EditError, EditInput, Editor, EditResult
from curation.editors.instructions import make_instruction


class GenerativeModel(ABC):
    """A user's generative editor: `generate` returns the edited frames."""

    name: ClassVar[str]
    weights_id: ClassVar[str] = "none"

    def setup(self) -> None:  # noqa: B027 - an optional hook: a model may load lazily in generate
        """Load weights; called once per worker before the first generate()."""

    @abstractmethod
    def generate(self, frames: np.ndarray, mask: np.ndarray | None, instruction: str) -> np.ndarray:
        """Edited frames (T, H, W, 3) uint8 from frames (T, H, W, 3) uint8, a mask (T, H, W) bool or None."""


class TeleaInpaint(GenerativeModel):
    """Weights-free example: fills the mask of each frame alone with OpenCV's Telea inpainting."""

    name = "opencv-telea"

    def generate(self, frames: np.ndarray, mask: np.ndarray | None, instruction: str) -> np.ndarray:
        if mask is None:
            raise EditError("opencv-telea inpaints a mask; none given")
        return np.stack([cv2.inpaint(f, m.astype(np.uint8), 5, cv2.INPAINT_TELEA) if m.any() else f
                         for f, m in zip(frames, mask)])


@dataclass(frozen=True)
class GenerativeConfig:
    model: str = "curation.editors.generative:TeleaInpaint"  # "module:Class" of a GenerativeModel
    edit_type: str = "removal"  # whose instruction templates the model is asked to follow
    region: str = "inside"  # inside | outside | global: where the model is meant to change pixels
    slots: dict[str, str] = field(default_factory=dict)  # instruction slots beyond the object (colour, style...)

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise EditError(f"region must be one of {REGIONS}, got {self.region!r}")


def load_model(spec: str) -> GenerativeModel:
    """Instantiate the GenerativeModel named by "module:Class"."""
    module_name, _, cls_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise EditError(f"cannot load generative model {spec!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, GenerativeModel)):
        raise EditError(f"{spec!r} is not a GenerativeModel subclass")
    return cls()


class GenerativeEditor(Editor):
    name = "generative"
    config: GenerativeConfig

    def __init__(self, config: GenerativeConfig) -> None:
        super().__init__(config)
        self.model = load_model(config.model)
        self.local = config.region != "global"  # type: ignore[misc]  # per instance: the model decides
        self.model_name, self.weights_id = self.model.name, self.model.weights_id

    def setup(self) -> None:
        self.model.setup()

    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        slots = {"object": inp.object_class or "object", **self.config.slots}
        instruction = make_instruction(self.config.edit_type, slots, inp.seed).text
        target = self.model.generate(inp.frames, mask, instruction)
        if not isinstance(target, np.ndarray) or target.shape != inp.frames.shape or target.dtype != np.uint8:
            raise EditError(f"{self.model.name} returned {getattr(target, 'shape', type(target).__name__)}, "
                            f"expected uint8 {inp.frames.shape}")
        return self._result(inp, edit_type=self.config.edit_type, source=None, target=target,
                            mask=None if mask is None else mask.copy(),
                            region=self.config.region, params={"model": self.config.model,
                                                               "edit_type": self.config.edit_type},
                            slots=slots)
