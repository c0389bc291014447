"""Deterministic train/val/test split by source video.

A video's split is a pure function of (salt, video id): SHA-256 of both, read as a number in [0, 1),
cut at the configured ratios. So every clip and pair of one video lands in the same split (no
source video in two splits), any worker in any order gets the same answer without coordination,
and adding videos never moves the old ones.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SPLITS = ("train", "val", "test")


class SplitError(ValueError):
    """A bad split config or video id; the message is one line."""


@dataclass(frozen=True)
class SplitConfig:
    train: float = 0.9
    val: float = 0.05
    test: float = 0.05
    salt: str = "liveditor-split-v1"  # change it to draw a different (still deterministic) split

    def __post_init__(self) -> None:
        ratios = (self.train, self.val, self.test)
        if any(isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r < 0 for r in ratios):
            raise SplitError(f"split ratios must be finite numbers >= 0, got train={self.train}, "
                             f"val={self.val}, test={self.test}")
        if not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
            raise SplitError(f"split ratios must sum to 1, got {sum(ratios):.6g} "
                             f"(train={self.train}, val={self.val}, test={self.test})")
        if not isinstance(self.salt, str) or not self.salt:
            raise SplitError("split salt must be a non-empty string")

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> SplitConfig:
        unknown = sorted(set(values) - {"train", "val", "test", "salt"})
        if unknown:
            raise SplitError(f"unknown split setting(s) {', '.join(unknown)}; known: train, val, test, salt")
        return cls(**values)  # type: ignore[arg-type]


def unit_interval(video_id: str, salt: str) -> float:
    """A uniform number in [0, 1) from SHA-256 of salt and video id (53 bits, exact in a float)."""
    digest = hashlib.sha256(f"{salt}\0{video_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)


def assign_split(video_id: str, cfg: SplitConfig) -> str:
    """The split of every clip and pair of source video `video_id`."""
    if not isinstance(video_id, str) or not video_id:
        raise SplitError(f"video id must be a non-empty string, got {video_id!r}")
    u = unit_interval(video_id, cfg.salt)
    if u < cfg.train:
        return "train"
    return "val" if u < cfg.train + cfg.val else ("test" if cfg.test > 0 else "val")


def assign_splits(video_ids: Iterable[str], cfg: SplitConfig) -> dict[str, str]:
    """{video id: split} for many videos (order and duplicates do not matter)."""
    return {v: assign_split(v, cfg) for v in video_ids}
