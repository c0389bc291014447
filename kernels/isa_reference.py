"""Readable PyTorch oracle of In-context Sparse Attention (DESIGN section 6) plus float64 dense attention.

It pools with `pool_blocks` and selects with `isa_blocks.select_blocks`, the selection the Triton path uses
too, so both paths agree on which blocks are exact, which contribute their 0-th order term, and which are
dropped.
"""
from __future__ import annotations

import math

import torch

from kernels.isa_blocks import BlockLayout, IsaSelection, block_masks, layout_for, select_blocks
from kernels.isa_config import IsaConfig


def pool_blocks(x: torch.Tensor, layout: BlockLayout) -> torch.Tensor:
    """Per-block means in fp32 (valid tokens only), shape [B, H, nb, D] (nbt blocks for target-only
    queries, x [B, H, n_tgt, D]); differentiable."""
    n_blocks = layout.nbt if x.shape[2] == layout.n_tgt else layout.nb
    tb = layout.token_block(x.device)[:x.shape[2]]
    sums = x.new_zeros(*x.shape[:2], n_blocks, x.shape[-1], dtype=torch.float32)
    sums = sums.index_add(2, tb, x.float())
    return sums / layout.lengths(x.device)[:n_blocks].to(torch.float32)[:, None]


def attention_from_selection(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sel: IsaSelection) -> torch.Tensor:
    """ISA output for a given selection, token-level softmax over exact keys and merged 0-th order terms.

    Computes in fp32 (or fp64 for fp64 inputs), one (batch, head) at a time; differentiable in q, k, v.
    """
    dt = torch.promote_types(q.dtype, torch.float32)
    layout = sel.layout
    tb = layout.token_block(q.device)
    tq = tb[:q.shape[2]]  # query tokens' blocks (the target alone for target-only queries)
    scale = 1.0 / math.sqrt(q.shape[-1])
    km = pool_blocks(k, layout).to(dt)
    vm = pool_blocks(v, layout).to(dt)
    exact_blocks, mean_blocks = block_masks(sel)
    rows = []
    for b in range(q.shape[0]):
        heads = []
        for h in range(q.shape[1]):
            qf, kf, vf = q[b, h].to(dt), k[b, h].to(dt), v[b, h].to(dt)
            exact = exact_blocks[b, h][tq][:, tb]
            mean = mean_blocks[b, h][tq][:, tb]
            s_exact = qf @ kf.T * scale
            s_mean = (qf @ km[b, h].T * scale)[:, tb]
            s = torch.where(exact, s_exact, torch.where(mean, s_mean, float("-inf")))
            p = torch.softmax(s, dim=-1)
            heads.append((p * exact) @ vf + (p * mean) @ vm[b, h][tb])
        rows.append(torch.stack(heads))
    return torch.stack(rows)


_DEFAULT_CONFIG = IsaConfig()  # frozen, so one instance serves every call


def isa_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, cfg: IsaConfig = _DEFAULT_CONFIG
                  ) -> torch.Tensor:
    """The oracle: pool, select, attend; output in q's dtype and shape ([B, H, N, D], or [B, H, N_tgt, D]
    for target-only queries)."""
    layout = layout_for(q, k, n_ctx, cfg.block)
    sel = select_blocks(pool_blocks(q.detach(), layout), pool_blocks(k.detach(), layout), layout, cfg)
    return attention_from_selection(q, k, v, sel).to(q.dtype)


def dense_attention_f64(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rows: torch.Tensor | None = None,
                        ) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) v in float64, optionally for a subset of query rows only."""
    qd = q.double() if rows is None else q[:, :, rows].double()
    s = qd @ k.double().transpose(-1, -2) / math.sqrt(q.shape[-1])
    return torch.softmax(s, dim=-1) @ v.double()
