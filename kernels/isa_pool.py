"""Triton pooling: one pass over q, k, v writing fp32 block means (valid tokens only)."""
from __future__ import annotations

from typing import overload

import torch
import triton
import triton.language as tl

from kernels.isa_blocks import BlockLayout
from kernels.isa_tiles import block_span


@triton.jit
def _pool_rows(X, XM, base, s_n, rows, valid, inv, out, D: tl.constexpr):
    d = tl.arange(0, D)
    x = tl.load(X + base + rows[:, None].to(tl.int64) * s_n + d[None, :], mask=valid[:, None], other=0.0)
    tl.store(XM + out, tl.sum(x.to(tl.float32), 0) * inv)


@triton.jit
def _pool_kernel(Q, K, V, QM, KM, VM, q_sb, q_sh, s_b, s_h, s_n, H, n_tgt, n_tot, nbt, nb, nbq,
                 D: tl.constexpr, BLK: tl.constexpr, POOL_Q: tl.constexpr, POOL_V: tl.constexpr):
    bh = tl.program_id(0)
    blk = tl.program_id(1)
    start, end = block_span(blk, n_tgt, n_tot, nbt, BLK)
    rows = start + tl.arange(0, BLK)
    valid = rows < end
    inv = 1.0 / (end - start).to(tl.float32)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    d = tl.arange(0, D)
    out = (bh.to(tl.int64) * nb + blk) * D + d
    _pool_rows(K, KM, b * s_b + h * s_h, s_n, rows, valid, inv, out, D)
    if POOL_V:
        _pool_rows(V, VM, b * s_b + h * s_h, s_n, rows, valid, inv, out, D)
    if POOL_Q:
        if blk < nbq:
            out_q = (bh.to(tl.int64) * nbq + blk) * D + d
            _pool_rows(Q, QM, b * q_sb + h * q_sh, s_n, rows, valid, inv, out_q, D)


# The outputs for q and v are tensors exactly when q and v are given (pooled).
@overload
def pool_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
             out: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


@overload
def pool_qkv(q: None, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
             out: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
             ) -> tuple[None, torch.Tensor, torch.Tensor]: ...


@overload
def pool_qkv(q: torch.Tensor, k: torch.Tensor, v: None, layout: BlockLayout,
             out: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, None]: ...


def pool_qkv(q: torch.Tensor | None, k: torch.Tensor, v: torch.Tensor | None, layout: BlockLayout,
             out: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
             ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """Block means as contiguous fp32 [B, H, nb, D] (q: [B, H, nbq, D]) in one pass, into `out` if given;
    q or v may be None (not pooled). k and v share strides, every last dim is contiguous, q and k share the
    token stride."""
    b, h, n, d = k.shape
    if out is None:
        out = (torch.empty(b, h, layout.nbq, d, device=k.device, dtype=torch.float32),
               torch.empty(b, h, layout.nb, d, device=k.device, dtype=torch.float32),
               torch.empty(b, h, layout.nb, d, device=k.device, dtype=torch.float32))
    qm, km, vm = (out[0] if q is not None else None), out[1], (out[2] if v is not None else None)
    qs = k if q is None else q
    _pool_kernel[(b * h, layout.nb)](qs, k, k if v is None else v, km if qm is None else qm, km,
                                     km if vm is None else vm, qs.stride(0), qs.stride(1), k.stride(0), k.stride(1),
                                     k.stride(2), h, layout.n_tgt, n, layout.nbt, layout.nb, layout.nbq,
                                     D=d, BLK=layout.block, POOL_Q=q is not None, POOL_V=v is not None)
    return qm, km, vm
