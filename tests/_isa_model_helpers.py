"""Shared bits of the isa_model tests: the tiny config and a small synthetic edit-pair set."""

from __future__ import annotations

from pathlib import Path

from isa_model.config import Config, load_config
from isa_model.synthetic_pairs import build_pairs


def tiny(**model) -> Config:
    """The tiny config; model fields overridden (e.g. attention='dense' where ISA is not under test)."""
    return load_config("tiny", {"model": model} if model else None)


def pair_set(root: Path, clips: int = 4) -> Path:
    """Four clips (one held out) with their four edits each: 12 train and 4 val pairs."""
    build_pairs(root, clips=clips, frames=6, size=(40, 48), seed=1)
    return root
