"""Edit instructions: templates per edit type filled from an edit's slots, phrasing chosen by seed,
optionally rewritten by a callable (a VLM client plugs in there).

A rewrite that fails, raises or returns something unusable never loses the pair: the template text is
kept and the reason recorded, so a flaky VLM only costs variety.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from curation.editors.base import EditError, pick

TEMPLATES: dict[str, tuple[str, ...]] = {
    "removal": (
        "Remove the {object}.",
        "Erase the {object} from the video.",
        "Take the {object} out of the scene.",
        "Delete the {object} and fill in the background behind it.",
        "Get rid of the {object}.",
        "Make the {object} disappear, leaving only what is behind it.",
        "Edit out the {object}.",
    ),
    "addition": (
        "Add {a_object}.",
        "Put {a_object} into the scene.",
        "Insert {a_object} into the video.",
        "Make {a_object} appear in the clip.",
        "Place {a_object} in the video.",
        "Bring {a_object} into the shot.",
    ),
    "recolour": (
        "Make the {object} {colour}.",
        "Change the colour of the {object} to {colour}.",
        "Turn the {object} {colour}.",
        "Recolour the {object} in {colour}, keeping everything else the same.",
        "Paint the {object} {colour}.",
        "Give the {object} a {colour} colour.",
    ),
    "background/blur": (
        "Blur the background behind the {object}.",
        "Keep the {object} sharp and blur everything else.",
        "Add a shallow depth of field so only the {object} is in focus.",
        "Throw the background out of focus, leaving the {object} crisp.",
    ),
    "background/desaturate": (
        "Make the background black and white, keeping the {object} in colour.",
        "Remove the colour from everything except the {object}.",
        "Turn the background grey but leave the {object} as it is.",
        "Desaturate the scene around the {object}.",
    ),
    "background/replace": (
        "Replace the background with {background}.",
        "Put the {object} in front of {background}.",
        "Change the scene behind the {object} to {background}.",
        "Swap what is behind the {object} for {background}.",
    ),
    "style/art": (
        "Turn the video into {style}.",
        "Make the clip look like {style}.",
        "Redraw the video as {style}.",
        "Render the whole clip as {style}.",
    ),
    "style/grade": (
        "Give the video {style}.",
        "Apply {style} to the clip.",
        "Colour-grade the video with {style}.",
        "Change the look of the video to {style}.",
    ),
    "add_text": (  # {lettering}: "large yellow serif italic letters", the size, colour and font drawn
        'Add the {kind} "{text}" in {lettering} {place}{drift}.',
        'Write "{text}" in {lettering} {place}{drift}.',
        'Overlay the text "{text}" in {lettering} {place}{drift}.',
        'Put {a_kind} reading "{text}" in {lettering} {place}{drift}.',
        'Show the words "{text}" as {a_kind} in {lettering} {place}{drift}.',
    ),
    "remove_text": (
        'Remove the {kind} "{text}".',
        'Erase the text "{text}" {place}.',
        'Delete the words "{text}" from the video.',
        'Take out the {kind} that says "{text}".',
        'Get rid of the "{text}" {kind} {place}.',
    ),
}
STYLE_PHRASES = {
    "painting": "a watercolour painting", "pencil": "a pencil sketch", "cartoon": "a cartoon",
    "sepia": "an old sepia tone", "warm": "a warm, golden colour grade", "cool": "a cool, bluish colour grade",
    "black_and_white": "a black-and-white look",
}
GENERIC_CLASSES = ("object", "moving object", "moving-object", "")
"""Class names that name nothing (the motion proposer's): such an object is described by appearance and place."""
HUE_NAMES = ((15, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (200, "cyan"), (260, "blue"),
             (300, "purple"), (345, "pink"), (360, "red"))
"""Upper hue bound (degrees) of each colour name."""
SHADES = ("dark", "light")
"""The shade words colour_name puts before a hue or grey (never black or white)."""
SIZE_NAMES = ((0.015, "tiny"), (0.025, "very small"), (0.04, "small"), (0.06, "medium-sized"), (0.09, "large"),
              (0.14, "very large"), (float("inf"), "huge"))
"""Upper bound of each size word: the object's mean share of the frame over the frames that show it. Each
step is about 1.5x in area; an addition's instruction needs a size word for every object, since its size is
not in the source (benchmarks/model_oracles.py addition)."""
MAX_CHARS = 300
_QUOTE_END = re.compile(r'([.!?])"\.$')
Rewrite = Callable[[str, Mapping[str, str]], str]
"""(template instruction, slots) -> rewritten instruction; e.g. a VLM asked to paraphrase."""


@dataclass(frozen=True)
class Instruction:
    text: str
    template: str  # "<key>#<index>": which template made the text before any rewrite
    rewritten: bool = False
    rewrite_note: str = ""  # why a rewrite was not used, empty when it was or none was asked


def colour_name(pixels: np.ndarray) -> str:
    """The colour a person would call (N, 3) RGB uint8 pixels: a hue name when most are saturated, else
    white, grey or black by brightness (orange that is dark is brown). A hue or grey also takes a shade word:
    "dark" below a median brightness (HSV value) of 110 (grey: 100), "light" for a pale hue (brighter than 180,
    saturation under 150) or a grey brighter than 150. The shades tell an added object's colour better than the
    hue alone (docs/MODEL.md, "Instructions that say more of an added object")."""
    hsv = cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(np.float64)
    saturated = hsv[(hsv[:, 1] > 70) & (hsv[:, 2] > 50)]
    if len(saturated) >= 0.4 * len(hsv):
        angle = saturated[:, 0] * (2 * np.pi / 256)
        hue = float(np.degrees(np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())) % 360)
        name = next(n for bound, n in HUE_NAMES if hue < bound)
        saturation, value = (float(v) for v in np.median(saturated[:, 1:], axis=0))  # HSV: S, V
        name = "brown" if name == "orange" and value < 150 else name
        return _shaded(name, dark=value < 110, light=value > 180 and saturation < 150)
    value = float(np.median(hsv[:, 2]))
    if value > 190 or value < 60:
        return "white" if value > 190 else "black"
    return _shaded("grey", dark=value < 100, light=value > 150)


def _shaded(name: str, dark: bool, light: bool) -> str:
    """`name` with its shade word (SHADES) in front, if any."""
    shade = SHADES[0] if dark else SHADES[1] if light else ""
    return f"{shade} {name}" if shade else name


def size_name(area: float) -> str:
    """The size word of an object covering `area` of the frame (SIZE_NAMES)."""
    return next(word for bound, word in SIZE_NAMES if area < bound)


PLACE_EDGES = tuple((k + 0.5) / 100 for k in range(100))
"""Edges of the places an instruction names: a coordinate in whole percent of the frame, rounded (a point on an
edge rounds down). The least-squares guess of an added object along its named path kept 38.2-41.3 dB outside the
cut on the val of seeds 37-40 with 7 x 7 places (pairs stage 1.2-1.3), 40.2-43.1 with 14 x 14 (1.4) and 37.9-39.5
on the unseen seeds 47 and 48 (benchmarks/model_oracles.py addition; docs/MODEL.md, "Places on a 14 x 14 grid").
Finer places alone did not lift it; with the object's box and outline named (1.5) it kept 43.2-46.3 on all six
(docs/MODEL.md, "An added object's outline and box")."""


def place_index(v: float, edges: tuple[float, ...] = PLACE_EDGES) -> int:
    """Which of len(edges) + 1 columns (or rows) a coordinate v in [0, 1] falls in."""
    return sum(v > e for e in edges)


def place_name(x: float, y: float) -> str:
    """The place of a point (x, y) in [0, 1] of the frame in whole percent of the frame's width and height from the
    top left, "(25%, 61%)". The mirrored point is named (100 - x, y) but for a point exactly on an edge."""
    return f"({place_index(x)}%, {place_index(y)}%)"


OUTLINES = ((0.9, "rectangular"), (0.65, "oval"), (0.0, "irregular"))
"""Lower bound of each outline word: the share of its bounding box an object fills (a box 1, an ellipse 0.79, the
corpus's horse about 0.5). With its size in percent, the outline says which pixels of the box an added object
covers, which its size word alone could not (docs/MODEL.md, "An added object's outline and box")."""


@dataclass(frozen=True)
class ObjectBox:
    """An object's extent as an instruction names it: its box's width and height in [0, 1] of the frame's, and
    the share of the box it fills, medians over the frames whose box keeps off the frame's edge (over every frame
    that shows it when none does: an object cut by the edge is wider than it looks)."""

    width: float
    height: float
    fill: float

    @property
    def outline(self) -> str:
        return next(word for bound, word in OUTLINES if self.fill >= bound)


def object_box(mask: np.ndarray) -> ObjectBox | None:
    """The ObjectBox of a (T, H, W) bool mask; None when no frame shows the object."""
    h, w = mask.shape[1:]
    every, inside = [], []  # (width, height, fill) of each frame that shows it; of those off the frame's edge
    for m in mask[mask.any(axis=(1, 2))]:
        cols, rows = np.flatnonzero(m.any(axis=0)), np.flatnonzero(m.any(axis=1))
        bw, bh = cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1
        every.append((bw / w, bh / h, float(m.sum()) / (bw * bh)))
        if cols[0] > 0 and rows[0] > 0 and cols[-1] < w - 1 and rows[-1] < h - 1:
            inside.append(every[-1])
    if not every:
        return None
    width, height, fill = np.median(np.array(inside or every), axis=0).tolist()
    return ObjectBox(width, height, fill)


@dataclass(frozen=True)
class ObjectPath:
    """Where an object is, as an instruction names it: its centre (x, y) in [0, 1] of the frame in the first and
    last frames that show it (`first`, `last`), and over every pixel of every frame (`mean`)."""

    first: int
    last: int
    start: tuple[float, float]
    end: tuple[float, float]
    mean: tuple[float, float]


def object_path(mask: np.ndarray) -> ObjectPath | None:
    """The ObjectPath of a (T, H, W) bool mask; None when no frame shows the object."""
    shown = np.flatnonzero(mask.any(axis=(1, 2)))
    if not len(shown):
        return None
    h, w = mask.shape[1:]

    def centre(m: np.ndarray) -> tuple[float, float]:
        ys, xs = np.nonzero(m)[-2:]
        return float((xs.mean() + 0.5) / w), float((ys.mean() + 0.5) / h)  # pixel centres: a mirror maps x to 1 - x

    return ObjectPath(int(shown[0]), int(shown[-1]), centre(mask[shown[0]]), centre(mask[shown[-1]]), centre(mask))


def describe_object(frames: np.ndarray, mask: np.ndarray) -> str:
    """An object without a class name as the eye sees it: size, colour, outline, box and place, from its (T, H, W)
    mask over (T, H, W, 3) frames, e.g. "small dark red oval object, 12% wide and 20% tall, at (4%, 46%)". An
    object whose centre goes from one place to another, between the first and last frames that show it, is named
    by its path ("... moving from (39%, 46%) to (82%, 25%)"): without it an addition's instruction cannot say
    where the object goes, nor without its box and outline which pixels it covers there."""
    path, box = object_path(mask), object_box(mask)
    if path is None or box is None:
        return "object"
    area = float(mask[mask.any(axis=(1, 2))].mean())
    start, end = place_name(*path.start), place_name(*path.end)
    where = f"moving from {start} to {end}" if start != end else f"at {place_name(*path.mean)}"
    pixels = frames[mask][:: max(1, int(mask.sum()) // 20000)]  # (N, 3), at most ~20k samples
    extent = f"{max(1, round(100 * box.width))}% wide and {max(1, round(100 * box.height))}% tall"
    return f"{size_name(area)} {colour_name(pixels)} {box.outline} object, {extent}, {where}"


def template_key(edit_type: str, slots: Mapping[str, str]) -> str:
    """The TEMPLATES key of an edit: the type, refined by background mode or style family."""
    if edit_type == "background":
        return f"background/{slots.get('mode', 'blur')}"
    if edit_type == "style":
        return f"style/{slots.get('family', 'art')}"
    return edit_type


def _fill(template: str, slots: Mapping[str, str]) -> str:
    values = dict(slots)
    for name in ("object", "kind"):  # "a horse", "an ellipse", "a subtitle"
        if name in values:
            values[f"a_{name}"] = ("an " if values[name][:1].lower() in "aeiou" else "a ") + values[name]
    if "motion" in values:
        values["drift"] = ", sliding slowly to the left" if values["motion"] == "moving" else ""
    if {"size", "colour", "font"} <= set(values):  # a text's lettering: without it, where its pixels end is a guess
        values["lettering"] = f"{values['size']} {values['colour']} {values['font']} letters"
    if "style" in values:
        values["style"] = STYLE_PHRASES.get(values["style"], values["style"].replace("_", " "))
    needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    missing = sorted(needed - set(values))
    if missing:
        raise EditError(f"instruction template {template!r} needs slot(s) {', '.join(missing)}")
    text = template.format(**{k: v for k, v in values.items() if k in needed})
    return _QUOTE_END.sub(r'\1"', text)  # 'Remove "Stop!".' -> 'Remove "Stop!"': the quote ends the sentence


def make_instruction(edit_type: str, slots: Mapping[str, str], seed: int, rewrite: Rewrite | None = None) -> Instruction:
    """The instruction for an edit: a template chosen by seed, filled from slots, then optionally rewritten."""
    key = template_key(edit_type, slots)
    if key not in TEMPLATES:
        raise EditError(f"no instruction templates for {key!r}; known: {', '.join(TEMPLATES)}")
    options = TEMPLATES[key]
    index = options.index(pick(options, seed, "instruction"))
    text = _fill(options[index], slots)
    template = f"{key}#{index}"
    if rewrite is None:
        return Instruction(text, template)
    try:
        new = rewrite(text, dict(slots))
    except Exception as exc:  # noqa: BLE001 - a VLM client may fail any way; the template text stands
        return Instruction(text, template, rewrite_note=f"rewrite failed: {type(exc).__name__}: {exc}"[:200])
    if not isinstance(new, str) or not new.strip() or len(new) > MAX_CHARS or "\n" in new.strip():
        return Instruction(text, template, rewrite_note=f"rewrite unusable: {str(new)[:80]!r}")
    return Instruction(new.strip(), template, rewritten=True)
