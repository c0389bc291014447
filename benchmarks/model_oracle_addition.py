"""The addition oracles' pure parts (benchmarks/model_oracles.py reads the pairs and scores them): the added
object as a sample's scaled frames show it, the paths its instruction names, the discs drawn along them, and
what the instruction's colour and size words tell of it (`WordPrior`). No file is read here.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import torch

from curation.editors.base import EditError
from curation.editors.instructions import HUE_NAMES, SHADES, SIZE_NAMES, object_path
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
OBJECT_WORDS = re.compile(rf"\b({'|'.join(SIZE_WORDS)}) ((?:(?:{'|'.join(SHADE_WORDS)}) )?(?:{'|'.join(COLOUR_WORDS)})) object\b")
"""An unnamed object's size and colour words in an instruction (describe_object: "large dark brown object ...")."""


def instruction_words(instruction: str) -> tuple[str, str]:
    """(size word, colour words) an addition's instruction names its object by ("very small", "light grey"), and
    ("?", "?") for an object named by its class (no colour or size word)."""
    found = OBJECT_WORDS.search(instruction.lower())
    return (found.group(1), found.group(2)) if found else ("?", "?")


@dataclasses.dataclass(frozen=True)
class WordPrior:
    """The least-squares colour and size of an object given its instruction's words: over a train split's added
    objects, the mean colour of each colour word's objects and the radius of the mean area of each size word's
    (a word the split never used gets the mean over every object)."""

    colours: dict[str, torch.Tensor]  # colour word -> (C,)
    radii: dict[str, float]  # size word -> pixels
    colour: torch.Tensor  # (C,) over every object
    radius: float

    @staticmethod
    def fit(objects: list[tuple[tuple[str, str], AddedObject]]) -> WordPrior:
        def mean_colour(objs: list[AddedObject]) -> torch.Tensor:
            return torch.stack([o.colour for o in objs]).mean(0)

        def mean_radius(objs: list[AddedObject]) -> float:
            return float(np.mean([o.radius**2 for o in objs]) ** 0.5)

        by_colour: dict[str, list[AddedObject]] = {}
        by_size: dict[str, list[AddedObject]] = {}
        for (size, colour), obj in objects:
            by_colour.setdefault(colour, []).append(obj)
            by_size.setdefault(size, []).append(obj)
        every = [obj for _, obj in objects]
        return WordPrior({w: mean_colour(o) for w, o in by_colour.items()},
                         {w: mean_radius(o) for w, o in by_size.items()}, mean_colour(every), mean_radius(every))

    def of(self, words: tuple[str, str]) -> tuple[torch.Tensor, float]:
        """(colour (C,), radius) for (size word, colour word)."""
        return self.colours.get(words[1], self.colour), self.radii.get(words[0], self.radius)


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
    """n paths (starts, ends), each end uniform over the frame, whose midpoints lie in the place of `place_of`."""
    cell = places(place_of, edges)  # (2,)
    starts, ends = [], []
    for _ in range(64):  # a corner place of 25 keeps about 1 draw in 160: 512 in 2 rounds
        a, b = torch.rand(2, 65536, 2, generator=gen)  # (2, draws, 2)
        keep = (places((a + b) / 2, edges) == cell).all(1)
        starts.append(a[keep])
        ends.append(b[keep])
        if sum(len(x) for x in starts) >= n:
            break
    return torch.cat(starts)[:n], torch.cat(ends)[:n]


Guess = tuple[torch.Tensor, torch.Tensor]
"""A mean over draws, (C, T, H, W), and each pixel's share of the draws that change it, (T, H, W)."""


def addition_guesses(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, named: NamedPath,
                     times: torch.Tensor, edges: tuple[float, ...], gen: torch.Generator,
                     trained: list[torch.Tensor] | None = None, draws: int = PATH_DRAWS,
                     worded: tuple[torch.Tensor, float] | None = None
                     ) -> tuple[dict[str, torch.Tensor], dict[str, Guess], dict[str, Guess]]:
    """The module docstring's addition guesses on the whole frame: those that know the object's path in these
    frames exactly; those drawn over the paths its instruction (`named`) cannot tell apart, placed along them
    at `times` (T,) (path_times); and the same draws averaged over the `trained` times of every window
    training reads (added to these frames: what a model that cannot tell its window learns to paint).
    `worded` (colour (C,), radius; WordPrior.of) adds the named path painted in what the words tell."""
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
    guesses = [("named place", place, obj.colour, obj.radius), ("named path", path, obj.colour, obj.radius)]
    if worded is not None:
        guesses.append(("named path, its words", path, *worded))
    drawn, averaged = {}, {}
    for name, (starts, ends), colour, radius in guesses:
        cover = disc_cover(starts, ends, radius, times, size)
        drawn[name] = painted(cover, colour), cover
        mean = torch.stack([disc_cover(starts, ends, radius, u, size) for u in trained]).mean(0) if trained else cover
        averaged[name] = painted(mean, colour), mean
    return exact, drawn, averaged
