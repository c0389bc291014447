"""segment-anything's image-encoder attention as one fused scaled_dot_product_attention call.

Its blocks add decomposed relative positions to the attention logits: for a query at (qh, qw) and a key at
(kh, kw) the logit is scale * q.k + rel_h[q, kh] + rel_w[q, kw], where rel_h = q . Rh[qh] (one number per key
row) and rel_w = q . Rw[qw] (per key column). The library builds the whole (tokens x tokens) logit matrix in
fp32 to add them, then softmax, then a second matmul: 4,096 tokens in a global block is 0.8 GB a frame and
most of the encoder's time in memory traffic. The same logits are a plain dot product of longer vectors:

    q' = [scale * q, rel_h, rel_w]      k' = [k, onehot(kh), onehot(kw)]      q'.k' = the logit above

so one flash/memory-efficient attention call with scale 1 computes them without materialising the matrix
(head dim 64 + 64 + 64 in a 64x64 global block, 64 + 14 + 14 in a 14x14 window). `fuse_encoder_attention`
swaps each block's attention for this form, sharing the block's weights, so weights load as before.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


def rel_pos_terms(
    q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rel_h (B, H*W, H), rel_w (B, H*W, W)): each query's relative-position logit per key row and per key
    column, for q (B, H*W, C) on an H x W grid attending to the same grid."""
    from segment_anything.modeling.image_encoder import get_rel_pos

    h, w = size
    b, _, c = q.shape
    r_q = q.reshape(b, h, w, c)
    rh, rw = get_rel_pos(h, h, rel_pos_h), get_rel_pos(w, w, rel_pos_w)  # (H, H, C), (W, W, C)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh).reshape(b, h * w, h)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw).reshape(b, h * w, w)
    return rel_h, rel_w


def key_position_codes(size: tuple[int, int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(H*W, H + W): each key's row and column as one-hot codes, the keys' half of the position dot product."""
    h, w = size
    rows = torch.arange(h, device=device).repeat_interleave(w)  # (H*W,)
    cols = torch.arange(w, device=device).repeat(h)  # (H*W,)
    return torch.cat([F.one_hot(rows, h), F.one_hot(cols, w)], dim=-1).to(dtype)


def rel_pos_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor,
    size: tuple[int, int], scale: float,
) -> torch.Tensor:
    """softmax(scale * q k^T + rel_h[kh] + rel_w[kw]) v through one SDPA call, for q, k, v (B, N, C) and the
    terms of `rel_pos_terms`; (B, N, C)."""
    b, n, c = q.shape
    codes = key_position_codes(size, k.dtype, k.device).expand(b, n, -1)  # (B, N, H + W)
    q_ext = torch.cat([q * scale, rel_h.to(q.dtype), rel_w.to(q.dtype)], dim=-1)  # (B, N, C + H + W)
    k_ext = torch.cat([k, codes], dim=-1)  # (B, N, C + H + W)
    width = -(-q_ext.shape[-1] // 8) * 8  # kernels want a head dim that is a multiple of 8
    pad = (0, width - q_ext.shape[-1])
    q_ext, k_ext, v_ext = F.pad(q_ext, pad), F.pad(k_ext, pad), F.pad(v, (0, width - c))  # (B, N, width)
    out = F.scaled_dot_product_attention(q_ext[:, None], k_ext[:, None], v_ext[:, None], scale=1.0)  # (B, 1, N, width)
    return out[:, 0, :, :c]


class FusedRelPosAttention(nn.Module):
    """Drop-in for segment-anything's `Attention` (same parameters, same output), computed by
    `rel_pos_attention`."""

    def __init__(self, attention: nn.Module) -> None:
        super().__init__()
        self.num_heads: int = int(cast(int, attention.num_heads))
        self.scale: float = float(cast(float, attention.scale))
        self.qkv, self.proj = cast(nn.Linear, attention.qkv), cast(nn.Linear, attention.proj)
        self.rel_pos_h, self.rel_pos_w = cast(nn.Parameter, attention.rel_pos_h), cast(nn.Parameter, attention.rel_pos_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)  # (3, B, heads, N, C)
        q, k, v = qkv.reshape(3, b * self.num_heads, h * w, -1).unbind(0)  # each (B*heads, N, C)
        rel_h, rel_w = rel_pos_terms(q, self.rel_pos_h, self.rel_pos_w, (h, w))
        out = rel_pos_attention(q, k, v, rel_h, rel_w, (h, w), self.scale)  # (B*heads, N, C)
        out = out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)  # (B, H, W, dim)
        return self.proj(out)


def fuse_encoder_attention(encoder: nn.Module) -> int:
    """Swap the attention of every block of segment-anything's `ImageEncoderViT` for the fused form (its
    parameters shared, so a state dict loads before or after); returns how many were swapped."""
    swapped = 0
    for block in cast(nn.ModuleList, encoder.blocks):
        if getattr(block.attn, "use_rel_pos", False):
            block.attn = FusedRelPosAttention(cast(nn.Module, block.attn))
            swapped += 1
    return swapped
