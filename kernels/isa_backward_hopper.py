"""Hopper dk/dv for ISA, written in Gluon: the warp-specialised layout of `isa_forward_hopper.py` applied to
the backward's key side.

A program owns G key blocks (G = 2 for the sharp launch, whose items are pairs of kept blocks walking their
head's sharp query blocks; G = 1 for the launch over every key block and its flat users). A producer warp
loads the owned K and V once, then each listed query block's Q and dO tiles into a ring of STAGES slots; one
consumer warpgroup per key block (64 rows) accumulates dV += P^T dO and dK += dS^T Q. Each step issues the
two score MMAs (K Q^T and V dO^T) asynchronously and exponentiates the first while the second runs; the
two warpgroups interleave on the tensor cores. Same contract as the Triton `_isa_dkdv_kernel`: dk (times the
softmax scale) and dv, plus d(k_mean)/n_j and d(v_mean)/n_j when given, plus what an earlier launch wrote
where ACC says so.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma, warpgroup_mma_wait

from kernels.isa_blocks import BlockLayout
from kernels.isa_forward_hopper import CONSUMER_REGS, MAX_REGS, PRODUCER_REGS, LayoutSizes, _descriptor, _span, ring_barriers
from kernels.isa_selection import Launch


class DkdvArgs(NamedTuple):
    """Everything the partitions of one dk/dv program share, read by name (`gl.warp_specialize` hands every
    partition the same arguments). Built inside the kernel from its arguments and its item's row of the
    work list."""

    q_desc: tma.tensor_descriptor  # [B * H * N_q, D], one query block per load
    k_desc: tma.tensor_descriptor  # [B * H * N, D], one key block per load
    v_desc: tma.tensor_descriptor
    do_desc: tma.tensor_descriptor  # like q_desc
    k_smem: gl.shared_memory_descriptor  # [G, BLK, D]: the item's key blocks, resident
    v_smem: gl.shared_memory_descriptor  # [G, BLK, D]
    q_bufs: gl.shared_memory_descriptor  # [STAGES, BLK, D]: the ring's Q slots
    do_bufs: gl.shared_memory_descriptor  # [STAGES, BLK, D]: the ring's dO slots
    kv_bar: gl.shared_memory_descriptor  # mbarrier: K and V landed
    ready: gl.shared_memory_descriptor  # [STAGES] mbarriers: the slot's loads landed
    empty: gl.shared_memory_descriptor  # [STAGES] mbarriers: every consumer released the slot
    DK: gl.tensor  # pointers: outputs, softmax statistics, pooled gradients, owned blocks, block lists
    DV: gl.tensor
    LSE: gl.tensor
    DELTA: gl.tensor
    DKM: gl.tensor
    DVM: gl.tensor
    OWN: gl.tensor
    LST: gl.tensor
    item: gl.tensor  # this program's work item, then its head, list offset, list length and ACC flag
    bh: gl.tensor
    off: gl.tensor
    cnt: gl.tensor
    acc_flag: gl.tensor
    sizes: LayoutSizes
    qk_scale: gl.tensor  # log2(e) / sqrt(D)
    sm_scale: gl.tensor  # 1 / sqrt(D)


@gluon.jit
def _producer(args, ADD_MEAN: gl.constexpr):
    """One warp: the owned K and V once, then Q and dO of every listed query block, as slots free up."""
    sizes, bh, cnt, ready = args.sizes, args.bh, args.cnt, args.ready
    BLK: gl.constexpr = args.q_desc.block_type.shape[0]
    G: gl.constexpr = args.k_smem.type.shape[0]
    STAGES: gl.constexpr = args.q_bufs.type.shape[0]
    tile_bytes: gl.constexpr = args.q_desc.block_type.nbytes
    if cnt > 0:
        mbarrier.expect(args.kv_bar, 2 * G * tile_bytes)
        for g in gl.static_range(G):
            start, _ = _span(gl.maximum(gl.load(args.OWN + args.item * G + g), 0), sizes, BLK)
            tma.async_copy_global_to_shared(args.k_desc, [bh * sizes.n_tot + start, 0], args.kv_bar,
                                            args.k_smem.index(g))
            tma.async_copy_global_to_shared(args.v_desc, [bh * sizes.n_tot + start, 0], args.kv_bar,
                                            args.v_smem.index(g))
        for j in range(cnt):
            slot = j % STAGES
            mbarrier.wait(args.empty.index(slot), ((j // STAGES) & 1) ^ 1)  # fresh barriers pass phase 1 at once
            mbarrier.expect(ready.index(slot), 2 * tile_bytes)
            start, _ = _span(gl.load(args.LST + args.off + j), sizes, BLK)
            tma.async_copy_global_to_shared(args.q_desc, [bh * sizes.n_q + start, 0], ready.index(slot),
                                            args.q_bufs.index(slot))
            tma.async_copy_global_to_shared(args.do_desc, [bh * sizes.n_q + start, 0], ready.index(slot),
                                            args.do_bufs.index(slot))


@gluon.jit
def _walk(args, g: gl.constexpr, dk, dv):
    """dk, dv (unscaled) of key block g over every listed query block."""
    sizes, bh, ready = args.sizes, args.bh, args.ready
    BLK: gl.constexpr = args.q_desc.block_type.shape[0]
    D: gl.constexpr = args.q_desc.block_type.shape[1]
    STAGES: gl.constexpr = args.q_bufs.type.shape[0]
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, BLK, 16])
    acc_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                         instr_shape=[16, D, 16])
    op_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=acc_layout, k_width=2)
    cols_layout: gl.constexpr = gl.SliceLayout(0, s_layout)

    k = args.k_smem.index(g)  # [BLK keys, D]
    v = args.v_smem.index(g)
    mbarrier.wait(args.kv_bar, 0)
    s_t = gl.zeros([BLK, BLK], gl.float32, s_layout)  # (keys, queries)
    dp_t = gl.zeros([BLK, BLK], gl.float32, s_layout)
    cols = gl.arange(0, BLK, layout=cols_layout)
    for j in range(args.cnt):
        slot = j % STAGES
        mbarrier.wait(ready.index(slot), (j // STAGES) & 1)
        q = args.q_bufs.index(slot)  # [BLK queries, D]
        do = args.do_bufs.index(slot)
        s_next = warpgroup_mma(k, q.permute((1, 0)), s_t, use_acc=False, is_async=True)
        dp_next = warpgroup_mma(v, do.permute((1, 0)), dp_t, use_acc=False, is_async=True)
        start, length = _span(gl.load(args.LST + args.off + j), sizes, BLK)
        rows = (bh * sizes.n_q + start + cols).to(gl.int64)
        valid = cols < length
        lse = gl.load(args.LSE + rows, mask=valid, other=0.0)
        delta = gl.load(args.DELTA + rows, mask=valid, other=0.0)
        s_t = warpgroup_mma_wait(1, deps=(s_next, ))
        p_t = gl.where(valid[None, :], gl.exp2(s_t * args.qk_scale - lse[None, :]), 0.0)  # exp under V dO^T
        dp_t = warpgroup_mma_wait(0, deps=(dp_next, ))
        ds_t = p_t * (dp_t - delta[None, :])
        dv = warpgroup_mma(gl.convert_layout(p_t.to(args.q_desc.dtype), op_layout), do, dv, is_async=True)
        dk = warpgroup_mma(gl.convert_layout(ds_t.to(args.q_desc.dtype), op_layout), q, dk, is_async=True)
        dv, dk = warpgroup_mma_wait(0, deps=(dv, dk))
        mbarrier.arrive(args.empty.index(slot), count=1)
    return dk, dv


@gluon.jit
def _consume(args, g: gl.constexpr, ADD_MEAN: gl.constexpr):
    """One warpgroup: key block g of the item; walk, then scale, add the pooled gradients and store."""
    sizes, bh = args.sizes, args.bh
    BLK: gl.constexpr = args.q_desc.block_type.shape[0]
    D: gl.constexpr = args.q_desc.block_type.shape[1]
    G: gl.constexpr = args.k_smem.type.shape[0]
    acc_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                         instr_shape=[16, D, 16])
    dk = gl.zeros([BLK, D], gl.float32, acc_layout)  # (keys, D)
    dv = gl.zeros([BLK, D], gl.float32, acc_layout)
    if args.cnt > 0:
        dk, dv = _walk(args, g, dk, dv)
    dk = dk * args.sm_scale

    blk = gl.load(args.OWN + args.item * G + g)
    start, length = _span(blk, sizes, BLK)
    length = gl.where(blk >= 0, length, 0)
    r = gl.arange(0, BLK, layout=gl.SliceLayout(1, acc_layout))
    c = gl.arange(0, D, layout=gl.SliceLayout(0, acc_layout))
    if ADD_MEAN:  # every token of block j gets d(k_mean_j) / n_j
        pooled = (bh * sizes.nb + gl.maximum(blk, 0)).to(gl.int64) * D + c
        inv_n = 1.0 / gl.maximum(length, 1).to(gl.float32)
        dk += gl.load(args.DKM + pooled)[None, :] * inv_n
        dv += gl.load(args.DVM + pooled)[None, :] * inv_n
    offs = (bh * sizes.n_tot + start + r).to(gl.int64)[:, None] * D + c[None, :]
    inside = (r < length)[:, None]
    if args.acc_flag != 0:
        dk += gl.load(args.DK + offs, mask=inside, other=0.0).to(gl.float32)
        dv += gl.load(args.DV + offs, mask=inside, other=0.0).to(gl.float32)
    gl.store(args.DK + offs, dk.to(args.q_desc.dtype), mask=inside)
    gl.store(args.DV + offs, dv.to(args.q_desc.dtype), mask=inside)


@gluon.jit
def _consume_first(args, ADD_MEAN: gl.constexpr):
    _consume(args, 0, ADD_MEAN)


@gluon.jit
def _consume_second(args, ADD_MEAN: gl.constexpr):
    _consume(args, 1, ADD_MEAN)


@gluon.jit
def _isa_dkdv_hopper(q_desc, k_desc, v_desc, do_desc, DK, DV, LSE, DELTA, DKM, DVM, OWN, BH, OFF, CNT, LST, ACC,
                     n_tgt, n_tot, n_q, nbt, nb, qk_scale, sm_scale,
                     G: gl.constexpr, STAGES: gl.constexpr, ADD_MEAN: gl.constexpr):
    BLK: gl.constexpr = q_desc.block_type.shape[0]
    D: gl.constexpr = q_desc.block_type.shape[1]
    item = gl.program_id(0)
    k_smem = gl.allocate_shared_memory(k_desc.dtype, [G, BLK, D], k_desc.layout)
    v_smem = gl.allocate_shared_memory(v_desc.dtype, [G, BLK, D], v_desc.layout)
    q_bufs = gl.allocate_shared_memory(q_desc.dtype, [STAGES, BLK, D], q_desc.layout)
    do_bufs = gl.allocate_shared_memory(do_desc.dtype, [STAGES, BLK, D], do_desc.layout)
    kv_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    mbarrier.init(kv_bar, count=1)
    ready, empty = ring_barriers(STAGES, G)
    args = DkdvArgs(q_desc=q_desc, k_desc=k_desc, v_desc=v_desc, do_desc=do_desc, k_smem=k_smem, v_smem=v_smem,
                    q_bufs=q_bufs, do_bufs=do_bufs, kv_bar=kv_bar, ready=ready, empty=empty, DK=DK, DV=DV, LSE=LSE,
                    DELTA=DELTA, DKM=DKM, DVM=DVM, OWN=OWN, LST=LST, item=item, bh=gl.load(BH + item),
                    off=gl.load(OFF + item), cnt=gl.load(CNT + item), acc_flag=gl.load(ACC + item),
                    sizes=LayoutSizes(n_tgt, n_tot, n_q, nbt, nb), qk_scale=qk_scale, sm_scale=sm_scale)
    if G == 2:
        gl.warp_specialize([(_consume_first, (args, ADD_MEAN)), (_consume_second, (args, ADD_MEAN)),
                            (_producer, (args, ADD_MEAN))], [4, 1], [CONSUMER_REGS, PRODUCER_REGS])
    else:
        gl.warp_specialize([(_consume_first, (args, ADD_MEAN)), (_producer, (args, ADD_MEAN))], [1],
                           [PRODUCER_REGS])


def launch_dkdv_hopper(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, do: torch.Tensor, dk: torch.Tensor,
                       dv: torch.Tensor, lse: torch.Tensor, delta: torch.Tensor, dkm: torch.Tensor | None,
                       dvm: torch.Tensor | None, work: Launch, layout: BlockLayout, qk_scale: float,
                       sm_scale: float, stages: int) -> None:
    """dk, dv for the key blocks owned by `work`'s items (plus dkm/dvm spread over tokens when given)."""
    if work.n_items == 0:
        return
    blk, g = layout.block, work.group
    add_mean = dkm is not None
    _isa_dkdv_hopper[(work.n_items,)](
        _descriptor(q, blk), _descriptor(k, blk), _descriptor(v, blk), _descriptor(do, blk), dk, dv, lse, delta,
        dkm if add_mean else lse, dvm if add_mean else lse, work.own, work.bh, work.off, work.cnt, work.lst,
        work.accumulate, layout.n_tgt, layout.n_tot, layout.n_q, layout.nbt, layout.nb, qk_scale, sm_scale,
        G=g, STAGES=stages, ADD_MEAN=add_mean, num_warps=4, maxnreg=MAX_REGS[g])
