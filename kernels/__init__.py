"""Attention kernels: In-context Sparse Attention (ISA) in Triton with a PyTorch reference."""
from kernels.isa import isa_attention
from kernels.isa_config import IsaConfig, IsaInputError, TileConfig
from kernels.isa_reference import dense_attention_f64, isa_reference

__all__ = ["isa_attention", "isa_reference", "dense_attention_f64", "IsaConfig", "IsaInputError", "TileConfig"]
