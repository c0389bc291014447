"""Triton ISA forward: per work item (a group of query blocks), exact key blocks read in place through the
item's block list (TMA tiles), then the 0-th order terms of its mean blocks, in one base-2 online softmax.

Writes O in the input's [B, H, N, D] layout and LSE (base 2) as fp32 [B * H, N] for the backward.

With FP8 the exact blocks' scores come from fp8 (e4m3) copies of q and k on the fp8 tensor cores, dequantized by
one scale per (batch, head) (`fp8_scaled`); P . V, the 0-th order terms and the backward keep the inputs' dtype.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from kernels import isa_forward_hopper
from kernels.isa_blocks import BlockLayout
from kernels.isa_config import TileConfig
from kernels.isa_selection import Launch
from kernels.isa_tiles import exact_scores, mask_tile, mean_scores, online_softmax_pair, online_softmax_step, owned_group

LOG2E = 1.4426950408889634
FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0  # e4m3's largest finite value


class Fp8Scores(NamedTuple):
    """fp8 copies of q and k for the exact scores, and the factor that dequantizes their products."""

    q: torch.Tensor  # (B, H, N_q, D) e4m3
    k: torch.Tensor  # (B, H, N, D) e4m3
    dequant: torch.Tensor  # (B * H,) fp32: q's scale times k's


def fp8_scaled(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, H, N, D) as e4m3 with one scale per (batch, head), chosen so that its largest |x| maps to e4m3's
    largest value; x ~ x8 * scale. Returns (x8, scale (B * H,) fp32)."""
    scale = x.detach().abs().amax(dim=(2, 3)).float().clamp_min(1e-12) / FP8_MAX  # (B, H)
    x8 = (x.float() / scale[:, :, None, None]).clamp(-FP8_MAX, FP8_MAX).to(FP8)
    return x8, scale.reshape(-1)


def fp8_scores(q: torch.Tensor, k: torch.Tensor) -> Fp8Scores:
    """The fp8 inputs of the forward's exact loop (TileConfig.fwd_fp8)."""
    q8, q_scale = fp8_scaled(q)
    k8, k_scale = fp8_scaled(k)
    return Fp8Scores(q8, k8, q_scale * k_scale)


@triton.jit
def _isa_fwd_kernel(Q, k_desc, v_desc, O, LSE, KM, VM, MASK,  # noqa: E741  # O: the output, beside Q, K, V
                    OWN, BH, OFF, CNT, LST, MROW, Q8, QK_DEQUANT,
                    H, n_tgt, n_tot, n_q, nbt, nb, nbq, qk_scale, sm_scale,
                    D: tl.constexpr, BLK: tl.constexpr, GQ: tl.constexpr,
                    BP: tl.constexpr, HAS_MEAN: tl.constexpr, KP: tl.constexpr, WS: tl.constexpr,
                    FP8: tl.constexpr):
    item = tl.program_id(0)
    bh, row0, qrows, qvalid, q_offs, off, cnt = owned_group(OWN, BH, OFF, CNT, item, n_q, n_tgt, n_tot, nbt,
                                                            D, GQ, BLK)
    row0k = bh * n_tot
    q = tl.load(Q + q_offs, mask=qvalid[:, None], other=0.0)  # the 0-th order terms use q as given
    q_exact, exact_scale = q, qk_scale
    if FP8:  # the exact loop reads the fp8 copies (k_desc is k's); its scores dequantize inside the exp2 scale
        q_exact = tl.load(Q8 + q_offs, mask=qvalid[:, None], other=0.0)
        exact_scale = qk_scale * tl.load(QK_DEQUANT + bh)
    m_i = tl.full([GQ * BLK], float("-inf"), tl.float32)
    l_i = tl.zeros([GQ * BLK], tl.float32)
    acc = tl.zeros([GQ * BLK, D], tl.float32)
    if KP == 2:  # two listed key blocks per step: one rescale of the accumulator per 2 * BLK keys
        for t in tl.range(0, cnt // 2, warp_specialize=WS):
            s, k, v = exact_scores(q_exact, k_desc, v_desc, LST, off + 2 * t, row0k, n_tgt, n_tot, nbt, BLK)
            s2, k2, v2 = exact_scores(q_exact, k_desc, v_desc, LST, off + 2 * t + 1, row0k, n_tgt, n_tot, nbt, BLK)
            acc, m_i, l_i = online_softmax_pair(acc, m_i, l_i, s, v, s2, v2, exact_scale)
        if cnt % 2 == 1:
            s, k, v = exact_scores(q_exact, k_desc, v_desc, LST, off + cnt - 1, row0k, n_tgt, n_tot, nbt, BLK)
            acc, m_i, l_i = online_softmax_step(acc, m_i, l_i, s, v, exact_scale)
    else:
        for t in tl.range(0, cnt, warp_specialize=WS):
            s, k, v = exact_scores(q_exact, k_desc, v_desc, LST, off + t, row0k, n_tgt, n_tot, nbt, BLK)
            acc, m_i, l_i = online_softmax_step(acc, m_i, l_i, s, v, exact_scale)

    if HAS_MEAN:
        mrow = tl.load(MROW + item)
        if mrow >= 0:
            pooled = bh.to(tl.int64) * nb * D
            for t in range(0, tl.cdiv(nb, BP)):
                use = mask_tile(MASK, mrow, t, nb, BP)
                if tl.max(use.to(tl.int32), 0) > 0:
                    s, km, vm = mean_scores(q, KM, VM, use, pooled, t, nb, n_tgt, n_tot, nbt, qk_scale, D, BP, BLK)
                    acc, m_i, l_i = online_softmax_step(acc, m_i, l_i, s, vm, 1.0)

    l_i = tl.where(l_i > 0, l_i, 1.0)  # rows of empty items (per-head padding) are not stored
    acc = acc / l_i[:, None]
    tl.store(O + q_offs, acc.to(O.dtype.element_ty), mask=qvalid[:, None])
    tl.store(LSE + row0.to(tl.int64) + qrows, m_i + tl.math.log2(l_i), mask=qvalid)


def softmax_scales(d: int) -> tuple[float, float]:
    """(qk_scale, sm_scale): the scale of base-2 logits (log2(e) / sqrt(d)) and the softmax scale 1 / sqrt(d)."""
    return LOG2E / math.sqrt(d), 1.0 / math.sqrt(d)


def geometry_args(q: torch.Tensor, layout: BlockLayout) -> tuple:
    """Scalar kernel arguments shared by all ISA kernels: sizes (key tokens n_tot, query tokens n_q), block
    counts (all nb, query nbq) and scales."""
    return (q.shape[1], layout.n_tgt, layout.n_tot, layout.n_q, layout.nbt, layout.nb, layout.nbq,
            *softmax_scales(q.shape[-1]))


def block_descriptor(x: torch.Tensor, block: int) -> TensorDescriptor:
    """TMA descriptor of contiguous [B, H, N, D] seen as [B * H * N, D], one block of rows per load."""
    flat = x.view(-1, x.shape[-1])
    return TensorDescriptor(flat, list(flat.shape), list(flat.stride()), [block, x.shape[-1]])


def launch_forward_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
                          km: torch.Tensor, vm: torch.Tensor, mask: torch.Tensor, work: Launch, layout: BlockLayout,
                          warps: int, stages: int, mean_tile_blocks: int, key_blocks: int = 1,
                          warp_specialize: bool = False, fp8: Fp8Scores | None = None) -> None:
    """Run one forward launch (sharp or flat items) by the Triton kernel, writing the rows of o and lse that its
    items own;
    key_blocks (1 or 2) listed key blocks per loop step; warp_specialize splits the exact loop into
    producer (TMA loads) and consumer warps (Triton's automatic warp specialisation); fp8: the exact scores
    from these fp8 copies of q and k."""
    if work.n_items == 0:
        return
    exact_k, q8, dequant = (k, q, lse) if fp8 is None else (fp8.k, fp8.q, fp8.dequant)  # unread without fp8
    _isa_fwd_kernel[(work.n_items,)](
        q, block_descriptor(exact_k, layout.block), block_descriptor(v, layout.block), o, lse, km, vm, mask,
        work.own, work.bh, work.off, work.cnt, work.lst, work.mrow, q8, dequant,
        *geometry_args(q, layout), D=q.shape[-1], BLK=layout.block, GQ=work.group, BP=mean_tile_blocks,
        HAS_MEAN=work.any_mean, KP=key_blocks, WS=warp_specialize, FP8=fp8 is not None, num_warps=warps,
        num_stages=stages)


def launch_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
                   km: torch.Tensor, vm: torch.Tensor, mask: torch.Tensor, work: Launch | None, layout: BlockLayout,
                   tiles: TileConfig, sharp: bool, fp8: Fp8Scores | None = None) -> None:
    """The forward's dispatcher: the sharp or the flat launch, by the warp-specialised Gluon kernel where it
    applies (Hopper, without fp8), else by the Triton one, with the tiles `tiles` gives that launch."""
    if work is None:
        return
    if fp8 is None and tiles.fwd_hopper and isa_forward_hopper.supported(q, work, layout):
        kb, stages = (tiles.hopper_key_blocks, tiles.hopper_stages) if sharp else (1, tiles.hopper_flat_stages)
        isa_forward_hopper.launch_forward_hopper(q, k, v, o, lse, km, vm, mask, work, layout,
                                                 softmax_scales(q.shape[-1])[0], kb, stages)
    elif sharp:
        launch_forward_triton(q, k, v, o, lse, km, vm, mask, work, layout, tiles.fwd_warps, tiles.fwd_stages,
                              tiles.mean_tile, tiles.fwd_key_blocks, tiles.fwd_warp_specialize, fp8)
    else:
        launch_forward_triton(q, k, v, o, lse, km, vm, mask, work, layout, tiles.flat_warps, tiles.flat_stages,
                              tiles.mean_tile, fp8=fp8)
