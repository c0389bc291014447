"""A training sample mirrored left-right or played backwards, with its instruction rewritten to match.

An instruction names places in the clip ("a small red object moving from (18%, 46%) to (96%, 32%)") and the model
has to learn which words go with which place from few pairs: an addition pair is the only evidence of where its
object goes. A mirrored sample is the same edit at the mirrored place, (x%, y%) turned into (100 - x%, y%) and
"left" and "right" swapped; a reversed one is the same edit along the path walked backwards, its ends swapped. Both
keep every pixel of the pair (no new content), so the edit stays exact; they only multiply how often each place is
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

PLACE = r"\(\d{1,3}%, \d{1,3}%\)"
"""A place as curation names it (curation/editors/instructions.py, `place_name`): "(25%, 61%)", the centre of its cell
in percent of the frame's width and height from the top left."""
PLACE_XY = re.compile(r"\((\d{1,3})%, (\d{1,3})%\)")
"""PLACE with its x and y percent as groups 1 and 2."""
PATH = re.compile(rf"\bfrom ({PLACE}) to ({PLACE})")
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
    """The instruction of the left-right mirrored clip: "left" and "right" swapped as words, a place's x by 100 - x."""
    def mirror(s: str) -> str:
        s = PLACE_XY.sub(lambda m: f"({100 - int(m.group(1))}%, {m.group(2)}%)", s)
        return _SIDE.sub(lambda m: _SWAP[m.group(1)], s)
    return _outside_quotes(text, mirror)


def reverse_instruction(text: str) -> str:
    """The instruction of the clip played backwards: a path's two ends swapped."""
    return _outside_quotes(text, lambda s: PATH.sub(r"from \2 to \1", s))


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
