"""Triton pooling: one pass over q, k, v writing fp32 block means (valid tokens only)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.isa_reference import BlockLayout
from kernels.isa_tiles import block_span


@triton.jit
def _pool_kernel(Q, K, V, QM, KM, VM, s_b, s_h, s_n, H, n_tgt, n_tot, nbt, nb,
                 D: tl.constexpr, BLK: tl.constexpr):
    bh = tl.program_id(0)
    blk = tl.program_id(1)
    start, end = block_span(blk, n_tgt, n_tot, nbt, BLK)
    rows = start + tl.arange(0, BLK)
    valid = rows < end
    d = tl.arange(0, D)
    offs = (bh // H).to(tl.int64) * s_b + (bh % H).to(tl.int64) * s_h + rows[:, None].to(tl.int64) * s_n + d[None, :]
    inv = 1.0 / (end - start).to(tl.float32)
    out = (bh.to(tl.int64) * nb + blk) * D + d
    q = tl.load(Q + offs, mask=valid[:, None], other=0.0).to(tl.float32)
    tl.store(QM + out, tl.sum(q, 0) * inv)
    k = tl.load(K + offs, mask=valid[:, None], other=0.0).to(tl.float32)
    tl.store(KM + out, tl.sum(k, 0) * inv)
    v = tl.load(V + offs, mask=valid[:, None], other=0.0).to(tl.float32)
    tl.store(VM + out, tl.sum(v, 0) * inv)


def pool_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Block means of q, k, v as contiguous fp32 [B, H, nb, D] (q, k, v share strides, last dim contiguous)."""
    b, h, n, d = q.shape
    outs = [torch.empty(b, h, layout.nb, d, device=q.device, dtype=torch.float32) for _ in range(3)]
    _pool_kernel[(b * h, layout.nb)](q, k, v, *outs, q.stride(0), q.stride(1), q.stride(2), h,
                                     layout.n_tgt, n, layout.nbt, layout.nb, D=d, BLK=layout.block)
    return outs[0], outs[1], outs[2]
