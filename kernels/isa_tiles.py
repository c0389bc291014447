"""Triton helpers shared by the ISA kernels: block geometry, rows of block groups, online softmax.

A program owns a group of G blocks (its G * BLK rows are addressed in place in the [B, H, N, D] tensors)
and walks a list of blocks on the other side, one block per step, each loaded through a TMA descriptor
over the [B * H * N, D] view starting at the block's first token (no gathered copies). Rows past a
partial block's end are masked out of the scores.
"""
import triton
import triton.language as tl


@triton.jit
def block_span(blk, n_tgt, n_tot, nbt, BLK: tl.constexpr):
    """First token and end token (exclusive) of block `blk`: target blocks from 0, context from n_tgt."""
    is_tgt = blk < nbt
    start = tl.where(is_tgt, blk * BLK, n_tgt + (blk - nbt) * BLK)
    end = tl.minimum(tl.where(is_tgt, n_tgt, n_tot), start + BLK)
    return start, end


@triton.jit
def group_rows(ids_ptr, base, n_tgt, n_tot, nbt, G: tl.constexpr, BLK: tl.constexpr):
    """Token rows and validity of the G blocks ids_ptr[base : base + G] (-1 pads a group)."""
    r = tl.arange(0, G * BLK)
    blk = tl.load(ids_ptr + base + r // BLK)
    start, end = block_span(blk, n_tgt, n_tot, nbt, BLK)
    rows = start + r % BLK
    valid = (blk >= 0) & (rows < end)
    return tl.where(valid, rows, 0), valid


@triton.jit
def owned_group(OWN, BH, OFF, CNT, item, n_rows, n_tgt, n_tot, nbt,
                D: tl.constexpr, G: tl.constexpr, BLK: tl.constexpr):
    """Program `item`'s head (bh, first row row0 = bh * n_rows in the owned tensor), its G blocks' rows,
    validity and [rows, D] offsets, and the start and length of the block list it walks."""
    bh = tl.load(BH + item)
    row0 = bh * n_rows
    rows, valid = group_rows(OWN, item * G, n_tgt, n_tot, nbt, G, BLK)
    offs = (row0 + rows)[:, None].to(tl.int64) * D + tl.arange(0, D)[None, :]
    return bh, row0, rows, valid, offs, tl.load(OFF + item), tl.load(CNT + item)


@triton.jit
def mask_partial(s, start, end, BLK: tl.constexpr):
    """-inf in the columns of s [M, BLK] past the listed block's end; only a part's last block is partial,
    so full blocks skip the select."""
    if end - start < BLK:
        s = tl.where((tl.arange(0, BLK) < end - start)[None, :], s, float("-inf"))
    return s


@triton.jit
def exact_scores(q, k_desc, v_desc, LST, idx, row0, n_tgt, n_tot, nbt, BLK: tl.constexpr):
    """Unscaled scores q . k of key block LST[idx] (-inf past its end), with the block's K and V tiles. The
    softmax scale is applied later inside the exp2 argument (one FMA per score instead of a multiply and a
    subtract, as the max is taken on unscaled scores)."""
    start, end = block_span(tl.load(LST + idx), n_tgt, n_tot, nbt, BLK)
    k = k_desc.load([row0 + start, 0])
    v = v_desc.load([row0 + start, 0])
    s = mask_partial(tl.dot(q, tl.trans(k)), start, end, BLK)
    return s, k, v


@triton.jit
def online_softmax_step(acc, m_i, l_i, s, v, scale):
    """Merge one tile of scores s [M, N] (base-2 logits s * scale, scale > 0) with values v [N, D] into the
    running softmax."""
    m_new = tl.maximum(m_i, tl.max(s, 1) * scale)
    alpha = tl.math.exp2(m_i - m_new)
    p = tl.math.exp2(s * scale - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, m_new, l_i


@triton.jit
def online_softmax_pair(acc, m_i, l_i, s, v, s2, v2, scale):
    """online_softmax_step over two key tiles at once (one max, one rescale of acc for both)."""
    m_new = tl.maximum(m_i, tl.maximum(tl.max(s, 1), tl.max(s2, 1)) * scale)
    alpha = tl.math.exp2(m_i - m_new)
    p = tl.math.exp2(s * scale - m_new[:, None])
    p2 = tl.math.exp2(s2 * scale - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1) + tl.sum(p2, 1)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc)
    acc = tl.dot(p2.to(v2.dtype), v2, acc)
    return acc, m_new, l_i


@triton.jit
def pooled_tile(KM, VM, pooled_base, t, nb, n_tgt, n_tot, nbt, dtype,
                D: tl.constexpr, BP: tl.constexpr, BLK: tl.constexpr):
    """Pooled keys/values of blocks t*BP .. t*BP+BP-1 (cast to dtype) and log2 of their token counts."""
    j = t * BP + tl.arange(0, BP)
    d = tl.arange(0, D)
    offs = pooled_base + j[:, None].to(tl.int64) * D + d[None, :]
    km = tl.load(KM + offs, mask=(j < nb)[:, None], other=0.0).to(dtype)
    vm = tl.load(VM + offs, mask=(j < nb)[:, None], other=0.0).to(dtype)
    start, end = block_span(j, n_tgt, n_tot, nbt, BLK)
    log2n = tl.math.log2(tl.maximum(end - start, 1).to(tl.float32))
    return km, vm, log2n


@triton.jit
def mean_scores(q, KM, VM, use, pooled_base, t, nb, n_tgt, n_tot, nbt, qk_scale,
                D: tl.constexpr, BP: tl.constexpr, BLK: tl.constexpr):
    """Base-2 logits of the 0-th order terms q . k_mean_j + log2(n_j) of pooled tile t (-inf where unused),
    with the tile's pooled keys and values."""
    km, vm, log2n = pooled_tile(KM, VM, pooled_base, t, nb, n_tgt, n_tot, nbt, q.dtype, D, BP, BLK)
    s = tl.dot(q, tl.trans(km)) * qk_scale + log2n[None, :]
    return tl.where(use[None, :], s, float("-inf")), km, vm


@triton.jit
def mask_tile(MASK, mrow, t, nb, BP: tl.constexpr):
    """Which of blocks t*BP .. t*BP+BP-1 enter query block row `mrow` as 0-th order terms (bit-packed mask
    rows of ceil(nb / 32) int32 words)."""
    j = t * BP + tl.arange(0, BP)
    words = tl.load(MASK + mrow.to(tl.int64) * ((nb + 31) // 32) + j // 32, mask=j < nb, other=0)
    return ((words >> (j % 32)) & 1) != 0


@triton.jit
def grad_scores(s, scale, lse, delta, do, v):
    """dS of one tile from scores s [M, N] (base-2 logits s * scale; -inf where masked): p * (dO v^T - delta)."""
    p = tl.math.exp2(s * scale - lse[:, None])
    dp = tl.dot(do, tl.trans(v))
    return p, p * (dp - delta[:, None])
