"""`isa_attention`: In-context Sparse Attention behind one autograd entry point (Triton or torch reference)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from kernels.isa_backward import launch_delta, launch_dkdv, launch_dq, launch_mean_kv
from kernels.isa_config import IsaConfig, IsaInputError, TileConfig, check_inputs
from kernels.isa_forward import launch_forward
from kernels.isa_pool import pool_qkv
from kernels.isa_reference import BlockLayout, IsaSelection, isa_reference, select_blocks
from kernels.isa_selection import Launch, key_launches, mean_rows, query_launches

BACKENDS = ("triton", "torch")


@dataclass(frozen=True)
class IsaPlan:
    """Everything the kernels need besides q, k, v: selection, pooled k/v, mean mask and work lists."""

    layout: BlockLayout
    selection: IsaSelection
    km: torch.Tensor  # pooled k, v in the inputs' dtype (MMA operands of the 0-th order terms)
    vm: torch.Tensor
    mask: torch.Tensor
    fwd: tuple[Launch, Launch | None]


def plan(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, cfg: IsaConfig, tiles: TileConfig
         ) -> IsaPlan:
    """Pool (Triton, one pass over q, k, v), select blocks and build the forward work lists."""
    layout = BlockLayout(q.shape[2] - n_ctx, n_ctx, cfg.block)
    qm, km, vm = pool_qkv(q, k, v, layout)
    sel = select_blocks(qm, km, layout, cfg)
    return IsaPlan(layout, sel, km.to(q.dtype), vm.to(q.dtype), mean_rows(sel),
                   query_launches(sel, tiles.fwd_sharp_gq))


def isa_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p: IsaPlan, tiles: TileConfig
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """O (q's layout and dtype) and base-2 LSE (fp32 [B * H, N])."""
    o = torch.empty_like(q)
    lse = torch.empty(q.shape[0] * q.shape[1], q.shape[2], device=q.device, dtype=torch.float32)
    sharp, flat = p.fwd
    launch_forward(q, k, v, o, lse, p.km, p.vm, p.mask, sharp, p.layout, tiles.fwd_warps, tiles.fwd_stages,
                   tiles.mean_tile)
    if flat is not None:
        launch_forward(q, k, v, o, lse, p.km, p.vm, p.mask, flat, p.layout, tiles.flat_warps, tiles.flat_stages,
                       tiles.mean_tile)
    return o, lse


def isa_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
                 do: torch.Tensor, p: IsaPlan, tiles: TileConfig
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dq, dk, dv with the plan's selection held constant."""
    do = do.contiguous()
    delta = launch_delta(o, do)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    sharp, flat = p.fwd if tiles.dq_sharp_gq == tiles.fwd_sharp_gq else query_launches(p.selection,
                                                                                      tiles.dq_sharp_gq)
    launch_dq(q, k, v, do, dq, lse, delta, p.km, p.vm, p.mask, sharp, p.layout, tiles.dq_warps, tiles.dq_stages,
              tiles.mean_tile)
    if flat is not None:
        launch_dq(q, k, v, do, dq, lse, delta, p.km, p.vm, p.mask, flat, p.layout, tiles.flat_warps,
                  tiles.flat_stages, tiles.mean_tile)
    dkm = dvm = None
    if any(w is not None and w.any_mean for w in p.fwd):
        dkm, dvm = launch_mean_kv(q, do, lse, delta, p.km, p.vm, p.mask, p.layout, tiles.mean_tile,
                                  tiles.mean_warps)
    sharp_keys, all_keys = key_launches(p.selection, tiles.dkdv_sharp_gk)
    launch_dkdv(q, k, v, do, dk, dv, lse, delta, None, None, sharp_keys, p.layout, tiles.dkdv_warps,
                tiles.dkdv_stages)
    launch_dkdv(q, k, v, do, dk, dv, lse, delta, dkm, dvm, all_keys, p.layout, tiles.flat_warps,
                tiles.flat_stages)
    return dq, dk, dv


class _IsaFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, n_ctx: int, cfg: IsaConfig, tiles: TileConfig):  # type: ignore[override]
        p = plan(q, k, v, n_ctx, cfg, tiles)
        o, lse = isa_forward(q, k, v, p, tiles)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.plan, ctx.tiles = p, tiles
        return o

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = isa_backward(q, k, v, o, lse, do, ctx.plan, ctx.tiles)
        return dq, dk, dv, None, None, None


def _contiguous(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The kernels' TMA descriptors view [B, H, N, D] as [B * H * N, D]; no copy for contiguous inputs."""
    return q.contiguous(), k.contiguous(), v.contiguous()


def isa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, *, block: int = 64,
                  alpha_s: float = 0.125, alpha_f: float = 0.5, alpha_ns: float = 0.0625,
                  dropped_mean: bool = False, backend: str = "triton", tiles: TileConfig | None = None
                  ) -> torch.Tensor:
    """ISA over q, k, v [B, H, N, D] whose last n_ctx tokens are the context (DESIGN 6); differentiable."""
    if backend not in BACKENDS:
        raise IsaInputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    check_inputs(q, k, v, n_ctx)
    cfg = IsaConfig(block, alpha_s, alpha_f, alpha_ns, dropped_mean)
    if backend == "torch":
        return isa_reference(q, k, v, n_ctx, cfg)
    q, k, v = _contiguous(q, k, v)
    return _IsaFunction.apply(q, k, v, n_ctx, cfg, tiles or TileConfig())
