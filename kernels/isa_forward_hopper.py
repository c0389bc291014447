"""Hopper ISA forward, written in Gluon: warp-specialised like FlashAttention-3.

The Triton forward (`isa_forward.py`) runs each program's loop in one group of warps that waits for every
score MMA before its softmax. Here a program is split into partitions that run side by side:

- a producer warp issues the TMA loads: Q once, then every step's tiles into a ring of STAGES shared-memory
  slots, each with a `ready` and an `empty` barrier. A step is KB listed key blocks (K and V), or for the
  0-th order terms one tile of 64 pooled blocks (k_mean and v_mean, skipped when its mask bits are all 0);
- G consumer warpgroups, one per query block (64 rows), run the online softmax. Each issues the next step's
  score MMA and the current step's P.V MMA asynchronously, then computes the next softmax while P.V runs
  (FlashAttention-3's intra-warpgroup overlap); with G = 2 the two warpgroups also interleave on the tensor
  cores.

Sharp items (G = 2) share their head's kept list and have no 0-th order terms (the case without
`dropped_mean` or with every context block kept); flat items (G = 1) walk their own exact list, then their
mean tiles. Same contract as the Triton kernel: O in q's [B, H, N_q, D] layout, LSE (base 2) fp32
[B * H, N_q]. `supported` says where it runs (compute capability 9.x, fp16/bf16, D 64 or 128, 64-token
blocks); elsewhere, and under the CPU interpreter, which does not run Gluon, the Triton kernel does.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma, warpgroup_mma_wait
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

from kernels.isa_blocks import BlockLayout
from kernels.isa_selection import Launch

# Registers per thread at launch, per kernel: the producer warpgroup gives its share back (24 each), the
# consumers get the rest. Sharp: 12 warps x 168 = the SM's 64K registers (one program per SM, 229 KB of
# shared memory). Flat: 8 warps x 128, two programs per SM.
MAX_REGS = {2: 168, 1: 128}
CONSUMER_REGS = gl.constexpr(240)
PRODUCER_REGS = gl.constexpr(24)


class LayoutSizes(NamedTuple):
    """The block layout's sizes as kernel values (Triton passes a 1 as a constexpr)."""

    n_tgt: gl.tensor | gl.constexpr  # target tokens
    n_tot: gl.tensor | gl.constexpr  # key tokens (target and context)
    n_q: gl.tensor | gl.constexpr  # query tokens
    nbt: gl.tensor | gl.constexpr  # target blocks
    nb: gl.tensor | gl.constexpr  # key blocks


@gluon.jit
def _span(blk, sizes, BLK: gl.constexpr):
    """First token and length of block(s) `blk` (target blocks from 0, context blocks from n_tgt)."""
    is_tgt = blk < sizes.nbt
    start = gl.where(is_tgt, blk * BLK, sizes.n_tgt + (blk - sizes.nbt) * BLK)
    end = gl.minimum(gl.where(is_tgt, sizes.n_tgt, sizes.n_tot), start + BLK)
    return start, end - start


@gluon.jit
def _listed_length(LST, off, cnt, idx, sizes, BLK: gl.constexpr):
    """Token count of list entry idx; 0 past the list's end (the producer repeats the last block there)."""
    _, length = _span(gl.load(LST + off + gl.minimum(idx, cnt - 1)), sizes, BLK)
    return gl.where(idx < cnt, length, 0)


@gluon.jit
def _mask_words(MASK, mrow, t, nb):
    """The two bit-packed mask words of pooled tile t (blocks 64 t .. 64 t + 63) in mask row mrow."""
    n_words = (nb + 31) // 32
    w0 = gl.load(MASK + mrow.to(gl.int64) * n_words + 2 * t)
    w1 = gl.load(MASK + mrow.to(gl.int64) * n_words + gl.minimum(2 * t + 1, n_words - 1))
    return w0, gl.where(2 * t + 1 < n_words, w1, 0)


@gluon.jit
def ring_barriers(STAGES: gl.constexpr, CONSUMERS: gl.constexpr):
    """The ring's `ready` (the producer's TMA loads landed) and `empty` (every consumer released the slot)
    mbarriers, one of each per slot."""
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(STAGES):
        mbarrier.init(ready.index(i), count=1)
        mbarrier.init(empty.index(i), count=CONSUMERS)
    return ready, empty


class ForwardArgs(NamedTuple):
    """Everything the partitions of one forward program share, read by name (`gl.warp_specialize` hands every
    partition the same arguments). Built inside the kernel from its arguments and its item's row of the
    work list."""

    q_desc: tma.tensor_descriptor  # [B * H * N_q, D], one query block per load
    k_desc: tma.tensor_descriptor  # [B * H * N, D], one key block per load
    v_desc: tma.tensor_descriptor
    km_desc: tma.tensor_descriptor  # pooled keys [B * H * nb, D], one tile of BLK pooled blocks per load
    vm_desc: tma.tensor_descriptor
    q_smem: gl.shared_memory_descriptor  # [G, BLK, D]: the item's query blocks
    k_bufs: gl.shared_memory_descriptor  # [STAGES, KB * BLK, D]: the ring's K (or k_mean) slots
    v_bufs: gl.shared_memory_descriptor  # [STAGES, KB * BLK, D]: the ring's V (or v_mean) slots
    q_bar: gl.shared_memory_descriptor  # mbarrier: Q landed
    ready: gl.shared_memory_descriptor  # [STAGES] mbarriers: the slot's loads landed
    empty: gl.shared_memory_descriptor  # [STAGES] mbarriers: every consumer released the slot
    O: gl.tensor  # noqa: E741  # pointers: the output (O beside Q, K, V), the owned blocks, the block lists, the mean mask
    LSE: gl.tensor
    OWN: gl.tensor
    LST: gl.tensor
    MASK: gl.tensor
    item: gl.tensor  # this program's work item, then its head, list offset, list length and mask row
    bh: gl.tensor
    off: gl.tensor
    cnt: gl.tensor
    mrow: gl.tensor
    sizes: LayoutSizes
    qk_scale: gl.tensor  # log2(e) / sqrt(D)


@gluon.jit
def _producer(args, HAS_MEAN: gl.constexpr):
    """One warp: Q once, then the tiles of every exact step and of every used mean tile, as slots free up."""
    sizes, nb, bh, cnt, mrow = args.sizes, args.sizes.nb, args.bh, args.cnt, args.mrow
    ready, empty, k_bufs, v_bufs = args.ready, args.empty, args.k_bufs, args.v_bufs
    BLK: gl.constexpr = args.q_desc.block_type.shape[0]
    G: gl.constexpr = args.q_smem.type.shape[0]
    KB: gl.constexpr = k_bufs.type.shape[1] // BLK
    STAGES: gl.constexpr = k_bufs.type.shape[0]
    tile_bytes: gl.constexpr = args.q_desc.block_type.nbytes

    mbarrier.expect(args.q_bar, G * tile_bytes)
    for g in gl.static_range(G):
        blk = gl.load(args.OWN + args.item * G + g)
        start, _ = _span(gl.maximum(blk, 0), sizes, BLK)  # padding (-1) loads block 0, not stored
        tma.async_copy_global_to_shared(args.q_desc, [bh * sizes.n_q + start, 0], args.q_bar, args.q_smem.index(g))

    row0 = bh * sizes.n_tot
    n_exact = gl.cdiv(cnt, KB)
    for j in range(n_exact):
        slot = j % STAGES
        mbarrier.wait(empty.index(slot), ((j // STAGES) & 1) ^ 1)  # fresh barriers pass phase 1 at once
        mbarrier.expect(ready.index(slot), 2 * KB * tile_bytes)
        for h in gl.static_range(KB):
            idx = gl.minimum(j * KB + h, cnt - 1)  # an odd list's last step repeats a block, masked out
            start, _ = _span(gl.load(args.LST + args.off + idx), sizes, BLK)
            tma.async_copy_global_to_shared(args.k_desc, [row0 + start, 0], ready.index(slot),
                                            k_bufs.index(slot).slice(h * BLK, BLK))
            tma.async_copy_global_to_shared(args.v_desc, [row0 + start, 0], ready.index(slot),
                                            v_bufs.index(slot).slice(h * BLK, BLK))
    if HAS_MEAN and mrow >= 0:
        i = n_exact
        for t in range(gl.cdiv(nb, BLK)):
            w0, w1 = _mask_words(args.MASK, mrow, t, nb)
            if (w0 | w1) != 0:
                slot = i % STAGES
                mbarrier.wait(empty.index(slot), ((i // STAGES) & 1) ^ 1)
                mbarrier.expect(ready.index(slot), 2 * tile_bytes)
                tma.async_copy_global_to_shared(args.km_desc, [bh * nb + t * BLK, 0], ready.index(slot),
                                                k_bufs.index(slot).slice(0, BLK))
                tma.async_copy_global_to_shared(args.vm_desc, [bh * nb + t * BLK, 0], ready.index(slot),
                                                v_bufs.index(slot).slice(0, BLK))
                i += 1


@gluon.jit
def _step_scores(s, LST, off, cnt, j, sizes, BLK: gl.constexpr, KB: gl.constexpr, s_layout: gl.constexpr):
    """-inf in the columns of step j's scores s [BLK, KB * BLK] past a partial block's end or past the list's
    end (an odd list's repeated block). Only a part's last block is partial, so most steps skip the select."""
    partial = False
    for h in gl.static_range(KB):
        partial = partial | (_listed_length(LST, off, cnt, j * KB + h, sizes, BLK) < BLK)
    if partial:
        col = gl.arange(0, KB * BLK, layout=gl.SliceLayout(0, s_layout))
        lim = gl.zeros([KB * BLK], gl.int32, gl.SliceLayout(0, s_layout))
        for h in gl.static_range(KB):
            length = _listed_length(LST, off, cnt, j * KB + h, sizes, BLK)
            lim = gl.where(col >= h * BLK, h * BLK + length, lim)
        s = gl.where((col < lim)[None, :], s, float("-inf"))
    return s


@gluon.jit
def _mean_logits(s, MASK, mrow, t, sizes, qk_scale, BLK: gl.constexpr, s_layout: gl.constexpr):
    """Base-2 logits q . k_mean_j * scale + log2(n_j) of pooled tile t's scores s [BLK, BLK]; -inf where the
    mask row does not take block j."""
    w0, w1 = _mask_words(MASK, mrow, t, sizes.nb)
    col = gl.arange(0, BLK, layout=gl.SliceLayout(0, s_layout))
    blk = t * BLK + col
    use = ((gl.where(col < 32, w0, w1) >> (col % 32)) & 1) != 0
    _, n_j = _span(blk, sizes, BLK)
    bias = gl.log2(gl.maximum(n_j, 1).to(gl.float32))
    return gl.where((use & (blk < sizes.nb))[None, :], s * qk_scale + bias[None, :], float("-inf"))


@gluon.jit
def _consume(args, g: gl.constexpr, HAS_MEAN: gl.constexpr):
    """One warpgroup: query block g of the item; online softmax over its exact steps, then its mean tiles."""
    sizes, nb, qk_scale = args.sizes, args.sizes.nb, args.qk_scale
    cnt, mrow, ready, empty, k_bufs, v_bufs = args.cnt, args.mrow, args.ready, args.empty, args.k_bufs, args.v_bufs
    BLK: gl.constexpr = args.q_desc.block_type.shape[0]
    D: gl.constexpr = args.q_desc.block_type.shape[1]
    G: gl.constexpr = args.q_smem.type.shape[0]
    KN: gl.constexpr = k_bufs.type.shape[1]
    KB: gl.constexpr = KN // BLK
    STAGES: gl.constexpr = k_bufs.type.shape[0]
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, KN, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, D, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_layout: gl.constexpr = gl.SliceLayout(1, s_layout)
    o_rows: gl.constexpr = gl.SliceLayout(1, o_layout)

    q = args.q_smem.index(g)  # [BLK, D]
    mbarrier.wait(args.q_bar, 0)
    acc = gl.zeros([BLK, D], gl.float32, o_layout)  # (BLK, D)
    s = gl.zeros([BLK, KN], gl.float32, s_layout)  # (BLK, KN), its registers reused by every score MMA
    mbarrier.wait(ready.index(0), 0)
    s = warpgroup_mma(q, k_bufs.index(0).permute((1, 0)), s, use_acc=False)
    s = _step_scores(s, args.LST, args.off, cnt, 0, sizes, BLK, KB, s_layout)
    m_i = gl.max(s, 1) * qk_scale  # (BLK,) running max of the base-2 logits
    e = gl.exp2(s * qk_scale - m_i[:, None])
    l_i = gl.sum(e, 1)
    p = gl.convert_layout(e.to(args.q_desc.dtype), p_layout)  # (BLK, KN)
    n_exact = gl.cdiv(cnt, KB)
    for j in range(1, n_exact):
        slot = j % STAGES
        prev = (j - 1) % STAGES
        mbarrier.wait(ready.index(slot), (j // STAGES) & 1)
        s_next = warpgroup_mma(q, k_bufs.index(slot).permute((1, 0)), s, use_acc=False, is_async=True)
        acc_next = warpgroup_mma(p, v_bufs.index(prev), acc, is_async=True)  # runs under this softmax
        s = warpgroup_mma_wait(1, deps=(s_next, ))
        s = _step_scores(s, args.LST, args.off, cnt, j, sizes, BLK, KB, s_layout)
        m_new = gl.maximum(m_i, gl.max(s, 1) * qk_scale)
        alpha = gl.exp2(m_i - m_new)
        e = gl.exp2(s * qk_scale - m_new[:, None])
        l_i = l_i * alpha + gl.sum(e, 1)
        m_i = m_new
        acc = warpgroup_mma_wait(0, deps=(acc_next, ))
        mbarrier.arrive(empty.index(prev), count=1)
        acc = acc * gl.convert_layout(alpha, o_rows)[:, None]
        p = gl.convert_layout(e.to(args.q_desc.dtype), p_layout)
    acc = warpgroup_mma(p, v_bufs.index((n_exact - 1) % STAGES), acc)
    mbarrier.arrive(empty.index((n_exact - 1) % STAGES), count=1)

    if HAS_MEAN and mrow >= 0:  # 0-th order terms: one pooled tile per step, through the same slots
        mean_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                              instr_shape=[16, BLK, 16])
        i = n_exact
        for t in range(gl.cdiv(nb, BLK)):
            w0, w1 = _mask_words(args.MASK, mrow, t, nb)
            if (w0 | w1) != 0:
                slot = i % STAGES
                mbarrier.wait(ready.index(slot), (i // STAGES) & 1)
                sm = gl.zeros([BLK, BLK], gl.float32, mean_layout)
                sm = warpgroup_mma(q, k_bufs.index(slot).slice(0, BLK).permute((1, 0)), sm, use_acc=False)
                sm = _mean_logits(sm, args.MASK, mrow, t, sizes, qk_scale, BLK, mean_layout)
                m_new = gl.maximum(m_i, gl.convert_layout(gl.max(sm, 1), row_layout))
                alpha = gl.exp2(m_i - m_new)
                em = gl.exp2(sm - gl.convert_layout(m_new, gl.SliceLayout(1, mean_layout))[:, None])
                l_i = l_i * alpha + gl.convert_layout(gl.sum(em, 1), row_layout)
                m_i = m_new
                acc = acc * gl.convert_layout(alpha, o_rows)[:, None]
                acc = warpgroup_mma(gl.convert_layout(em.to(args.q_desc.dtype), p_layout),
                                    v_bufs.index(slot).slice(0, BLK), acc)
                mbarrier.arrive(empty.index(slot), count=1)
                i += 1

    blk = gl.load(args.OWN + args.item * G + g)
    start, length = _span(blk, sizes, BLK)
    length = gl.where(blk >= 0, length, 0)
    r = gl.arange(0, BLK, layout=o_rows)
    c = gl.arange(0, D, layout=gl.SliceLayout(0, o_layout))
    rows = (args.bh * sizes.n_q + start + r).to(gl.int64)
    out = acc / gl.convert_layout(l_i, o_rows)[:, None]
    gl.store(args.O + rows[:, None] * D + c[None, :], out.to(args.q_desc.dtype), mask=(r < length)[:, None])
    r_s = gl.arange(0, BLK, layout=row_layout)
    gl.store(args.LSE + (args.bh * sizes.n_q + start + r_s).to(gl.int64), m_i + gl.log2(l_i), mask=r_s < length)


@gluon.jit
def _consume_first(args, HAS_MEAN: gl.constexpr):
    if args.cnt > 0:  # padding items (per-head counts) walk nothing and own no rows
        _consume(args, 0, HAS_MEAN)


@gluon.jit
def _consume_second(args, HAS_MEAN: gl.constexpr):
    if args.cnt > 0:
        _consume(args, 1, HAS_MEAN)


@gluon.jit
def _isa_fwd_hopper(q_desc, k_desc, v_desc, km_desc, vm_desc, O, LSE, OWN, BH, OFF, CNT, LST, MROW,  # noqa: E741  # O: the output
                    MASK, n_tgt, n_tot, n_q, nbt, nb, qk_scale,
                    G: gl.constexpr, KB: gl.constexpr, STAGES: gl.constexpr, HAS_MEAN: gl.constexpr):
    BLK: gl.constexpr = q_desc.block_type.shape[0]
    D: gl.constexpr = q_desc.block_type.shape[1]
    item = gl.program_id(0)
    q_smem = gl.allocate_shared_memory(q_desc.dtype, [G, BLK, D], q_desc.layout)
    k_bufs = gl.allocate_shared_memory(k_desc.dtype, [STAGES, KB * BLK, D], k_desc.layout)
    v_bufs = gl.allocate_shared_memory(v_desc.dtype, [STAGES, KB * BLK, D], v_desc.layout)
    q_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    mbarrier.init(q_bar, count=1)
    ready, empty = ring_barriers(STAGES, G)
    args = ForwardArgs(q_desc=q_desc, k_desc=k_desc, v_desc=v_desc, km_desc=km_desc, vm_desc=vm_desc,
                       q_smem=q_smem, k_bufs=k_bufs, v_bufs=v_bufs, q_bar=q_bar, ready=ready, empty=empty,
                       O=O, LSE=LSE, OWN=OWN, LST=LST, MASK=MASK, item=item, bh=gl.load(BH + item),
                       off=gl.load(OFF + item), cnt=gl.load(CNT + item), mrow=gl.load(MROW + item),
                       sizes=LayoutSizes(n_tgt, n_tot, n_q, nbt, nb), qk_scale=qk_scale)
    if G == 2:
        gl.warp_specialize([(_consume_first, (args, HAS_MEAN)), (_consume_second, (args, HAS_MEAN)),
                            (_producer, (args, HAS_MEAN))], [4, 1], [CONSUMER_REGS, PRODUCER_REGS])
    else:
        gl.warp_specialize([(_consume_first, (args, HAS_MEAN)), (_producer, (args, HAS_MEAN))], [1],
                           [PRODUCER_REGS])


def supported(q: torch.Tensor, work: Launch, layout: BlockLayout) -> bool:
    """Whether this kernel can run the forward launch `work` on q (else the Triton kernel does): Hopper,
    fp16/bf16, D 64 or 128, 64-token blocks (one warpgroup MMA height), one or two query blocks per item."""
    return (q.is_cuda and torch.cuda.get_device_capability(q.device)[0] == 9
            and q.dtype in (torch.float16, torch.bfloat16) and q.shape[-1] in (64, 128) and layout.block == 64
            and work.group in (1, 2))


def _descriptor(x: torch.Tensor, block: int) -> TensorDescriptor:
    """TMA descriptor of contiguous [..., N, D] seen as [rows, D], one block of rows per load."""
    flat = x.reshape(-1, x.shape[-1])
    dtype = gl.bfloat16 if x.dtype == torch.bfloat16 else gl.float16
    layout = gl.NVMMASharedLayout.get_default_for([block, x.shape[-1]], dtype)
    return TensorDescriptor(flat, list(flat.shape), list(flat.stride()), [block, x.shape[-1]], layout)


def launch_forward_hopper(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
                          km: torch.Tensor, vm: torch.Tensor, mask: torch.Tensor, work: Launch, layout: BlockLayout,
                          qk_scale: float, key_blocks: int, stages: int) -> None:
    """Run one forward launch (sharp items: groups of two query blocks without 0-th order terms; flat items:
    one query block each, with them)."""
    if work.n_items == 0:
        return
    blk, g = layout.block, work.group
    _isa_fwd_hopper[(work.n_items,)](
        _descriptor(q, blk), _descriptor(k, blk), _descriptor(v, blk), _descriptor(km, blk), _descriptor(vm, blk),
        o, lse, work.own, work.bh, work.off, work.cnt, work.lst, work.mrow, mask,
        layout.n_tgt, layout.n_tot, layout.n_q, layout.nbt, layout.nb, qk_scale,
        G=g, KB=key_blocks, STAGES=stages, HAS_MEAN=work.any_mean, num_warps=4, maxnreg=MAX_REGS[g])
