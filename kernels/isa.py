"""`isa_attention` and `isa_plan`: In-context Sparse Attention behind one autograd entry point (Triton or
torch reference), with block selections that can be planned once and reused."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

import torch

from kernels.isa_backward import launch_delta, launch_dkdv, launch_dq, launch_mean_kv
from kernels.isa_blocks import BlockLayout, IsaSelection, layout_for, select_blocks
from kernels.isa_call_graph import CallGraph, Lease, Saved, SlotPool, capture
from kernels.isa_config import IsaConfig, IsaInputError, TileConfig, check_inputs
from kernels.isa_forward import fp8_scores, launch_forward
from kernels.isa_pool import pool_qkv
from kernels.isa_reference import attention_from_selection, isa_reference
from kernels.isa_selection import Launch, key_launches, mean_rows, pack_bits, query_launches

BACKENDS = ("triton", "torch")


@dataclass(frozen=True)
class IsaPlan:
    """Which key blocks each query block sees (selection), the 0-th order mask and the work lists: the forward's,
    and for a training call the backward's dk/dv lists too (built with the rest, so a graphed plan holds them).

    Built from pooled q and k; reusable for any q, k, v of the same shapes (a sampler's later denoising
    steps): the pooled k/v of the 0-th order terms are taken from each call's own k and v.
    """

    layout: BlockLayout
    config: IsaConfig
    shape: tuple[int, ...]  # (B, H, N_q, N, D) of the inputs it was planned for
    device: torch.device
    selection: IsaSelection
    mask: torch.Tensor  # 0-th order terms, bit-packed int32 [B * H * nbq, ceil(nb / 32)]
    fwd: tuple[Launch, Launch | None]
    dkdv: tuple[Launch, Launch] | None = None  # key_launches(selection, TileConfig.dkdv_sharp_gk)

    def check(self, q: torch.Tensor, k: torch.Tensor, n_ctx: int) -> None:
        """One-line error when this plan was made for other shapes, context length or device."""
        got = (*q.shape[:3], k.shape[2], q.shape[3])
        if got != self.shape or n_ctx != self.layout.n_ctx or q.device != self.device:
            raise IsaInputError(f"plan was made for (B, H, N_q, N, D)={self.shape}, n_ctx={self.layout.n_ctx} on "
                                f"{self.device}; got {got}, n_ctx={n_ctx} on {q.device}")


def _plan_from_pooled(qm: torch.Tensor, km: torch.Tensor, q: torch.Tensor, k: torch.Tensor, layout: BlockLayout,
                      cfg: IsaConfig, tiles: TileConfig, for_backward: bool = False) -> IsaPlan:
    sel = select_blocks(qm, km, layout, cfg)
    return IsaPlan(layout, cfg, (*q.shape[:3], k.shape[2], q.shape[3]), q.device, sel, pack_bits(mean_rows(sel)),
                   query_launches(sel, tiles.fwd_sharp_gq),
                   key_launches(sel, tiles.dkdv_sharp_gk) if for_backward else None)


def _copied(p: IsaPlan) -> IsaPlan:
    """The plan with its own copy of every tensor. A graph's outputs are overwritten by its next replay, and a
    training call's plan must live until its backward, after the calls of every later block."""
    def own(obj: Any) -> Any:
        return dataclasses.replace(obj, **{f.name: getattr(obj, f.name).clone() for f in dataclasses.fields(obj)
                                           if isinstance(getattr(obj, f.name), torch.Tensor)})
    sharp, flat = p.fwd
    copy: IsaPlan = own(p)
    return dataclasses.replace(copy, selection=own(p.selection), fwd=(own(sharp), None if flat is None else own(flat)),
                               dkdv=None if p.dkdv is None else (own(p.dkdv[0]), own(p.dkdv[1])))


def isa_plan(q: torch.Tensor, k: torch.Tensor, n_ctx: int, config: IsaConfig | None = None,
             tiles: TileConfig | None = None) -> IsaPlan:
    """Select blocks for q [B, H, N or N - n_ctx, D] over k [B, H, N, D] without attending: pass the result
    as `isa_attention(..., plan=plan)` to skip planning (same shapes only)."""
    check_inputs(q, k, k, n_ctx)
    cfg = config or IsaConfig()
    layout = layout_for(q, k, n_ctx, cfg.block)
    q, k = q.detach().contiguous(), k.detach().contiguous()
    qm, km, _ = pool_qkv(q, k, None, layout)
    return _plan_from_pooled(qm, km, q, k, layout, cfg, tiles or TileConfig())


def isa_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, km: torch.Tensor, vm: torch.Tensor,
                p: IsaPlan, tiles: TileConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """O (q's layout and dtype) and base-2 LSE (fp32 [B * H, N_q]); km, vm pooled in q's dtype. With
    tiles.fwd_fp8 the exact scores come from fp8 copies of q and k."""
    fp8 = fp8_scores(q, k) if tiles.fwd_fp8 else None
    o = torch.empty_like(q)
    lse = torch.empty(q.shape[0] * q.shape[1], q.shape[2], device=q.device, dtype=torch.float32)
    sharp, flat = p.fwd if tiles.fwd_sharp_gq == p.fwd[0].group else query_launches(p.selection, tiles.fwd_sharp_gq)
    if tiles.flat_side_stream and flat is not None and q.is_cuda:
        # The flat launch (memory-bound) fills the multiprocessors the sharp launch leaves idle in its last wave.
        main, side = torch.cuda.current_stream(q.device), _side_stream(q.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            launch_forward(q, k, v, o, lse, km, vm, p.mask, flat, p.layout, tiles, sharp=False, fp8=fp8)
        launch_forward(q, k, v, o, lse, km, vm, p.mask, sharp, p.layout, tiles, sharp=True, fp8=fp8)
        main.wait_stream(side)  # before anything on main reads o or lse or frees an input
    else:
        launch_forward(q, k, v, o, lse, km, vm, p.mask, sharp, p.layout, tiles, sharp=True, fp8=fp8)
        launch_forward(q, k, v, o, lse, km, vm, p.mask, flat, p.layout, tiles, sharp=False, fp8=fp8)
    return o, lse


_SIDE_STREAMS: dict[torch.device, torch.cuda.Stream] = {}


def _side_stream(device: torch.device) -> torch.cuda.Stream:
    """One extra stream per device for the flat forward launch (streams are not free to create per call)."""
    if device not in _SIDE_STREAMS:
        _SIDE_STREAMS[device] = torch.cuda.Stream(device)
    return _SIDE_STREAMS[device]


def isa_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
                 do: torch.Tensor, km: torch.Tensor, vm: torch.Tensor, p: IsaPlan, tiles: TileConfig
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dq, dk, dv with the plan's selection held constant."""
    do = do.contiguous()
    delta = launch_delta(o, do)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    sharp, flat = p.fwd if tiles.dq_sharp_gq == p.fwd[0].group else query_launches(p.selection, tiles.dq_sharp_gq)
    launch_dq(q, k, v, do, dq, lse, delta, km, vm, p.mask, sharp, p.layout, tiles.dq_warps, tiles.dq_stages,
              tiles.mean_tile)
    if flat is not None:
        launch_dq(q, k, v, do, dq, lse, delta, km, vm, p.mask, flat, p.layout, tiles.flat_warps,
                  tiles.flat_stages, tiles.mean_tile)
    dkm = dvm = None
    if any(w is not None and w.any_mean for w in p.fwd):
        dkm, dvm = launch_mean_kv(q, do, lse, delta, km, vm, p.mask, p.layout, tiles.mean_tile, tiles.mean_warps,
                                  tiles.mean_chunks)
    planned = p.dkdv if p.dkdv is not None and p.dkdv[0].group == tiles.dkdv_sharp_gk else None
    sharp_keys, all_keys = planned or key_launches(p.selection, tiles.dkdv_sharp_gk)
    launch_dkdv(q, k, v, do, dk, dv, lse, delta, None, None, sharp_keys, p.layout, tiles, sharp=True)
    launch_dkdv(q, k, v, do, dk, dv, lse, delta, dkm, dvm, all_keys, p.layout, tiles, sharp=False)
    return dq, dk, dv


_PlanKey = tuple[tuple[int, ...], tuple[int, ...], torch.dtype, torch.device, BlockLayout, IsaConfig, int, int]
_PlanGraph = tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.cuda.CUDAGraph, IsaPlan]  # pooled, graph, plan
_PLAN_GRAPHS: dict[_PlanKey, _PlanGraph | None] = {}  # per (shapes, dtype, device, layout, config, groups); None: failed


def _graphed_plan(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, cfg: IsaConfig,
                  tiles: TileConfig, for_backward: bool) -> tuple[IsaPlan, torch.Tensor, torch.Tensor] | None:
    """Pool, then replay the ~60 selection and work-list ops (~90 with the backward's) as one captured CUDA
    graph (they launch at host speed otherwise). The graph's outputs are overwritten by the next call of the
    same shapes: an inference call consumes them at once, a training call (for_backward) gets its own copy of
    the plan and of its pooled k, v. None: capture failed once for this key; plan eagerly."""
    key: _PlanKey = (tuple(q.shape), tuple(k.shape), q.dtype, q.device, layout, cfg, tiles.fwd_sharp_gq,
                     tiles.dkdv_sharp_gk if for_backward else 0)
    if key not in _PLAN_GRAPHS:
        pooled = pool_qkv(q, k, v, layout)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up outside the capture, as torch's graph docs ask
                _plan_from_pooled(pooled[0], pooled[1], q, k, layout, cfg, tiles, for_backward)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                p = _plan_from_pooled(pooled[0], pooled[1], q, k, layout, cfg, tiles, for_backward)
            _PLAN_GRAPHS[key] = (pooled, graph, p)
        except RuntimeError:
            _PLAN_GRAPHS[key] = None
    entry = _PLAN_GRAPHS[key]
    if entry is None:
        return None
    pooled, graph, p = entry
    if not for_backward:
        pool_qkv(q, k, v, layout, out=pooled)
        graph.replay()
        return p, pooled[1], pooled[2]
    qm, km, vm = pool_qkv(q, k, v, layout)  # this call's own, kept for its backward
    pooled[0].copy_(qm)
    pooled[1].copy_(km)  # the graph reads pooled q and k only
    graph.replay()
    return _copied(p), km, vm


def _pooled_plan(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, cfg: IsaConfig, tiles: TileConfig,
                 p: IsaPlan | None, graphed: bool, for_backward: bool = False
                 ) -> tuple[IsaPlan, torch.Tensor, torch.Tensor]:
    """The plan (given, graphed or eager; with the dk/dv work lists when for_backward) and pooled k, v in q's
    dtype."""
    if p is not None:
        _, km, vm = pool_qkv(None, k, v, p.layout)
        return p, km.to(q.dtype), vm.to(q.dtype)
    layout = layout_for(q, k, n_ctx, cfg.block)
    found = _graphed_plan(q, k, v, layout, cfg, tiles, for_backward) if graphed else None
    if found is None:
        qm, km, vm = pool_qkv(q, k, v, layout)
        found = _plan_from_pooled(qm, km, q, k, layout, cfg, tiles, for_backward), km, vm
    p, km, vm = found
    return p, km.to(q.dtype), vm.to(q.dtype)


_CALL_GRAPHS: SlotPool[CallGraph] = SlotPool()  # whole training calls, per (shapes, dtype, device, n_ctx, configs)


def _training_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, cfg: IsaConfig,
                      tiles: TileConfig, p: IsaPlan | None, graphed: bool) -> tuple[torch.Tensor, Saved]:
    """A training call's O and what its backward reads: (O, LSE, pooled k, pooled v, plan)."""
    p, km, vm = _pooled_plan(q, k, v, n_ctx, cfg, tiles, p, graphed, for_backward=True)
    o, lse = isa_forward(q, k, v, km, vm, p, tiles)
    return o, (o, lse, km, vm, p)


def _call_graph(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, cfg: IsaConfig,
                tiles: TileConfig) -> Lease[CallGraph] | None:
    """A lease on a captured whole training call of these shapes (tiles.graph_call_train), or None: run eagerly."""
    def forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, Saved]:
        return _training_forward(q, k, v, n_ctx, cfg, tiles, None, graphed=False)

    def backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, saved: Saved, do: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        o, lse, km, vm, p = saved
        return isa_backward(q, k, v, o, lse, do, km, vm, p, tiles)

    key = (tuple(q.shape), tuple(k.shape), q.dtype, q.device, n_ctx, cfg, tiles)
    return _CALL_GRAPHS.lease(key, lambda: capture(q, k, v, forward, backward))


class _IsaFunction(torch.autograd.Function):
    # ctx is Any: torch passes a different context type to forward and backward, and the plan rides on it.
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, cfg: IsaConfig,
                tiles: TileConfig, p: IsaPlan | None) -> torch.Tensor:
        lease = _call_graph(q, k, v, n_ctx, cfg, tiles) if tiles.graph_call_train and p is None and q.is_cuda \
            else None
        ctx.lease = lease  # while ctx holds it, the slot's buffers keep what the backward reads
        if lease is not None:
            return lease.slot.forward(q, k, v)
        o, (_, lse, km, vm, plan) = _training_forward(q, k, v, n_ctx, cfg, tiles, p,
                                                      graphed=tiles.graph_plan_train and q.is_cuda)
        ctx.save_for_backward(q, k, v, o, lse, km, vm)
        ctx.plan, ctx.tiles = plan, tiles
        return o

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None, None, None, None]:
        if ctx.lease is False:
            raise IsaInputError("a graphed ISA training call (graph_call_train) takes one backward; "
                                "turn graph_call_train off to backpropagate through it twice")
        if ctx.lease is not None:
            dq, dk, dv = ctx.lease.slot.backward(do)
            ctx.lease = False  # spent: the slot is free for the next step's call (the graph may outlive this)
        else:
            q, k, v, o, lse, km, vm = ctx.saved_tensors
            dq, dk, dv = isa_backward(q, k, v, o, lse, do, km, vm, ctx.plan, ctx.tiles)
        return dq, dk, dv, None, None, None, None


def _config(config: IsaConfig | None, options: dict[str, Any], plan: IsaPlan | None) -> IsaConfig:
    """One IsaConfig from `config`, the keyword options or the plan; two that disagree are an error."""
    given = {name: value for name, value in options.items() if value is not None}
    if config is not None and given:
        raise IsaInputError(f"pass either config or the options {sorted(given)}, not both")
    cfg = config or IsaConfig(**given)
    if plan is None:
        return cfg
    if (config is not None or given) and cfg != plan.config:
        raise IsaInputError(f"plan was made with {plan.config}, not {cfg}")
    return plan.config


def isa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, *,
                  config: IsaConfig | None = None, plan: IsaPlan | None = None, block: int | None = None,
                  alpha_s: float | None = None, alpha_f: float | None = None, alpha_ns: float | None = None,
                  dropped_mean: bool | None = None, backend: str = "triton", tiles: TileConfig | None = None
                  ) -> torch.Tensor:
    """ISA (DESIGN 6), differentiable. k, v [B, H, N, D] whose last n_ctx tokens are the context; q is
    [B, H, N, D] or the target tokens alone [B, H, N - n_ctx, D] (context K/V cache). `plan` (from
    `isa_plan` on inputs of these shapes) skips selection; its config then applies."""
    if backend not in BACKENDS:
        raise IsaInputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    check_inputs(q, k, v, n_ctx)
    if plan is not None:
        plan.check(q, k, n_ctx)
    cfg = _config(config, {"block": block, "alpha_s": alpha_s, "alpha_f": alpha_f, "alpha_ns": alpha_ns,
                           "dropped_mean": dropped_mean}, plan)
    if backend == "torch":
        return (isa_reference(q, k, v, n_ctx, cfg) if plan is None
                else attention_from_selection(q, k, v, plan.selection).to(q.dtype))
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()  # TMA views [B * H * N, D]: no copy if contiguous
    tiles = tiles or TileConfig()
    training = torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v))
    if tiles.fwd_fp8 and (training or q.shape[-1] < 32):
        raise IsaInputError("fp8 scores (fwd_fp8) are for calls without autograd and head dims of 32 or more "
                            f"(the backward recomputes in the inputs' dtype); got head dim {q.shape[-1]}"
                            f"{', a call that needs gradients' if training else ''}")
    if training:
        return cast(torch.Tensor, _IsaFunction.apply(q, k, v, n_ctx, cfg, tiles, plan))  # apply is untyped (Any)
    p, km, vm = _pooled_plan(q, k, v, n_ctx, cfg, tiles, plan, graphed=tiles.graph_plan and q.is_cuda)
    return isa_forward(q, k, v, km, vm, p, tiles)[0]
