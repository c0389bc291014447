"""Triton ISA backward (FlashAttention-style, selections constant).

Three kernels: dq per query-block item (exact tiles, then 0-th order tiles through k_mean); dk/dv per
key-block item over the query blocks that use it exactly; and d(k_mean), d(v_mean) per tile of pooled
blocks over the query blocks that use them as 0-th order terms. The pooled gradients reach tokens as
dk_i += dkm_j / n_j inside the dk/dv kernel's second launch.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels import isa_forward_hopper
from kernels.isa_backward_hopper import launch_dkdv_hopper
from kernels.isa_blocks import BlockLayout
from kernels.isa_config import TileConfig
from kernels.isa_forward import block_descriptor, geometry_args, softmax_scales
from kernels.isa_selection import Launch
from kernels.isa_tiles import (
    block_span,
    exact_scores,
    grad_scores,
    mask_partial,
    mask_tile,
    mean_scores,
    owned_group,
    pooled_tile,
)


@triton.jit
def _isa_dq_kernel(Q, k_desc, v_desc, DO, DQ, LSE, DELTA, KM, VM, MASK,
                   OWN, BH, OFF, CNT, LST, MROW,
                   H, n_tgt, n_tot, n_q, nbt, nb, nbq, qk_scale, sm_scale,
                   D: tl.constexpr, BLK: tl.constexpr, GQ: tl.constexpr,
                   BP: tl.constexpr, HAS_MEAN: tl.constexpr):
    item = tl.program_id(0)
    bh, row0, qrows, qvalid, q_offs, off, cnt = owned_group(OWN, BH, OFF, CNT, item, n_q, n_tgt, n_tot, nbt,
                                                            D, GQ, BLK)
    row0k = bh * n_tot
    q = tl.load(Q + q_offs, mask=qvalid[:, None], other=0.0)
    do = tl.load(DO + q_offs, mask=qvalid[:, None], other=0.0)
    lse = tl.load(LSE + row0 + qrows, mask=qvalid, other=0.0)
    delta = tl.load(DELTA + row0 + qrows, mask=qvalid, other=0.0)
    dq = tl.zeros([GQ * BLK, D], tl.float32)
    for t in range(0, cnt):
        s, k, v = exact_scores(q, k_desc, v_desc, LST, off + t, row0k, n_tgt, n_tot, nbt, BLK)
        p, ds = grad_scores(s, qk_scale, lse, delta, do, v)
        dq = tl.dot(ds.to(k.dtype), k, dq)
    if HAS_MEAN:
        mrow = tl.load(MROW + item)
        if mrow >= 0:
            pooled = bh.to(tl.int64) * nb * D
            for t in range(0, tl.cdiv(nb, BP)):
                use = mask_tile(MASK, mrow, t, nb, BP)
                if tl.max(use.to(tl.int32), 0) > 0:
                    s, km, vm = mean_scores(q, KM, VM, use, pooled, t, nb, n_tgt, n_tot, nbt, qk_scale, D, BP, BLK)
                    p, ds = grad_scores(s, 1.0, lse, delta, do, vm)
                    dq = tl.dot(ds.to(km.dtype), km, dq)
    tl.store(DQ + q_offs, (dq * sm_scale).to(DQ.dtype.element_ty), mask=qvalid[:, None])


@triton.jit
def _isa_dkdv_kernel(q_desc, K, V, do_desc, DK, DV, LSE, DELTA, DKM, DVM,
                     OWN, BH, OFF, CNT, LST, ACC,
                     H, n_tgt, n_tot, n_q, nbt, nb, nbq, qk_scale, sm_scale,
                     D: tl.constexpr, BLK: tl.constexpr, GK: tl.constexpr, ADD_MEAN: tl.constexpr):
    item = tl.program_id(0)
    bh, row0k, krows, kvalid, k_offs, off, cnt = owned_group(OWN, BH, OFF, CNT, item, n_tot, n_tgt, n_tot, nbt,
                                                             D, GK, BLK)
    row0 = bh * n_q
    k = tl.load(K + k_offs, mask=kvalid[:, None], other=0.0)
    v = tl.load(V + k_offs, mask=kvalid[:, None], other=0.0)
    dk = tl.zeros([GK * BLK, D], tl.float32)
    dv = tl.zeros([GK * BLK, D], tl.float32)
    for t in range(0, cnt):
        start, end = block_span(tl.load(LST + off + t), n_tgt, n_tot, nbt, BLK)
        qvalid = tl.arange(0, BLK) < end - start
        q = q_desc.load([row0 + start, 0])
        do = do_desc.load([row0 + start, 0])
        rows = row0 + start + tl.arange(0, BLK)
        lse = tl.load(LSE + rows, mask=qvalid, other=0.0)
        delta = tl.load(DELTA + rows, mask=qvalid, other=0.0)
        s_t = mask_partial(tl.dot(k, tl.trans(q)), start, end, BLK)  # unscaled; scale fused into the exp2
        p_t = tl.math.exp2(s_t * qk_scale - lse[None, :])
        dv = tl.dot(p_t.to(do.dtype), do, dv)
        dp_t = tl.dot(v, tl.trans(do))
        dk = tl.dot((p_t * (dp_t - delta[None, :])).to(q.dtype), q, dk)
    dk = dk * sm_scale
    if ADD_MEAN:
        blk = tl.load(OWN + item * GK + tl.arange(0, GK * BLK) // BLK)
        start, end = block_span(blk, n_tgt, n_tot, nbt, BLK)
        inv_n = 1.0 / tl.maximum(end - start, 1).to(tl.float32)
        pooled = (bh.to(tl.int64) * nb + tl.maximum(blk, 0)) * D
        pooled_offs = pooled[:, None] + tl.arange(0, D)[None, :]
        dk += tl.load(DKM + pooled_offs, mask=kvalid[:, None], other=0.0) * inv_n[:, None]
        dv += tl.load(DVM + pooled_offs, mask=kvalid[:, None], other=0.0) * inv_n[:, None]
    if tl.load(ACC + item) != 0:
        dk += tl.load(DK + k_offs, mask=kvalid[:, None], other=0.0).to(tl.float32)
        dv += tl.load(DV + k_offs, mask=kvalid[:, None], other=0.0).to(tl.float32)
    tl.store(DK + k_offs, dk.to(DK.dtype.element_ty), mask=kvalid[:, None])
    tl.store(DV + k_offs, dv.to(DV.dtype.element_ty), mask=kvalid[:, None])


@triton.jit
def _isa_mean_kv_kernel(q_desc, do_desc, LSE, DELTA, KM, VM, DKM, DVM, MASK,
                        H, n_tgt, n_tot, n_q, nbt, nb, nbq, qk_scale, sm_scale, chunk,
                        D: tl.constexpr, BLK: tl.constexpr, BP: tl.constexpr):
    """Program (bh, t, c): pooled tile t of head bh over query blocks [c * chunk, (c + 1) * chunk); writes its
    partial d(k_mean), d(v_mean) to slice c of DKM/DVM ([n_chunks, B * H, nb, D], summed by the caller)."""
    bh = tl.program_id(0)
    t = tl.program_id(1)
    c = tl.program_id(2)
    row0 = bh * n_q
    pooled = bh.to(tl.int64) * nb * D
    d = tl.arange(0, D)
    km, vm, log2n = pooled_tile(KM, VM, pooled, t, nb, n_tgt, n_tot, nbt, q_desc.dtype, D, BP, BLK)
    dkm = tl.zeros([BP, D], tl.float32)
    dvm = tl.zeros([BP, D], tl.float32)
    for i in range(c * chunk, tl.minimum(c * chunk + chunk, nbq)):
        use = mask_tile(MASK, bh * nbq + i, t, nb, BP)
        if tl.max(use.to(tl.int32), 0) > 0:
            start, end = block_span(i, n_tgt, n_tot, nbt, BLK)
            rows = start + tl.arange(0, BLK)
            qvalid = rows < end
            q = q_desc.load([row0 + start, 0])
            do = do_desc.load([row0 + start, 0])
            lse = tl.load(LSE + row0 + rows, mask=qvalid, other=0.0)
            delta = tl.load(DELTA + row0 + rows, mask=qvalid, other=0.0)
            s_t = tl.dot(km, tl.trans(q)) * qk_scale + log2n[:, None]
            s_t = tl.where(use[:, None] & qvalid[None, :], s_t, float("-inf"))
            p_t = tl.math.exp2(s_t - lse[None, :])
            dvm = tl.dot(p_t.to(do.dtype), do, dvm)
            dp_t = tl.dot(vm, tl.trans(do))
            dkm = tl.dot((p_t * (dp_t - delta[None, :])).to(q.dtype), q, dkm)
    j = t * BP + tl.arange(0, BP)
    offs = (c * tl.num_programs(0)).to(tl.int64) * nb * D + pooled + j[:, None].to(tl.int64) * D + d[None, :]
    tl.store(DKM + offs, dkm * sm_scale, mask=(j < nb)[:, None])
    tl.store(DVM + offs, dvm, mask=(j < nb)[:, None])


@triton.jit
def _delta_kernel(O, DO, DELTA, n_rows, D: tl.constexpr, R: tl.constexpr):  # noqa: E741  # O: the output, beside Q, K, V
    rows = tl.program_id(0) * R + tl.arange(0, R)
    offs = rows[:, None].to(tl.int64) * D + tl.arange(0, D)[None, :]
    inside = (rows < n_rows)[:, None]
    o = tl.load(O + offs, mask=inside, other=0.0).to(tl.float32)
    do = tl.load(DO + offs, mask=inside, other=0.0).to(tl.float32)
    tl.store(DELTA + rows, tl.sum(o * do, 1), mask=rows < n_rows)


def launch_delta(o: torch.Tensor, do: torch.Tensor) -> torch.Tensor:
    """rowsum(O * dO) in fp32 [B * H, N] (contiguous o and do)."""
    n_rows = o.numel() // o.shape[-1]
    delta = torch.empty(o.shape[0] * o.shape[1], o.shape[2], device=o.device, dtype=torch.float32)
    _delta_kernel[(triton.cdiv(n_rows, 64),)](o, do, delta, n_rows, D=o.shape[-1], R=64)
    return delta


def mean_kv_chunks(n_heads: int, n_tiles: int, nbq: int, device: torch.device) -> int:
    """Query-block chunks per pooled tile so the d(k_mean)/d(v_mean) grid fills the GPU about twice: with few
    heads (B * H = 4 gives 32 programs at 32K tokens) one program per tile would walk all nbq query blocks
    on a few multiprocessors while the rest idle. Chunks keep >= 16 query blocks each, so the partial sums
    stay a small multiple of d(k_mean)'s own size."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4
    return max(1, min(-(-2 * sms // (n_heads * n_tiles)), nbq // 16))


def launch_mean_kv(q: torch.Tensor, do: torch.Tensor, lse: torch.Tensor, delta: torch.Tensor, km: torch.Tensor,
                   vm: torch.Tensor, mask: torch.Tensor, layout: BlockLayout, tile: int, warps: int,
                   chunks: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """d(k_mean), d(v_mean) in fp32 [B * H, nb, D] from every query block's 0-th order terms; the query
    blocks split into `chunks` (0: automatic) whose partial sums are added in a fixed order (deterministic)."""
    n_heads, n_tiles = q.shape[0] * q.shape[1], triton.cdiv(layout.nb, tile)
    chunks = min(chunks or mean_kv_chunks(n_heads, n_tiles, layout.nbq, q.device), layout.nbq)
    chunk = -(-layout.nbq // chunks)
    chunks = -(-layout.nbq // chunk)  # no empty chunk
    dkm = torch.empty((chunks, *km.shape), device=km.device, dtype=torch.float32)
    dvm = torch.empty_like(dkm)
    _isa_mean_kv_kernel[(n_heads, n_tiles, chunks)](
        block_descriptor(q, layout.block), block_descriptor(do, layout.block), lse, delta, km, vm, dkm, dvm, mask,
        *geometry_args(q, layout), chunk,
        D=q.shape[-1], BLK=layout.block, BP=tile, num_warps=warps)
    return (dkm[0], dvm[0]) if chunks == 1 else (dkm.sum(0), dvm.sum(0))


def launch_dq(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, do: torch.Tensor, dq: torch.Tensor,
              lse: torch.Tensor, delta: torch.Tensor, km: torch.Tensor, vm: torch.Tensor, mask: torch.Tensor,
              work: Launch, layout: BlockLayout, warps: int, stages: int, mean_tile_blocks: int) -> None:
    """dq for the query blocks owned by `work`'s items."""
    if work.n_items == 0:
        return
    _isa_dq_kernel[(work.n_items,)](
        q, block_descriptor(k, layout.block), block_descriptor(v, layout.block), do, dq, lse, delta, km, vm, mask,
        work.own, work.bh, work.off, work.cnt, work.lst, work.mrow,
        *geometry_args(q, layout), D=q.shape[-1], BLK=layout.block, GQ=work.group, BP=mean_tile_blocks,
        HAS_MEAN=work.any_mean, num_warps=warps, num_stages=stages)


def launch_dkdv_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, do: torch.Tensor, dk: torch.Tensor,
                       dv: torch.Tensor, lse: torch.Tensor, delta: torch.Tensor, dkm: torch.Tensor | None,
                       dvm: torch.Tensor | None, work: Launch, layout: BlockLayout, warps: int, stages: int) -> None:
    """dk, dv for the key blocks owned by `work`'s items (plus dkm/dvm spread over tokens when given), by the
    Triton kernel."""
    if work.n_items == 0:
        return
    add_mean = dkm is not None
    _isa_dkdv_kernel[(work.n_items,)](
        block_descriptor(q, layout.block), k, v, block_descriptor(do, layout.block), dk, dv, lse, delta,
        dkm if add_mean else lse, dvm if add_mean else lse,
        work.own, work.bh, work.off, work.cnt, work.lst, work.accumulate,
        *geometry_args(q, layout), D=q.shape[-1], BLK=layout.block, GK=work.group, ADD_MEAN=add_mean,
        num_warps=warps, num_stages=stages)


def launch_dkdv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, do: torch.Tensor, dk: torch.Tensor,
                dv: torch.Tensor, lse: torch.Tensor, delta: torch.Tensor, dkm: torch.Tensor | None,
                dvm: torch.Tensor | None, work: Launch, layout: BlockLayout, tiles: TileConfig, sharp: bool) -> None:
    """The dk/dv dispatcher: the sharp or the every-key launch, by the warp-specialised Gluon kernel where it
    applies (Hopper), else by the Triton one, with the tiles `tiles` gives that launch."""
    if tiles.dkdv_hopper and isa_forward_hopper.supported(q, work, layout):
        stages = tiles.dkdv_hopper_stages if sharp else tiles.dkdv_hopper_flat_stages
        launch_dkdv_hopper(q, k, v, do, dk, dv, lse, delta, dkm, dvm, work, layout, *softmax_scales(q.shape[-1]),
                           stages)
    elif sharp:
        launch_dkdv_triton(q, k, v, do, dk, dv, lse, delta, dkm, dvm, work, layout, tiles.dkdv_warps,
                           tiles.dkdv_stages)
    else:
        launch_dkdv_triton(q, k, v, do, dk, dv, lse, delta, dkm, dvm, work, layout, tiles.flat_warps,
                           tiles.flat_stages)
