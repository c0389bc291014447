"""Numeric precision of a model wrapper's forward passes: fp32, or bf16 autocast on CUDA.

bf16 keeps fp32's range, so SAM's and CLIP's attention logits cannot overflow the way fp16's can; the
matrix units run it at about 16x their fp32 rate on an H100/H200. On a CPU the setting is ignored
(autocast there is slower than fp32), so one config serves both.
"""

from __future__ import annotations

import contextlib
from typing import Literal

Precision = Literal["fp32", "bf16"]


def autocast(device: str, precision: Precision) -> contextlib.AbstractContextManager:
    """The context a forward pass runs under: bf16 autocast on a CUDA device, else nothing."""
    import torch

    kind = torch.device(device).type
    if precision == "fp32" or kind != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type=kind, dtype=torch.bfloat16)
