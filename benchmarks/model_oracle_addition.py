"""The addition oracles' pure parts (benchmarks/model_oracles.py reads the pairs and scores them): the added
object as a sample's scaled frames show it, the paths its instruction names, the discs drawn along them, and
what the instruction's colour and size words tell of it (`WordPrior`). No file is read here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from curation.editors.base import EditError
from curation.editors.instructions import HUE_NAMES, OUTLINES, SHADES, SIZE_NAMES, object_path
from isa_model.objective import change_mask


def addition_oracles(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """source, target (C, T, H, W) in [-1, 1]; mask (T, H, W) in {0, 1}. The two oracles' clips, same shape."""
    first = mask[0] > 0.5  # (H, W)
    first_frame = source.clone()
    first_frame[:, 0] = torch.where(first, target[:, 0], source[:, 0])
    held_still = torch.where(first, target[:, :1], source)  # (C, T, H, W): frame 0's object in every frame
    return {"first frame": first_frame, "held still": held_still}


PATH_DRAWS = 512
"""Paths drawn per addition guess; the guess is their mean clip."""


@dataclasses.dataclass(frozen=True)
class AddedObject:
    """An addition's object in a sample's scaled frames: where the target differs from the source inside the mask."""

    pixels: torch.Tensor  # (T, H, W) bool
    colour: torch.Tensor  # (C,) its mean colour
    radius: float  # pixels: a disc of its mean area over the frames that show it
    shown: torch.Tensor  # (V,) the frames that show it, V >= 2
    centres: torch.Tensor  # (V, 2) its centre (x, y) in each, in [0, 1] of the frame


def added_object(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> AddedObject:
    """source, target (C, T, H, W) in [-1, 1], mask (T, H, W); EditError when no two frames show the object."""
    pixels = (mask > 0.5) & (change_mask(source[None], target[None])[0, 0] > 0)  # (T, H, W)
    shown = torch.nonzero(pixels.flatten(1).any(1)).flatten()
    if len(shown) < 2:
        raise EditError(f"the added object shows in {len(shown)} of {len(pixels)} frames, not two")
    height, width = pixels.shape[1:]
    scale = torch.tensor([width, height], dtype=torch.float32)
    centres = torch.stack([(torch.nonzero(pixels[t]).flip(1).float() + 0.5).mean(0) / scale for t in shown])
    area = float(pixels[shown].flatten(1).sum(1).float().mean())
    return AddedObject(pixels, target.permute(1, 2, 3, 0)[pixels].mean(0), (area / np.pi) ** 0.5, shown, centres)


COLOUR_WORDS = sorted({name for _, name in HUE_NAMES} | {"brown", "white", "grey", "black"})
SHADE_WORDS = sorted(SHADES)
SIZE_WORDS = sorted((word for _, word in SIZE_NAMES), key=len, reverse=True)  # "very small" before "small"
OUTLINE_WORDS = sorted(word for _, word in OUTLINES)
OBJECT_WORDS = re.compile(rf"\b({'|'.join(SIZE_WORDS)}) ((?:(?:{'|'.join(SHADE_WORDS)}) )?(?:{'|'.join(COLOUR_WORDS)})) "
                          rf"(?:({'|'.join(OUTLINE_WORDS)}) )?object\b(?:, (\d{{1,3}})% wide and (\d{{1,3}})% tall\b)?")
"""An unnamed object's words in an instruction (describe_object: "large dark brown oval object, 12% wide and 20% tall,
..."); the outline and box since pairs stage 1.5."""


@dataclasses.dataclass(frozen=True)
class ObjectWords:
    """What an addition's instruction says of its object: size and colour words ("?" for an object named by its
    class), and since pairs stage 1.5 its outline word and box (width, height in [0, 1] of the frame)."""

    size: str
    colour: str
    outline: str = "?"
    box: tuple[float, float] | None = None


def instruction_words(instruction: str) -> ObjectWords:
    """The ObjectWords an addition's instruction names its object by."""
    found = OBJECT_WORDS.search(instruction.lower())
    if not found:
        return ObjectWords("?", "?")
    size, colour, outline, width, height = found.groups()
    return ObjectWords(size, colour, outline or "?", (int(width) / 100, int(height) / 100) if width else None)


TEMPLATE = 24
"""Side of an outline's template: an object's pixels in its box, scaled to TEMPLATE x TEMPLATE."""


def box_template(pixels: torch.Tensor) -> torch.Tensor:
    """(TEMPLATE, TEMPLATE): the share of the frames showing a (T, H, W) bool object that it covers at each point
    of its box, each frame's box scaled to the template."""
    frames = []
    for m in pixels[pixels.flatten(1).any(1)]:
        rows, cols = torch.nonzero(m.any(1)).flatten(), torch.nonzero(m.any(0)).flatten()
        crop = m[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].float()[None, None]  # (1, 1, h, w)
        frames.append(F.interpolate(crop, size=(TEMPLATE, TEMPLATE), mode="area")[0, 0])
    return torch.stack(frames).mean(0)


@dataclasses.dataclass(frozen=True)
class WordPrior:
    """The least-squares colour, size and outline of an object given its instruction's words: over a train split's
    added objects, the mean colour of each colour word's objects, the radius of the mean area of each size word's
    and the mean box template of each outline word's (a word the split never used gets the mean over every
    object)."""

    colours: dict[str, torch.Tensor]  # colour word -> (C,)
    radii: dict[str, float]  # size word -> pixels
    templates: dict[str, torch.Tensor]  # outline word -> (TEMPLATE, TEMPLATE)
    colour: torch.Tensor  # (C,) over every object
    radius: float
    template: torch.Tensor

    @staticmethod
    def fit(objects: list[tuple[ObjectWords, AddedObject]]) -> WordPrior:
        def mean_colour(objs: list[AddedObject]) -> torch.Tensor:
            return torch.stack([o.colour for o in objs]).mean(0)

        def mean_radius(objs: list[AddedObject]) -> float:
            return float(np.mean([o.radius**2 for o in objs]) ** 0.5)

        def mean_template(objs: list[AddedObject]) -> torch.Tensor:
            return torch.stack([box_template(o.pixels) for o in objs]).mean(0)

        groups: dict[str, dict[str, list[AddedObject]]] = {"colour": {}, "size": {}, "outline": {}}
        for words, obj in objects:
            for field, by_word in groups.items():
                by_word.setdefault(getattr(words, field), []).append(obj)
        every = [obj for _, obj in objects]
        return WordPrior({w: mean_colour(o) for w, o in groups["colour"].items()},
                         {w: mean_radius(o) for w, o in groups["size"].items()},
                         {w: mean_template(o) for w, o in groups["outline"].items()},
                         mean_colour(every), mean_radius(every), mean_template(every))

    def of(self, words: ObjectWords) -> tuple[torch.Tensor, float]:
        """(colour (C,), radius) for the words' colour and size."""
        return self.colours.get(words.colour, self.colour), self.radii.get(words.size, self.radius)

    def outline(self, words: ObjectWords) -> torch.Tensor:
        """(TEMPLATE, TEMPLATE): the template of the words' outline."""
        return self.templates.get(words.outline, self.template)


def disc_cover(starts: torch.Tensor, ends: torch.Tensor, radius: float, times: torch.Tensor,
               size: tuple[int, int, int]) -> torch.Tensor:
    """(T, H, W) share of the paths whose disc of `radius` pixels covers each pixel. Path k goes in a straight
    line from starts[k] at time 0 to ends[k] at time 1 ((K, 2) points (x, y) in [0, 1]); times (T,) says where
    along it each frame is, nan for a frame that does not show the object (cover 0)."""
    frames, height, width = size
    ys, xs = torch.arange(height) + 0.5, torch.arange(width) + 0.5
    cover = torch.zeros(frames, height, width)
    for t in torch.nonzero(~times.isnan()).flatten().tolist():
        at = (starts + (ends - starts) * times[t]) * torch.tensor([width, height])  # (K, 2) pixels
        d2 = (xs[None, None, :] - at[:, 0, None, None]) ** 2 + (ys[None, :, None] - at[:, 1, None, None]) ** 2
        cover[t] = (d2 <= radius**2).float().mean(0)  # (H, W)
    return cover


def box_cover(starts: torch.Tensor, ends: torch.Tensor, template: torch.Tensor, extent: tuple[float, float],
              times: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """(T, H, W) mean, over the paths, of a (TEMPLATE, TEMPLATE) outline template stretched to a box `extent`
    (width, height in pixels) centred on each path (as disc_cover walks them)."""
    frames, height, width = size
    ys, xs = torch.arange(height) + 0.5, torch.arange(width) + 0.5
    tmpl = template[None, None].expand(len(starts), 1, -1, -1)  # (K, 1, S, S)
    cover = torch.zeros(frames, height, width)
    for t in torch.nonzero(~times.isnan()).flatten().tolist():
        at = (starts + (ends - starts) * times[t]) * torch.tensor([width, height])  # (K, 2) pixels
        gx = 2 * (xs[None, None, :] - at[:, 0, None, None]) / extent[0]  # (K, 1, W): -1..1 across the box
        gy = 2 * (ys[None, :, None] - at[:, 1, None, None]) / extent[1]  # (K, H, 1)
        grid = torch.stack(torch.broadcast_tensors(gx, gy), dim=-1)  # (K, H, W, 2)
        cover[t] = F.grid_sample(tmpl, grid, align_corners=False, padding_mode="zeros")[:, 0].mean(0)  # (H, W)
    return cover


def path_times(idx: list[int], first: int, last: int) -> torch.Tensor:
    """(T,) where clip frames `idx` lie on a path from frame `first` (0) to `last` (1); nan outside it."""
    u = (torch.tensor(idx, dtype=torch.float32) - first) / max(1, last - first)
    return torch.where((u >= 0) & (u <= 1), u, torch.nan)


@dataclasses.dataclass(frozen=True)
class NamedPath:
    """An instruction's ObjectPath (curation/editors/instructions.py, object_path) as tensors: the object's
    centre (x, y) in [0, 1] in the first and last frames that show it, those frames, and its mean centre."""

    start: torch.Tensor  # (2,)
    end: torch.Tensor  # (2,)
    first: int
    last: int
    mean: torch.Tensor  # (2,)


def named_path(mask: np.ndarray) -> NamedPath:
    """The NamedPath of an object's (T, H, W) bool mask over the whole clip at its own size."""
    path = object_path(mask)
    if path is None or path.first == path.last:  # fewer than two frames show it
        shown = int(mask.any(axis=(1, 2)).sum())
        raise EditError(f"the object's mask shows it in {shown} of {len(mask)} frames, not two")
    start, end, mean = (torch.tensor(xy, dtype=torch.float32) for xy in (path.start, path.end, path.mean))
    return NamedPath(start, end, path.first, path.last, mean)


def places(points: torch.Tensor, edges: tuple[float, ...]) -> torch.Tensor:
    """(..., 2) points (x, y) -> (..., 2) their column and row on the edges' grid, as `place_index` counts."""
    edges_t = torch.tensor(edges, dtype=torch.float64)  # as place_index compares: in Python floats
    return torch.bucketize(points.double(), edges_t)  # the number of edges below each coordinate


def in_place(point: torch.Tensor, edges: tuple[float, ...], n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 2) points uniform in the place (one cell of the edges' grid) that `point` (x, y) lies in."""
    bounds = torch.tensor((0.0, *edges, 1.0))
    cell = places(point, edges)  # (2,)
    lo, hi = bounds[cell], bounds[cell + 1]
    return lo + (hi - lo) * torch.rand(n, 2, generator=gen)


def paths_through(place_of: torch.Tensor, edges: tuple[float, ...], n: int, gen: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to n paths (starts, ends), each end uniform over the frame, whose midpoints lie in the place of `place_of`
    (paths held still in it when no draw's midpoint falls in so small a place)."""
    cell = places(place_of, edges)  # (2,)
    starts, ends = [], []
    for _ in range(64):  # a corner place of 25 keeps about 1 draw in 160: 512 in 2 rounds
        a, b = torch.rand(2, 65536, 2, generator=gen)  # (2, draws, 2)
        keep = (places((a + b) / 2, edges) == cell).all(1)
        starts.append(a[keep])
        ends.append(b[keep])
        if sum(len(x) for x in starts) >= n:
            break
    if not sum(len(x) for x in starts):  # a place too small for any draw's midpoint: the object held in it
        still = in_place(place_of, edges, n, gen)
        return still, still
    return torch.cat(starts)[:n], torch.cat(ends)[:n]


Guess = tuple[torch.Tensor, torch.Tensor]
"""A mean over draws, (C, T, H, W), and each pixel's share of the draws that change it, (T, H, W)."""
Cover = Callable[[torch.Tensor], torch.Tensor]
"""A guess's share of draws covering each pixel, (T, H, W), for the times (T,) of its frames on the path."""


def addition_guesses(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, named: NamedPath,
                     times: torch.Tensor, edges: tuple[float, ...], gen: torch.Generator,
                     trained: list[torch.Tensor] | None = None, draws: int = PATH_DRAWS,
                     worded: tuple[torch.Tensor, float] | None = None,
                     boxed: tuple[torch.Tensor, tuple[float, float]] | None = None
                     ) -> tuple[dict[str, torch.Tensor], dict[str, Guess], dict[str, Guess]]:
    """The module docstring's addition guesses on the whole frame: those that know the object's path in these
    frames exactly; those drawn over the paths its instruction (`named`) cannot tell apart, placed along them
    at `times` (T,) (path_times); and the same draws averaged over the `trained` times of every window
    training reads (added to these frames: what a model that cannot tell its window learns to paint).
    `worded` (colour (C,), radius; WordPrior.of) adds the named path painted in what the words tell; `boxed`
    (outline template, box (width, height) in [0, 1] of the frame), with `worded`, the same in the named box and
    outline."""
    obj = added_object(source, target, mask)
    size = tuple(obj.pixels.shape)

    def painted(cover: torch.Tensor, colour: torch.Tensor = obj.colour) -> torch.Tensor:  # (T, H, W) -> (C, T, H, W)
        return source + cover * (colour[:, None, None, None] - source)

    seen = torch.full((size[0],), torch.nan)
    seen[obj.shown] = torch.linspace(0, 1, len(obj.shown))
    exact = {"flat, true shape": torch.where(obj.pixels, obj.colour[:, None, None, None], source),
             "disc, exact path": painted(disc_cover(obj.centres[0][None], obj.centres[-1][None], obj.radius, seen, size))}
    place = paths_through(named.mean, edges, draws, gen)
    path = in_place(named.start, edges, draws, gen), in_place(named.end, edges, draws, gen)
    guesses: list[tuple[str, Cover, torch.Tensor]] = [
        ("named place", lambda u: disc_cover(*place, obj.radius, u, size), obj.colour),
        ("named path", lambda u: disc_cover(*path, obj.radius, u, size), obj.colour)]
    if worded is not None:
        guesses.append(("named path, its words", lambda u: disc_cover(*path, worded[1], u, size), worded[0]))
    if worded is not None and boxed is not None:
        extent = (boxed[1][0] * size[2], boxed[1][1] * size[1])  # pixels of this frame
        guesses.append(("named box, its words", lambda u: box_cover(*path, boxed[0], extent, u, size), worded[0]))
    drawn, averaged = {}, {}
    for name, cover_at, colour in guesses:
        cover = cover_at(times)
        drawn[name] = painted(cover, colour), cover
        mean = torch.stack([cover_at(u) for u in trained]).mean(0) if trained else cover
        averaged[name] = painted(mean, colour), mean
    return exact, drawn, averaged
