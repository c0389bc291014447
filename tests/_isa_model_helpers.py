"""Shared bits of the isa_model tests: the tiny config, a small synthetic edit-pair set, a model flag taken
through the three CLIs, and the model's benchmark scripts loaded as modules."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import torch
from safetensors.torch import load_file

from isa_model import checkpoint as ck
from isa_model.__main__ import main
from isa_model.config import Config, load_config
from isa_model.model import LIVEditor
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


def through_the_clis(tmp_path: Path, flags: list[str], steps: int, instruction: str) -> tuple[Config, dict[str, torch.Tensor]]:
    """Train tiny (dense) with `flags` for `steps`, validate 2 pairs and edit a clip with `instruction` from its
    checkpoint, each CLI asserted to succeed; returns the checkpoint's config and weights."""
    root = pair_set(tmp_path / "pairs")
    run = tmp_path / "run"
    assert main(["train", "--config", "tiny", "--attention", "dense", *flags, "--data", str(root),
                 "--steps", str(steps), "--out", str(run)]) == 0
    ckpt = ck.latest(run / "checkpoints")
    assert ckpt is not None
    assert main(["validate", "--ckpt", str(run / "checkpoints"), "--out", str(tmp_path / "val"), "--steps", "1",
                 "--max-pairs", "2"]) == 0
    assert json.loads((tmp_path / "val" / "validation.json").read_text())["pairs"] == 2
    video = next((root / "clips").glob("*.mp4"))
    assert main(["edit", "--ckpt", str(run / "checkpoints"), "--video", str(video), "--instruction", instruction,
                 "--out", str(tmp_path / "e.mp4"), "--steps", "1"]) == 0
    return ck.read_config(ckpt)[0], load_file(ckpt / "model.safetensors")


def awake(model: LIVEditor) -> LIVEditor:
    """The model with its zero-initialised layers (adaLN, output, the place embedding) drawn at random, so its
    output depends on every input; a layer a test is about stays zero."""
    layers = [model.out, model.final_ada, *(block.ada for block in model.blocks)]
    for layer in layers + ([model.coords] if model.coords is not None else []):
        torch.nn.init.normal_(layer.weight, std=0.05)
    return model
