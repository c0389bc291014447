"""Attention kernels: In-context Sparse Attention (ISA) in Triton with a PyTorch reference.

Without a GPU the Triton kernels run in Triton's interpreter (set before any kernel is defined);
it is exact for fp32/fp16 and slow, meant for tests at small shapes.
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from kernels.isa import IsaPlan, isa_attention, isa_plan
from kernels.isa_config import IsaConfig, IsaInputError, TileConfig
from kernels.isa_reference import dense_attention_f64, isa_reference

__all__ = ["isa_attention", "isa_plan", "IsaPlan", "isa_reference", "dense_attention_f64", "IsaConfig", "IsaInputError",
           "TileConfig"]
