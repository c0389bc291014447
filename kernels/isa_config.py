"""Validated settings for ISA: the algorithm's knobs and the kernels' tile shapes, in one place."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


class IsaInputError(ValueError):
    """Bad arguments to ISA (shapes, dtypes, alphas); the message is one line."""


def keep_count(alpha: float, n: int) -> int:
    """DESIGN 6: 'top alpha of n' keeps max(1, ceil(alpha * n)) items (none when n is 0)."""
    if n == 0:
        return 0
    return min(n, max(1, math.ceil(round(alpha * n, 9))))


@dataclass(frozen=True)
class IsaConfig:
    """The algorithm's parameters (DESIGN 6); validated at construction."""

    block: int = 64
    alpha_s: float = 0.125
    alpha_f: float = 0.5
    alpha_ns: float = 0.0625
    dropped_mean: bool = False
    mean_terms: bool = True  # False: plain block-sparse top-k (flat blocks drop their non-exact kept blocks)
    per_head_alpha_f: bool = False  # True: the same total of sharp blocks, shared among heads by pooled sharpness

    def __post_init__(self) -> None:
        if self.dropped_mean and not self.mean_terms:
            raise IsaInputError("dropped_mean=True needs mean_terms=True (both are 0-th order terms)")
        if self.block < 16 or self.block & (self.block - 1):
            raise IsaInputError(f"block must be a power of two >= 16, got {self.block}")
        for name in ("alpha_s", "alpha_f", "alpha_ns"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise IsaInputError(f"{name} must be in (0, 1], got {value}")


@dataclass(frozen=True)
class TileConfig:
    """Kernel launch shapes. A program owns a group of blocks (g * block rows) and walks one block of the
    other side per step. Sharp query blocks share one key list, so they are grouped (bigger MMA tiles);
    flat query blocks each have their own list and run one block per program.
    """

    # Sharp forward: 2 query blocks x 2 key blocks per step, 8 warps: 483 TFLOP/s on H200 against 456 for
    # 1 x 1 with 4 warps (docs/ISA.md, v10 sweep).
    fwd_sharp_gq: int = 2
    fwd_warps: int = 8
    fwd_stages: int = 3
    fwd_key_blocks: int = 2  # listed key blocks per step of the sharp forward loop (1 or 2)
    fwd_warp_specialize: bool = False  # Triton's automatic warp specialisation of the sharp forward loop
    fwd_fp8: bool = False  # calls without autograd: exact scores from e4m3 q and k (Triton kernel; isa_forward.py)
    # Hopper (compute capability 9.x, fp16/bf16, D 64 or 128, 64-token blocks): both forward launches run
    # the warp-specialised Gluon kernel of isa_forward_hopper.py instead, each with a ring of K/V slots.
    fwd_hopper: bool = True
    hopper_key_blocks: int = 2  # sharp: listed key blocks per ring slot (1 or 2; smem tiles are powers of 2)
    hopper_stages: int = 3  # sharp: ring slots; 619 against 496 TFLOP/s for 2 (H200, docs/ISA.md v17)
    hopper_flat_stages: int = 3  # flat: ring slots of one key block (two programs per SM)
    flat_side_stream: bool = True  # CUDA: the flat forward launch on a second stream, beside the sharp one
    # Backward: 4 stages for dq and dk/dv, fwd+bwd 78.7 -> 76.3 ms at 65k/H12 on H200 (docs/ISA.md, v15 sweep).
    dq_sharp_gq: int = 2
    dq_warps: int = 8
    dq_stages: int = 4
    dkdv_sharp_gk: int = 2
    dkdv_warps: int = 8
    dkdv_stages: int = 4
    # Hopper: both dk/dv launches run the warp-specialised Gluon kernel of isa_backward_hopper.py instead.
    dkdv_hopper: bool = True
    dkdv_hopper_stages: int = 4  # ring slots (Q and dO of one query block each), sharp launch (v19 sweep)
    dkdv_hopper_flat_stages: int = 2  # the launch over every key block: two programs per SM
    flat_warps: int = 4  # flat items (one query or key block, few list entries) in every pass
    flat_stages: int = 2
    mean_tile: int = 64
    mean_warps: int = 4
    mean_chunks: int = 0  # query-block chunks of the d(k_mean)/d(v_mean) grid; 0: enough to fill the GPU twice
    graph_plan: bool = True  # inference calls on CUDA replay the selection ops as one CUDA graph per shape
    graph_plan_train: bool = False  # training calls too, each copying the graph's plan for its backward
    graph_call_train: bool = False  # CUDA training calls replay their whole call, backward too (isa_call_graph.py)

    def __post_init__(self) -> None:
        for name in ("fwd_key_blocks", "hopper_key_blocks"):
            if getattr(self, name) not in (1, 2):
                raise IsaInputError(f"{name} must be 1 or 2, got {getattr(self, name)}")
        for name in ("hopper_stages", "hopper_flat_stages", "dkdv_hopper_stages", "dkdv_hopper_flat_stages"):
            if not 2 <= getattr(self, name) <= 4:
                raise IsaInputError(f"{name} must be in [2, 4], got {getattr(self, name)}")


SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int) -> None:
    """One-line errors for inputs the kernels cannot take. q is [B, H, N, D] like k and v, or holds the
    target tokens alone ([B, H, N - n_ctx, D], target-only queries over a context K/V cache)."""
    if q.dim() != 4 or k.dim() != 4 or k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[3] != k.shape[3]:
        raise IsaInputError(f"q, k, v shapes must be [B, H, N, D] (q may hold the target tokens only), got "
                            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in SUPPORTED_DTYPES:
        raise IsaInputError(f"q, k, v must share a dtype among fp16/bf16/fp32, got {q.dtype}, {k.dtype}, {v.dtype}")
    n, d = k.shape[2], q.shape[3]
    if not 0 <= n_ctx < n:
        raise IsaInputError(f"n_ctx must be in [0, N) with N={n}, got {n_ctx}")
    if q.shape[2] not in (n, n - n_ctx):
        raise IsaInputError(f"q must hold all N={n} tokens or the N - n_ctx={n - n_ctx} target tokens, "
                            f"got {q.shape[2]}")
    if d < 16 or d > 256 or d & (d - 1):
        raise IsaInputError(f"head dim must be a power of two in [16, 256], got {d}")
