"""Checkpoints: weights (model and EMA) as safetensors, the rest of the training state as a torch file that
loads with `weights_only=True`, the config as JSON, the `edit_pairs` snapshot the run reads as JSON. Written
to a temporary folder and renamed, so a crash never leaves a half-written checkpoint under its final name.

A checkpoint is read defensively: its config is bounded (`config.py`), the tensor shapes in each safetensors
header must be those the config implies before a tensor is read, and `state.pt` must be a torch archive
whose entries unpack to no more than an optimiser state of the weights can. Anything else is one
`CheckpointError` line.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from isa_model.config import Config, ConfigError, config_from_dict
from manifests.errors import ManifestError, first_line
from manifests.snapshot import Snapshot

PREFIX = "step_"
SNAPSHOT_FILE = "snapshot.json"
MAX_CONFIG_BYTES = 1 << 20  # a config.json is about 1 KB
STATE_BYTES_PER_PARAM = 10  # AdamW keeps two fp32 moments (8 bytes) per parameter; 2 spare
STATE_SLACK_BYTES = 8 << 20  # step counters, every rank's RNG state (5 KB each), the pickle itself


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing, truncated, tampered or foreign files), in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def save_checkpoint(folder: Path, step: int, config: Config, model: torch.nn.Module, ema: dict[str, torch.Tensor],
                    state: dict[str, Any], provenance: dict[str, str], snapshot: Snapshot) -> Path:
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
    (tmp / SNAPSHOT_FILE).write_text(json.dumps(snapshot.to_json()))
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
    path = ckpt / "config.json"
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise CheckpointError(f"checkpoint {ckpt.name}: config.json is over {MAX_CONFIG_BYTES} bytes")
        meta = json.loads(path.read_text())
        return config_from_dict(meta["config"]), meta
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {ckpt.name}: config.json: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # ValueError: not JSON or UTF-8
        raise CheckpointError(f"{ckpt}: not a LIVEditor checkpoint ({type(exc).__name__})") from None


def read_snapshot(ckpt: Path) -> Snapshot | None:
    """The `edit_pairs` snapshot the run trained on; None for a checkpoint written before runs pinned one."""
    path = ckpt / SNAPSHOT_FILE
    if not path.is_file():
        return None
    try:
        return Snapshot.from_json(path.read_text())
    except (OSError, ValueError, ManifestError) as exc:
        raise CheckpointError(f"checkpoint {ckpt.name}: {SNAPSHOT_FILE}: {exc}") from None


def check_same_model(ckpt_config: Config, wanted: Config, ckpt: Path) -> None:
    """One-line error when a checkpoint's model differs from the config asked for."""
    a, b = ckpt_config.model.__dict__, wanted.model.__dict__
    shape_keys = ("frames", "height", "width", "channels", "patch", "dim", "depth", "heads", "mlp_ratio",
                  "text_model", "text_width", "text_layers", "text_heads", "text_context")
    differ = [k for k in shape_keys if a[k] != b[k]]
    if differ:
        raise ConfigError(f"checkpoint {ckpt.name} was trained with config {ckpt_config.name!r}, not "
                          f"{wanted.name!r} (model differs in {', '.join(differ)})")


def weight_shapes(ckpt: Path, which: str) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from `which`.safetensors' header alone (safetensors checks the file holds their bytes)."""
    path = ckpt / f"{which}.safetensors"
    try:
        with safe_open(path, framework="pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"checkpoint {ckpt.name}: {path.name}: {first_line(exc)}") from None


def check_shapes(ckpt: Path, which: str, expected: dict[str, tuple[int, ...]]) -> None:
    """One line naming the first tensor whose name or shape in the header differs from `expected`."""
    found = weight_shapes(ckpt, which)
    for name, shape in expected.items():
        if name not in found:
            raise CheckpointError(f"checkpoint {ckpt.name}: {which}.safetensors has no tensor {name} "
                                  f"{list(shape)}, which its config implies")
        if found[name] != shape:
            raise CheckpointError(f"checkpoint {ckpt.name}: {which}.safetensors has {name} of shape "
                                  f"{list(found[name])}, its config implies {list(shape)}")
    extra = [name for name in found if name not in expected]
    if extra:
        raise CheckpointError(f"checkpoint {ckpt.name}: {which}.safetensors holds {len(extra)} tensor(s) its config "
                              f"has no place for, e.g. {extra[0][:200]!r}")


def shapes_of(tensors: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in tensors.items()}


def load_weights(ckpt: Path, which: str, expected: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """`which` (model or ema) weights, read only once the header's shapes are `expected`."""
    check_shapes(ckpt, which, expected)
    try:
        return load_file(ckpt / f"{which}.safetensors")
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"checkpoint {ckpt.name}: {which}.safetensors: {first_line(exc)}") from None


def load_state(ckpt: Path) -> dict[str, Any]:
    """The training state, refused unread when `state.pt` is not a torch archive or would unpack to more than
    an optimiser state of the checkpoint's weights takes (a small file can inflate to gigabytes)."""
    path = ckpt / "state.pt"
    params = sum(math.prod(shape) for shape in weight_shapes(ckpt, "model").values())
    limit = STATE_BYTES_PER_PARAM * params + STATE_SLACK_BYTES
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {ckpt.name}: state.pt is not a torch archive ({first_line(exc)})") from None
    if not any(e.filename.endswith("/data.pkl") for e in entries):
        raise CheckpointError(f"checkpoint {ckpt.name}: state.pt is not a torch archive (no data.pkl)")
    unpacked = sum(e.file_size for e in entries)
    if unpacked > limit:
        raise CheckpointError(f"checkpoint {ckpt.name}: state.pt unpacks to {unpacked:,} bytes, more than the "
                              f"{limit:,} the optimiser state of {params:,} parameters needs")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's first line is advice to load unsafely; the next says why
        why = [line for line in str(exc).splitlines()[1:] if line.strip()]
        raise CheckpointError(f"checkpoint {ckpt.name}: state.pt holds what a weights-only load refuses "
                              f"({why[0][:300] if why else first_line(exc)})") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {ckpt.name}: state.pt does not load ({first_line(exc)})") from None
