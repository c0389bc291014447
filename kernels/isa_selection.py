"""Work lists for the ISA kernels, built from an IsaSelection with cheap torch ops on block indices.

Every launch is a list of items; item i owns blocks own[i, :] (query blocks for forward and dq, key blocks
for dk/dv) and walks the block list lst[off[i] : off[i] + cnt[i]] on the other side. Sharp query blocks of
one (batch, head) share one key list (the kept blocks), so they are grouped g at a time into bigger tiles;
flat query blocks run one per item. All indices are int32 constants (no autograd through selection).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from kernels.isa_blocks import IsaSelection


@dataclass(frozen=True)
class Launch:
    """One kernel launch's items (see module docstring)."""

    own: torch.Tensor  # [n_items, g] int32, -1 pads a group
    bh: torch.Tensor  # [n_items] int32, flattened batch * heads index
    off: torch.Tensor  # [n_items] int32
    cnt: torch.Tensor  # [n_items] int32
    lst: torch.Tensor  # [*] int32 block ids
    mrow: torch.Tensor  # [n_items] int32: row of the mean mask (0-th order terms), -1 for none
    accumulate: torch.Tensor  # [n_items] int32: 1 where an earlier launch already wrote these rows
    any_mean: bool  # some item has 0-th order terms (mrow >= 0)

    @property
    def n_items(self) -> int:
        return self.own.shape[0]

    @property
    def group(self) -> int:
        return self.own.shape[1]


def _i32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.int32).contiguous()


def _launch(own: torch.Tensor, bh: torch.Tensor, off: torch.Tensor, cnt: torch.Tensor, lst: torch.Tensor,
            mrow: torch.Tensor, accumulate: torch.Tensor, any_mean: bool) -> Launch:
    return Launch(_i32(own), _i32(bh), _i32(off), _i32(cnt), _i32(lst), _i32(mrow), _i32(accumulate), any_mean)


def _grouped(blocks: torch.Tensor, g: int) -> torch.Tensor:
    """[BH, n] block ids -> [BH, ceil(n / g), g], padded with -1."""
    n = blocks.shape[-1]
    pad = -n % g
    if pad:
        blocks = torch.cat([blocks, blocks.new_full((blocks.shape[0], pad), -1)], dim=-1)
    return blocks.reshape(blocks.shape[0], -1, g)


def mean_rows(sel: IsaSelection) -> torch.Tensor:
    """0-th order term mask as int8 [BH * nbq, nb] (row = query block, column = key block); the same as
    block_masks(sel)[1] without building the exact mask: flat rows take the kept blocks they do not attend
    exactly (when mean_terms), and with dropped_mean every row takes the context blocks not kept."""
    nb, nbq, dev = sel.layout.nb, sel.layout.nbq, sel.kept.device
    b, h = sel.kept.shape[:2]
    is_kept = torch.zeros(b, h, nb, dtype=torch.int8, device=dev).scatter_(2, sel.kept, 1)
    dropped = torch.zeros_like(is_kept)
    if sel.dropped_mean:
        dropped[..., sel.layout.nbt:] = 1 - is_kept[..., sel.layout.nbt:]
    rows = dropped[..., None, :].expand(b, h, nbq + 1, nb).clone()  # row nbq absorbs per-head padding
    flat_terms = is_kept * int(sel.mean_terms) + dropped
    flat_rows = flat_terms[..., None, :].expand(*sel.flat.shape, nb).clone().scatter_(3, sel.flat_exact, 0)
    rows.scatter_(2, sel.flat[..., None].expand(-1, -1, -1, nb), flat_rows)
    return rows[:, :, :nbq].reshape(-1, nb)


def pack_bits(rows: torch.Tensor) -> torch.Tensor:
    """0/1 int8 [R, nb] -> int32 [R, ceil(nb / 32)], bit j % 32 of word j // 32 = rows[:, j] (8x smaller
    than the int8 mask; the kernels read bits)."""
    n_rows, nb = rows.shape
    n_words = -(-nb // 32)
    padded = torch.nn.functional.pad(rows, (0, n_words * 32 - nb)).reshape(n_rows, n_words, 32)
    weights = torch.ones(32, dtype=torch.int64, device=rows.device) << torch.arange(32, device=rows.device)
    words = (padded.to(torch.int64) * weights).sum(-1)
    return (words - ((words >> 31) << 32)).to(torch.int32)  # two's complement: bit 31 set -> negative


def query_launches(sel: IsaSelection, g_sharp: int) -> tuple[Launch, Launch | None]:
    """Forward / dq work: sharp query blocks in groups of g_sharp over the kept keys; flat blocks alone."""
    nb, nbq = sel.layout.nb, sel.layout.nbq
    kept = sel.kept.reshape(-1, sel.kept.shape[-1])
    n_bh, n_kept = kept.shape
    dev = kept.device
    n_ns = sel.flat_exact.shape[-1]
    # Known without a device sync: sharp rows have 0-th order terms only for dropped context blocks.
    sharp_mean = sel.dropped_mean and n_kept < nb
    flat_mean = sharp_mean or (sel.mean_terms and n_kept > n_ns)

    def mean_row(bh: torch.Tensor, first: torch.Tensor, any_mean: bool) -> torch.Tensor:
        return torch.where(first >= 0, bh * nbq + first, -1) if any_mean else torch.full_like(bh, -1)

    # Per-head counts pad the block lists with nbq: such items own -1 and walk nothing.
    sharp = _grouped(_unpadded(sel.sharp, nbq).reshape(n_bh, -1), g_sharp)
    per = sharp.shape[1]
    bh = torch.arange(n_bh, device=dev).repeat_interleave(per)
    own = sharp.reshape(-1, g_sharp)
    zeros = torch.zeros_like(bh)
    sharp_launch = _launch(own, bh, bh * n_kept, torch.where(own[:, 0] >= 0, n_kept, 0), kept.reshape(-1),
                           mean_row(bh, own[:, 0], sharp_mean), zeros, sharp_mean)
    n_flat = sel.flat.shape[-1]
    if n_flat == 0:
        return sharp_launch, None
    own = _unpadded(sel.flat, nbq).reshape(-1, 1)
    bh = torch.arange(n_bh, device=dev).repeat_interleave(n_flat)
    items = torch.arange(own.shape[0], device=dev)
    flat_launch = _launch(own, bh, items * n_ns, torch.where(own[:, 0] >= 0, n_ns, 0), sel.flat_exact.reshape(-1),
                          mean_row(bh, own[:, 0], flat_mean), torch.zeros_like(items), flat_mean)
    return sharp_launch, flat_launch


def _unpadded(blocks: torch.Tensor, nbq: int) -> torch.Tensor:
    """Block lists padded with nbq (per-head counts) -> padded with -1, the kernels' empty slot."""
    return torch.where(blocks < nbq, blocks, -1)


def key_launches(sel: IsaSelection, g_sharp: int) -> tuple[Launch, Launch]:
    """dk/dv work: kept key blocks in groups over all sharp query blocks, then every key block over its
    flat users (a transposed index of flat_exact), adding to what the first launch wrote."""
    nb, nbq = sel.layout.nb, sel.layout.nbq
    kept = sel.kept.reshape(-1, sel.kept.shape[-1])
    sharp = sel.sharp.reshape(kept.shape[0], -1)  # live blocks first, then nbq padding (per-head counts)
    n_bh, n_sharp = sharp.shape
    dev = kept.device
    groups = _grouped(kept, g_sharp)
    per = groups.shape[1]
    bh = torch.arange(n_bh, device=dev).repeat_interleave(per)
    minus = torch.full_like(bh, -1)
    live = (sharp < nbq).sum(-1)
    sharp_launch = _launch(groups.reshape(-1, g_sharp), bh, bh * n_sharp, live[bh], sharp.reshape(-1), minus,
                           torch.zeros_like(bh), False)

    # Padding rows of flat_exact get key nb: sorted last and counted in a column that is dropped.
    live_rows = (sel.flat < nbq)[..., None].expand_as(sel.flat_exact).reshape(n_bh, -1)
    keys = torch.where(live_rows, sel.flat_exact.reshape(n_bh, -1), nb)
    users = sel.flat[..., None].expand_as(sel.flat_exact).reshape(n_bh, -1)
    order = torch.sort(keys, dim=-1, stable=True).indices
    lst = torch.gather(users, 1, order)
    counts = torch.zeros(n_bh, nb + 1, dtype=torch.int64, device=dev).scatter_add_(1, keys, torch.ones_like(keys))
    counts = counts[:, :nb]
    starts = torch.cumsum(counts, dim=-1) - counts + torch.arange(n_bh, device=dev)[:, None] * keys.shape[-1]
    is_kept = torch.zeros(n_bh, nb, dtype=torch.int64, device=dev).scatter_(1, kept, 1)
    own = torch.arange(nb, device=dev).repeat(n_bh)
    flat_launch = _launch(own[:, None], torch.arange(n_bh, device=dev).repeat_interleave(nb), starts.reshape(-1),
                          counts.reshape(-1), lst.reshape(-1),
                          torch.full_like(own, -1), is_kept.reshape(-1), False)
    return sharp_launch, flat_launch
