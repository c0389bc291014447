"""Shared bits of the isa_model tests: the tiny config, a small synthetic edit-pair set and the model's
benchmark scripts loaded as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from isa_model.config import Config, load_config
from isa_model.synthetic_pairs import build_pairs


def tiny(**model) -> Config:
    """The tiny config; model fields overridden (e.g. attention='dense' where ISA is not under test)."""
    return load_config("tiny", {"model": model} if model else None)


def pair_set(root: Path, clips: int = 4) -> Path:
    """Four clips (one held out) with their four edits each: 12 train and 4 val pairs."""
    build_pairs(root, clips=clips, frames=6, size=(40, 48), seed=1)
    return root


def benchmark_tool(name: str) -> ModuleType:
    """benchmarks/<name>.py as a module (the scripts are not a package), to test their functions directly."""
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as a dataclass in it looks its module up there
    spec.loader.exec_module(module)
    return module
