"""Scoring shot boundaries against a reference, as the TransNetV2 and ClipShots evaluations do.

A boundary is a half-open frame range: a hard cut at c is the empty range [c, c), a gradual
transition is [start, end). A prediction matches a reference boundary when the two ranges overlap
once widened by `tol` frames on each side; matching is one-to-one, closest centres first.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.shots.base import ShotDetection

Boundary = tuple[int, int]


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def detection_boundaries(det: ShotDetection) -> list[Boundary]:
    return sorted([(c, c) for c in det.cuts] + [(s, e) for s, e in det.transitions])


def truth_boundaries(truth: dict, kinds: tuple[str, ...] = ("cut", "dissolve", "fade")) -> list[Boundary]:
    """Reference boundaries of a corpus truth file (see curation.corpus.truth)."""
    return sorted((t["start"], t["end"]) for t in truth["transitions"] if t["kind"] in kinds)


def match(pred: list[Boundary], ref: list[Boundary], tol: int) -> list[tuple[int, int]]:
    """One-to-one (pred index, ref index) pairs whose ranges overlap within tol, closest centres first."""
    pairs = []
    for i, (a, b) in enumerate(pred):
        for j, (s, e) in enumerate(ref):
            if a <= e + tol and s <= b + tol:
                pairs.append((abs((a + b) - (s + e)), i, j))
    used_p, used_r, out = set(), set(), []
    for _, i, j in sorted(pairs):
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            out.append((i, j))
    return out


def score(pred: list[Boundary], ref: list[Boundary], tol: int = 2) -> Score:
    tp = len(match(pred, ref, tol))
    return Score(tp, len(pred) - tp, len(ref) - tp)
