"""Checkpoints: weights (model and EMA) as safetensors, the rest of the training state as a torch file that
loads with `weights_only=True`, the config as JSON. Written to a temporary folder and renamed, so a crash
never leaves a half-written checkpoint under its final name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from isa_model.config import Config, ConfigError, config_from_dict

PREFIX = "step_"


def save_checkpoint(folder: Path, step: int, config: Config, model: torch.nn.Module, ema: dict[str, torch.Tensor],
                    state: dict[str, Any], provenance: dict[str, str]) -> Path:
    """Write `folder/step_XXXXXXX` atomically and return it."""
    final = folder / f"{PREFIX}{step:07d}"
    tmp = folder / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(weights, tmp / "model.safetensors", metadata=provenance)
    save_file({k: v.contiguous().cpu() for k, v in ema.items()}, tmp / "ema.safetensors", metadata=provenance)
    torch.save(state, tmp / "state.pt")
    (tmp / "config.json").write_text(json.dumps({"config": config.to_dict(), "step": step,
                                                  "provenance": provenance}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def latest(folder: Path) -> Path | None:
    """The newest complete checkpoint under `folder`, or the folder itself if it is one."""
    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    done = sorted(p for p in folder.glob(f"{PREFIX}*") if (p / "config.json").is_file())
    return done[-1] if done else None


def read_config(ckpt: Path) -> tuple[Config, dict[str, Any]]:
    """The config a checkpoint was trained with, and its metadata (step, provenance)."""
    try:
        meta = json.loads((ckpt / "config.json").read_text())
        return config_from_dict(meta["config"]), meta
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{ckpt}: not a LIVEditor checkpoint ({type(exc).__name__})") from None


def check_same_model(ckpt_config: Config, wanted: Config, ckpt: Path) -> None:
    """One-line error when a checkpoint's model differs from the config asked for."""
    a, b = ckpt_config.model.__dict__, wanted.model.__dict__
    shape_keys = ("frames", "height", "width", "channels", "patch", "dim", "depth", "heads", "mlp_ratio",
                  "text_model", "text_width", "text_layers", "text_heads", "text_context")
    differ = [k for k in shape_keys if a[k] != b[k]]
    if differ:
        raise ConfigError(f"checkpoint {ckpt.name} was trained with config {ckpt_config.name!r}, not "
                          f"{wanted.name!r} (model differs in {', '.join(differ)})")


def load_weights(ckpt: Path, which: str = "model") -> dict[str, torch.Tensor]:
    return load_file(ckpt / f"{which}.safetensors")


def load_state(ckpt: Path) -> dict[str, Any]:
    return torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
