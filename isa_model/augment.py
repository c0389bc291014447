"""A training sample mirrored left-right or played backwards, with its instruction rewritten to match.

An instruction names places in the clip ("a small red object moving from the left to the upper far right") and
the model has to learn which words go with which place from few pairs: an addition pair is the only evidence of
where its object goes. A mirrored sample is the same edit at the mirrored place with "left" and "right"
swapped; a reversed one is the same edit along the path walked backwards, its ends swapped. Both keep every
pixel of the pair (no new content), so the edit stays exact; they only multiply how often each place word is
seen with a different object. Text edits are left as they are: a mirror turns glyphs backwards, and their
"sliding to the left" would read wrong backwards (`AUGMENT_SKIPS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import torch

AUGMENT_SKIPS = frozenset({"add_text", "remove_text"})
"""Edit types never mirrored or reversed."""

COLUMN_NAMES = ("far left", "left", "mid-left", "middle", "mid-right", "right", "far right")
ROW_NAMES = ("top", "upper", "mid-upper", "middle", "mid-lower", "lower", "bottom")
"""Curation's seven columns and rows, left to right and top to bottom (a row is named only beside a column)."""


def _either(names: tuple[str, ...]) -> str:
    return "(?:" + "|".join(sorted(names, key=len, reverse=True)) + ")"  # "mid-left" is tried before "left"


_COLUMN = _either(COLUMN_NAMES)
_ROW = _either(tuple(n for n in ROW_NAMES if n != "middle"))
PLACE = rf"(?:{_ROW} {_COLUMN}|{_COLUMN})"
"""The places curation names (curation/editors/instructions.py, `place_name`): 49 of them."""
PATH = re.compile(rf"\bfrom the ({PLACE}) to the ({PLACE})\b")
"""A path an instruction names, its start and end places as groups 1 and 2."""
_SIDE = re.compile(r"\b(left|right|Left|Right)\b")
_SWAP = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}


def _outside_quotes(text: str, rewrite: Callable[[str], str]) -> str:
    """Apply `rewrite` to the parts of `text` outside double quotes: quoted words are content, not places."""
    parts = text.split('"')
    return '"'.join(rewrite(p) if i % 2 == 0 else p for i, p in enumerate(parts))


def unquoted(text: str) -> str:
    """The parts of `text` outside double quotes, joined by spaces: the words that may name places."""
    return " ".join(text.split('"')[::2])


def mirror_instruction(text: str) -> str:
    """The instruction of the left-right mirrored clip: "left" and "right" swapped as words."""
    return _outside_quotes(text, lambda s: _SIDE.sub(lambda m: _SWAP[m.group(1)], s))


def reverse_instruction(text: str) -> str:
    """The instruction of the clip played backwards: a path's two ends swapped."""
    return _outside_quotes(text, lambda s: PATH.sub(r"from the \2 to the \1", s))


def augment_choice(seed: int, epoch: int, row: int, edit_type: str, mirror: float, reverse: float) -> tuple[bool, bool]:
    """(mirror it, reverse it) for one training sample, drawn from (seed, epoch, row) as its crop is, from a
    stream of its own: turning augmentation on leaves every sample's frames and crop as they were."""
    if edit_type in AUGMENT_SKIPS or (mirror <= 0 and reverse <= 0):
        return False, False
    u = np.random.default_rng([seed, epoch, row, 1]).random(2)
    return bool(u[0] < mirror), bool(u[1] < reverse)


def _flip_axis(sample: list[torch.Tensor], box: np.ndarray, dim: int, box_row: int) -> tuple[list[torch.Tensor], np.ndarray]:
    """Tensors (C, T, H, W) reversed along `dim`, and the (3, 2) box's span of that axis mirrored in the clip."""
    box = box.copy()
    box[box_row] = 1.0 - box[box_row, ::-1]
    return [x.flip(dim) for x in sample], box


def flip(sample: list[torch.Tensor], box: np.ndarray, instruction: str, mirrored: bool,
         reversed_: bool) -> tuple[list[torch.Tensor], np.ndarray, str]:
    """A sample's tensors (C, T, H, W), box and instruction, mirrored left-right and/or played backwards."""
    if mirrored:
        sample, box = _flip_axis(sample, box, dim=-1, box_row=2)
        instruction = mirror_instruction(instruction)
    if reversed_:
        sample, box = _flip_axis(sample, box, dim=1, box_row=0)
        instruction = reverse_instruction(instruction)
    return sample, box, instruction
