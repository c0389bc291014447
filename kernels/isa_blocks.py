"""Which key blocks each query block sees: the block layout and the selection of DESIGN 6, steps 2 to 4.

One definition for both paths: the Triton path selects on its own pooled tensors (`isa_pool.py`), the torch
reference (`isa_reference.py`) on `pool_blocks`'s; `block_masks` spells a selection out as dense masks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from kernels.isa_config import IsaConfig, keep_count


@dataclass(frozen=True)
class BlockLayout:
    """Blocks of `block` tokens cut from 0 in the target and from n_tgt in the context.

    With target_only the queries are the target tokens alone (context K/V cache): query blocks are the
    nbt target blocks, key blocks all nb.
    """

    n_tgt: int
    n_ctx: int
    block: int
    target_only: bool = False

    @property
    def nbt(self) -> int:
        return -(-self.n_tgt // self.block)

    @property
    def nbc(self) -> int:
        return -(-self.n_ctx // self.block)

    @property
    def nb(self) -> int:
        return self.nbt + self.nbc

    @property
    def n_tot(self) -> int:
        return self.n_tgt + self.n_ctx

    @property
    def n_q(self) -> int:
        """Query tokens: the target alone with target_only, else every token."""
        return self.n_tgt if self.target_only else self.n_tot

    @property
    def nbq(self) -> int:
        """Query blocks (the first nbq blocks of the layout)."""
        return self.nbt if self.target_only else self.nb

    def starts(self, device: torch.device | str = "cpu") -> torch.Tensor:
        j = torch.arange(self.nb, device=device)
        return torch.where(j < self.nbt, j * self.block, self.n_tgt + (j - self.nbt) * self.block)

    def lengths(self, device: torch.device | str = "cpu") -> torch.Tensor:
        j = torch.arange(self.nb, device=device)
        ends = torch.where(j < self.nbt, self.n_tgt, self.n_tgt + self.n_ctx)
        return torch.clamp(ends - self.starts(device), max=self.block)

    def token_block(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Block id of every token, shape [N]."""
        t = torch.arange(self.n_tgt + self.n_ctx, device=device)
        return torch.where(t < self.n_tgt, t // self.block, self.nbt + (t - self.n_tgt) // self.block)


@dataclass(frozen=True)
class IsaSelection:
    """Which key blocks each query block sees, per (batch, head); indices are constants for autograd.

    Sharp query blocks attend exactly to every kept key block; flat query blocks attend exactly to their
    flat_exact blocks and take every other kept block as its 0-th order term; with dropped_mean, context
    blocks not kept enter every query block as 0-th order terms. `block_masks` spells this out.
    """

    layout: BlockLayout
    kept: torch.Tensor  # [B, H, n_kept] key blocks kept by pre-selection, ascending
    sharp: torch.Tensor  # [B, H, n_sharp] query blocks with exact attention, ascending (*)
    flat: torch.Tensor  # [B, H, n_flat] the other query blocks, ascending (*)
    flat_exact: torch.Tensor  # [B, H, n_flat, n_ns] exact key blocks of each flat query block, ascending
    dropped_mean: bool
    mean_terms: bool = True  # False: flat blocks ignore their non-exact kept blocks (plain block-sparse top-k)
    # (*) with per-head counts (IsaConfig.per_head_alpha_f) both are [B, H, nbq], padded at the end with nbq.


def layout_for(q: torch.Tensor, k: torch.Tensor, n_ctx: int, block: int) -> BlockLayout:
    """The block layout of checked inputs: target-only queries when q has fewer tokens than k."""
    return BlockLayout(k.shape[2] - n_ctx, n_ctx, block, target_only=q.shape[2] < k.shape[2])


def _top_ascending(score: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Indices of the n_keep largest scores along the last dim (ties: lower index), ascending."""
    order = torch.sort(score, dim=-1, descending=True, stable=True).indices[..., :n_keep]
    return torch.sort(order, dim=-1).values


def select_context_blocks(qm: torch.Tensor, km: torch.Tensor, layout: BlockLayout, alpha_s: float) -> torch.Tensor:
    """Kept key blocks [B, H, n_kept]: all target blocks plus the most salient context blocks."""
    b, h, nbt = qm.shape[0], qm.shape[1], layout.nbt
    target = torch.arange(nbt, device=qm.device).expand(b, h, nbt)
    if layout.nbc == 0:
        return target
    logits = qm[:, :, :nbt] @ km.transpose(-1, -2) / math.sqrt(qm.shape[-1])
    saliency = torch.softmax(logits, dim=-1)[..., nbt:].sum(dim=-2)
    chosen = _top_ascending(saliency, keep_count(alpha_s, layout.nbc)) + nbt
    return torch.cat([target, chosen], dim=-1)


def pooled_logits_over_kept(qm: torch.Tensor, km: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """q_mean_i . k_mean_j / sqrt(D) for every query block i and kept key block j: [B, H, nb, n_kept]."""
    km_kept = torch.gather(km, 2, kept[..., None].expand(-1, -1, -1, km.shape[-1]))
    return qm @ km_kept.transpose(-1, -2) / math.sqrt(qm.shape[-1])


def sharpness(pooled_logits: torch.Tensor) -> torch.Tensor:
    """sum_j p_j^2 of the pooled softmax of each query block over the kept key blocks: [B, H, nb]."""
    p = torch.softmax(pooled_logits, dim=-1)
    return (p * p).sum(dim=-1)


def sharp_across_heads(score: torch.Tensor, n_per_head: int) -> torch.Tensor:
    """Per-head alpha_f from pooled sharpness: bool [B, H, nq]. Each batch element's budget of H * n_per_head
    sharp blocks goes to its sharpest (head, block) pairs over all heads (ties: lower index), every head
    keeping at least its sharpest block; peaky heads get more exact blocks, broad heads fewer."""
    b, h, nq = score.shape
    boosted = score.scatter(2, score.argmax(-1, keepdim=True), float("inf"))
    top = torch.sort(boosted.reshape(b, h * nq), dim=-1, descending=True, stable=True).indices[:, :h * n_per_head]
    return torch.zeros(b, h * nq, dtype=torch.bool, device=score.device).scatter_(1, top, True).reshape(b, h, nq)


def _split_padded(is_sharp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sharp and flat block ids [B, H, nq] each, ascending, padded at the end with nq (counts vary by head)."""
    nq = is_sharp.shape[-1]
    pos = torch.arange(nq, device=is_sharp.device)
    n_sharp = is_sharp.sum(-1, keepdim=True)
    sharp_first = torch.argsort((~is_sharp).to(torch.int8), dim=-1, stable=True)
    flat_first = torch.argsort(is_sharp.to(torch.int8), dim=-1, stable=True)
    return (torch.where(pos < n_sharp, sharp_first, nq), torch.where(pos < nq - n_sharp, flat_first, nq))


def select_blocks(qm: torch.Tensor, km: torch.Tensor, layout: BlockLayout, cfg: IsaConfig) -> IsaSelection:
    """Steps 2 to 4 of DESIGN 6 on pooled q ([B, H, nbq, D]) and k ([B, H, nb, D]), fp32."""
    with torch.no_grad():
        nq, dev = layout.nbq, qm.device
        kept = select_context_blocks(qm, km, layout, cfg.alpha_s)
        logits = pooled_logits_over_kept(qm, km, kept)
        n_sharp = keep_count(cfg.alpha_f, nq)
        if cfg.per_head_alpha_f:
            sharp, flat = _split_padded(sharp_across_heads(sharpness(logits), n_sharp))
        else:
            sharp = _top_ascending(sharpness(logits), n_sharp)
            is_sharp = torch.zeros(*qm.shape[:2], nq, dtype=torch.int8, device=dev).scatter_(2, sharp, 1)
            flat = torch.argsort(is_sharp, dim=-1, stable=True)[..., :nq - n_sharp]
        rows = flat.clamp(max=nq - 1)  # padding rows (per-head counts) take any row; they are never used
        flat_logits = torch.gather(logits, 2, rows[..., None].expand(-1, -1, -1, logits.shape[-1]))
        pos = _top_ascending(flat_logits, keep_count(cfg.alpha_ns, kept.shape[-1]))
        flat_exact = torch.gather(kept[:, :, None, :].expand(-1, -1, flat.shape[-1], -1), 3, pos)
    return IsaSelection(layout, kept, sharp, flat, flat_exact, cfg.dropped_mean, cfg.mean_terms)


def block_masks(sel: IsaSelection) -> tuple[torch.Tensor, torch.Tensor]:
    """exact[b, h, i, j]: query block i attends to key block j token by token; mean[b, h, i, j]: key block j
    enters query block i's softmax as its 0-th order term. Both bool [B, H, nbq, nb]."""
    nb, nbq, dev = sel.layout.nb, sel.layout.nbq, sel.kept.device
    batch_heads = sel.kept.shape[:2]
    # One extra row (index nbq) absorbs the padding of per-head sharp/flat lists.
    is_sharp = torch.zeros(*batch_heads, nbq + 1, dtype=torch.bool, device=dev).scatter_(2, sel.sharp, True)
    is_kept = torch.zeros(*batch_heads, nb, dtype=torch.bool, device=dev).scatter_(2, sel.kept, True)
    exact = is_sharp[..., :, None] & is_kept[..., None, :]
    flat_rows = torch.zeros(*sel.flat.shape, nb, dtype=torch.bool, device=dev).scatter_(3, sel.flat_exact, True)
    exact = exact.scatter(2, sel.flat[..., None].expand(-1, -1, -1, nb), flat_rows)[..., :nbq, :]
    is_sharp = is_sharp[..., :nbq]
    mean = (~is_sharp)[..., :, None] & is_kept[..., None, :] & ~exact & sel.mean_terms
    if sel.dropped_mean:
        is_ctx = torch.arange(nb, device=dev) >= sel.layout.nbt
        mean = mean | (is_ctx & ~is_kept)[..., None, :]
    return exact, mean
