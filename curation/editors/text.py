"""Text edits (OpenVE's subtitle category): rendered text (a subtitle, a caption or a sign; font, size, place,
static or moving) composited onto a clip, and the reverse pair that removes it.

The target of an addition is exact: the glyphs are drawn by us, so the mask is the set of pixels the glyphs
(with their outline or plate) touch and every other pixel is the source's own. The removal is the same pair
with the roles swapped, so its target is the real footage. Both need a source with no burnt-in text of its
own (the OCR signal `text_overlay` says so), else "remove the text" would leave text behind. Fonts are the
DejaVu TrueType files bundled in matplotlib's wheel: nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from curation.editors.base import EditError, EditInput, Editor, EditResult, pick

FONTS = {"sans": "DejaVuSans.ttf", "sans bold": "DejaVuSans-Bold.ttf", "serif": "DejaVuSerif.ttf",
         "serif italic": "DejaVuSerif-Italic.ttf", "mono": "DejaVuSansMono.ttf"}
KINDS = ("subtitle", "caption", "sign")
MOTIONS = ("static", "moving")
SIZES = {"small": 0.07, "medium": 0.09, "large": 0.12}  # glyph height as a fraction of the frame height
TEXTS: dict[str, tuple[str, ...]] = {
    "subtitle": ("I told you we'd be late.", "Where did you put the keys?", "Not now, later.", "We should go home.",
                 "It's starting to rain.", "Look over there!", "Who is at the door?", "Thank you so much."),
    "caption": ("BREAKING NEWS", "LIVE", "Day 3", "Summer 2024", "Replay", "Part 2", "The next morning",
                "Episode 4", "Top 10", "Behind the scenes"),
    "sign": ("OPEN", "EXIT", "SALE", "NO PARKING", "STOP", "CAFE", "HOTEL", "WELCOME", "PRIVATE", "TICKETS"),
}
PLACES = {  # kind -> places it may take: (name as an instruction says it, x, y): the patch's top-left corner
    # as a fraction of the room the frame leaves around it (0: against the left/top edge, 1: the right/bottom)
    "subtitle": (("at the bottom", 0.5, 0.92),),
    "caption": (("in the top left corner", 0.04, 0.06), ("in the top right corner", 0.96, 0.06),
                ("at the top", 0.5, 0.06)),
    "sign": (("on the left", 0.15, 0.45), ("on the right", 0.85, 0.45), ("in the middle", 0.5, 0.5)),
}
COLOURS = {"white": (255, 255, 255), "yellow": (255, 221, 0), "black": (0, 0, 0), "red": (210, 30, 30),
           "blue": (30, 70, 200), "green": (20, 140, 60)}
FILLS = {"subtitle": ("white",), "caption": ("yellow", "white"), "sign": ("black", "red", "blue", "green")}
"""kind -> the letter colours it is drawn in (COLOURS keys), one chosen by the input's seed."""
MIN_FONT_PX = 8
MOVE_FRACTION = 0.25
"""A moving text slides this fraction of the frame width over the clip (within the frame)."""


@dataclass(frozen=True)
class TextConfig:
    """Fixed choices (None: drawn by the input's seed) and how little OCR-read text a source may carry."""

    kind: str | None = None  # subtitle | caption | sign
    motion: str | None = None  # static | moving
    text: str | None = None
    font: str | None = None  # a FONTS key
    size: str | None = None  # a SIZES key
    max_source_text: float = 0.002  # the source's text_overlay (fraction of frame under read text) must be <= this

    def __post_init__(self) -> None:
        for name, value, known in (("kind", self.kind, KINDS), ("motion", self.motion, MOTIONS),
                                   ("font", self.font, tuple(FONTS)), ("size", self.size, tuple(SIZES))):
            if value is not None and value not in known:
                raise EditError(f"unknown text {name} {value!r}; known: {', '.join(known)}")
        if self.text is not None and (not self.text.strip() or '"' in self.text or not self.text.isprintable()):
            raise EditError(f"text must be printable, non-empty and without double quotes, got {self.text!r}")
        if not 0 <= self.max_source_text <= 1:
            raise EditError(f"max_source_text must be in [0, 1], got {self.max_source_text}")


def font_path(name: str) -> Path:
    """The bundled TrueType file of font `name` (matplotlib ships the DejaVu family in its wheel)."""
    from matplotlib import get_data_path  # only the data folder: no pyplot, no font cache

    path = Path(get_data_path()) / "fonts" / "ttf" / FONTS[name]
    if not path.is_file():
        raise EditError(f"font file {FONTS[name]} is missing from matplotlib's data folder")
    return path


@functools.lru_cache(maxsize=64)
def _font(name: str, pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(name)), pixels)


@dataclass(frozen=True)
class TextPlan:
    """Everything that fixes one text overlay; `params` of the pair."""

    kind: str
    text: str
    font: str
    size: str
    fill: str
    place: str
    motion: str
    font_px: int


def render(plan: TextPlan, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB patch (h, w, 3) uint8, alpha (h, w) float32 0-1) of the text as drawn: subtitles and captions with a
    dark outline, signs on a plate; the font shrinks until the patch fits 90 % of `width` (EditError if even
    MIN_FONT_PX does not)."""
    px = plan.font_px
    while True:
        font = _font(plan.font, px)
        stroke = 0 if plan.kind == "sign" else max(1, px // 12)
        pad = max(2, px // 4) if plan.kind == "sign" else stroke + 1
        left, top, right, bottom = font.getbbox(plan.text, stroke_width=stroke)
        w, h = int(right - left) + 2 * pad, int(bottom - top) + 2 * pad
        if w <= 0.9 * width:
            break
        if px <= MIN_FONT_PX:  # cropped text would make the instruction quote words the frame does not show
            raise EditError(f"text {plan.text!r} does not fit a {width} px wide frame at {MIN_FONT_PX} px")
        px = max(MIN_FONT_PX, px - max(1, px // 8))
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    fill = COLOURS[plan.fill]
    if plan.kind == "sign":  # dark letters on a white plate
        draw.rectangle((0, 0, w - 1, h - 1), fill=(*COLOURS["white"], 255))
    draw.text((pad - left, pad - top), plan.text, font=font, fill=(*fill, 255), stroke_width=stroke,
              stroke_fill=(0, 0, 0, 255))
    rgba = np.asarray(image)
    return np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].astype(np.float32) / 255


def positions(plan: TextPlan, patch_hw: tuple[int, int], frame_hw: tuple[int, int], frames: int) -> np.ndarray:
    """(T, 2) top-left (y, x) of the patch per frame: at its place, sliding left over the clip when moving;
    always inside the frame."""
    (ph, pw), (fh, fw) = patch_hw, frame_hw
    _, ax, ay = next(p for p in PLACES[plan.kind] if p[0] == plan.place)
    y = round(ay * max(0, fh - ph))
    x = ax * max(0, fw - pw)
    shift = np.zeros(frames) if plan.motion == "static" else np.linspace(MOVE_FRACTION / 2, -MOVE_FRACTION / 2, frames) * fw
    xs = np.clip(np.round(x + shift), 0, max(0, fw - pw)).astype(int)
    return np.stack([np.full(frames, y), xs], axis=1)


def overlay(frames: np.ndarray, plan: TextPlan) -> tuple[np.ndarray, np.ndarray]:
    """(frames with the text composited, (T, H, W) bool mask of every pixel it touched); others untouched."""
    t, fh, fw = frames.shape[:3]
    rgb, alpha = render(plan, fw)
    ph, pw = min(alpha.shape[0], fh), min(alpha.shape[1], fw)
    rgb, alpha = rgb[:ph, :pw].astype(np.float32), alpha[:ph, :pw, None]
    out, mask = frames.copy(), np.zeros((t, fh, fw), bool)
    for i, (y, x) in enumerate(positions(plan, (ph, pw), (fh, fw), t)):
        region = out[i, y : y + ph, x : x + pw].astype(np.float32)
        out[i, y : y + ph, x : x + pw] = np.clip(region * (1 - alpha) + rgb * alpha + 0.5, 0, 255).astype(np.uint8)
        mask[i, y : y + ph, x : x + pw] = alpha[..., 0] > 0
    return out, mask


class TextAddition(Editor):
    """Add text: the source is the clip, the target the clip with rendered text."""

    name = "add_text"
    local = False
    config: TextConfig

    def accepts(self, text_overlay: float | None) -> bool:
        """Only a source whose OCR signal was measured and found (almost) no text: a text edit's target or
        source must be free of text other than ours."""
        return text_overlay is not None and text_overlay <= self.config.max_source_text

    def plan(self, inp: EditInput) -> TextPlan:
        c, seed = self.config, inp.seed
        kind = c.kind or pick(KINDS, seed, "text-kind")
        fill = pick(FILLS[kind], seed, "text-fill")  # a pick from one colour (subtitles) is that colour
        size = c.size or pick(tuple(SIZES), seed, "text-size")
        height = inp.frames.shape[1]
        return TextPlan(kind=kind, text=c.text or pick(TEXTS[kind], seed, "text"),
                        font=c.font or pick(tuple(FONTS), seed, "text-font"), size=size, fill=fill,
                        place=pick(tuple(p[0] for p in PLACES[kind]), seed, "text-place"),
                        motion=c.motion or pick(MOTIONS, seed, "text-motion"),
                        font_px=max(MIN_FONT_PX, round(SIZES[size] * height)))

    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        if not self.accepts(inp.text_overlay):
            raise EditError(f"a text edit needs a source without text: its text_overlay is {inp.text_overlay!r}, "
                            f"above {self.config.max_source_text} or not measured")
        plan = self.plan(inp)
        written, glyphs = overlay(inp.frames, plan)
        if not glyphs.any():
            raise EditError("the text drew no pixels")
        slots = {"text": plan.text, "kind": plan.kind, "place": plan.place, "motion": plan.motion,
                 "size": plan.size, "colour": plan.fill, "font": plan.font}  # the lettering: where the text ends
        return self._result(inp, source=None, target=written, mask=glyphs, region="inside",
                            params=dataclasses.asdict(plan), slots=slots)


class TextRemoval(TextAddition):
    """Remove text: the same overlay as the addition, roles swapped, so the target is the real clip."""

    name = "remove_text"

    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        added = super()._edit(inp, mask)
        return dataclasses.replace(added, edit_type=self.name, source=added.target, target=None)
