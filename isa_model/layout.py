"""Where an instruction puts its edit, read off its words (`model.layout`), as layout-grounded generators read a
prompt's boxes before drawing.

An instruction names places in whole percent of the clip's width and height ("at (4%, 46%)", "moving from
(39%, 46%) to (61%, 68%)"; curation/editors/instructions.py, `place_name`; a 14 x 14 grid's cell centres up to pairs
stage 1.4), since stage 1.5 an unnamed object's box ("12% wide and 20% tall"), and a text edit's place in words
("on the left", "in the top right corner"). An added object is nowhere in the source, so those words are the model's
only clue to where it goes, and the few hundred addition pairs of a training set are too few to learn places and
their paths from a text tower that starts at random: on seed 37 `small` painted nothing (+0.00 dB) where a guess
that reads the same words gains +1.57 (docs/MODEL.md, "What the instruction's words allow an addition"). So the
words' geometry is parsed here, exactly, and the model gets each token's offset from the named path and where it
lies in the named box (`layout_features`); what to paint there it still learns from the text.

A layout is seven numbers: the path's start (x, y) and end (x, y) as fractions of the whole clip, the centres of
the places named (one place: start = end), 1, and the width and height of the object's box as fractions of the
frame's ("12% wide and 20% tall"; zeros when unnamed); an instruction that names no place is all zeros.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from isa_model.augment import PATH, PLACE, PLACE_XY, unquoted

NEAR = 1 / 7
"""The width of a token's closeness to the path, exp(-|d|^2 / NEAR^2): 0.37 at 1/7 of the clip, a place of the
7 x 7 grid that curation named up to pairs stage 1.3 (kept as it was when places became finer)."""
TEXT_PLACES = {"left": (1.5 / 7, 0.5), "middle": (0.5, 0.5), "right": (5.5 / 7, 0.5), "top left": (1.5 / 7, 0.5 / 7),
               "top right": (5.5 / 7, 0.5 / 7)}
"""(x, y) of a text edit's place ("on the left", "in the middle", "in the top right corner"; curation/editors/text.py):
the 7 x 7 cells of those names, as layouts read them up to pairs stage 1.3 ("at the top" and "at the bottom" name
none)."""
LAYOUT_SIZE = 7
_BOX = re.compile(r"\b(\d{1,3})% wide and (\d{1,3})% tall\b")
_AT = re.compile(rf"\bat ({PLACE})|\b(?:on|in) the (top left|top right|left|middle|right)\b")
LAYOUT_BANDS = 5
"""Frequencies of a token's offset from the path (pi * 2**k, k < 5): the finest has a period of 1/8 of the
clip."""
LAYOUT_FEATURES = 2 + 4 * LAYOUT_BANDS + 4
"""Features per token (`layout_features`): flag, closeness, Fourier features, and four of the named box."""


def place_centre(place: str) -> tuple[float, float]:
    """(x, y) in [0, 1] of a place `place_name` writes ("(25%, 61%)") or a text edit's place ("top left")."""
    if place in TEXT_PLACES:
        return TEXT_PLACES[place]
    x, y = PLACE_XY.findall(place)[0]
    return int(x) / 100, int(y) / 100


def instruction_layout(instruction: str) -> np.ndarray:
    """(7,) float32: (start x, start y, end x, end y, 1, box width, box height) of the path or place the instruction
    names outside quoted text (the first one; the box 0, 0 when it names none), zeros when it names no place."""
    plain = unquoted(instruction)  # quoted words are content, not places
    path = PATH.search(plain)
    if path:
        start, end = place_centre(path.group(1)), place_centre(path.group(2))
    else:
        at = _AT.search(plain)
        if not at:
            return np.zeros(LAYOUT_SIZE, np.float32)
        start = end = place_centre(at.group(1) or at.group(2))
    box = _BOX.search(plain)
    extent = (int(box.group(1)) / 100, int(box.group(2)) / 100) if box else (0.0, 0.0)
    return np.array([*start, *end, 1.0, *extent], np.float32)


def layout_features(coords: torch.Tensor, layout: torch.Tensor, bands: int = LAYOUT_BANDS) -> torch.Tensor:
    """Each token's offset from where the named path is at its time: coords (B, N, 3) (t, y, x) fractions of the
    clip (`model.token_coords`), layout (B, 7) -> (B, N, LAYOUT_FEATURES): the layout's flag, a closeness
    exp(-|d|^2 / NEAR^2) (1 on the path, 0.37 at NEAR), Fourier features of the offset d (x, y), and, for a named
    box, its flag, the offset in half-widths and half-heights of the box (u, clamped to 4, over 4) and how far
    inside the box the token is, 1 - max|u| (1 at its centre, 0 on its edge, clamped to -1). The path is walked
    from start to end over the whole clip; a token of an instruction without a place gets zeros."""
    start, end, present = layout[:, None, 0:2], layout[:, None, 2:4], layout[:, None, 4:5]  # (B, 1, 2/2/1)
    extent = layout[:, None, 5:7]  # (B, 1, 2): the box's width and height, 0 when unnamed
    at = start + (end - start) * coords[..., :1]  # (B, N, 2): the path's point at each token's time
    offset = coords[..., [2, 1]] - at  # (B, N, 2) in x, y
    closeness = torch.exp(-(offset**2).sum(-1, keepdim=True) / NEAR**2)  # (B, N, 1)
    freqs = torch.pi * 2.0 ** torch.arange(bands, device=coords.device, dtype=torch.float32)  # (bands,)
    angles = (offset[..., None] * freqs).flatten(-2)  # (B, N, 2 * bands)
    boxed = (extent > 0).all(-1, keepdim=True).float()  # (B, 1, 1)
    u = (offset / (extent / 2).clamp(min=1e-3)).clamp(-4, 4)  # (B, N, 2): offset in half-extents
    inside = (1 - u.abs().amax(-1, keepdim=True)).clamp(min=-1)  # (B, N, 1)
    box = torch.cat([torch.ones_like(inside), u / 4, inside], dim=-1) * boxed  # (B, N, 4)
    feats = torch.cat([torch.ones_like(closeness), closeness, angles.sin(), angles.cos(), box], dim=-1)
    return feats * present  # (B, N, LAYOUT_FEATURES)
