"""Shapes and inputs of the ISA benchmark, and its two measurements: latency (median of do_bench) and error
against float64 dense attention.

Video-like inputs: smooth per-token features over a T x H x W grid (context = the source video, target = an
edited copy, both parts starting at position 0), projected per head with gains from broad to peaky, with 3D
RoPE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import triton

from kernels import dense_attention_f64


@dataclass(frozen=True)
class Shape:
    """One benchmark shape: target and context share the token grid (frames, height, width)."""

    grid: tuple[int, int, int]
    heads: int
    dim: int = 128

    @property
    def n_part(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]

    @property
    def label(self) -> str:
        return f"N={self.n_part}+{self.n_part} H={self.heads} D={self.dim}"



def _rope_3d(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotary embedding with the head dim split over (t, y, x) positions; x [H, N, D], pos [N, 3]."""
    d = x.shape[-1]
    split = [d // 4, 3 * d // 8, d - d // 4 - 3 * d // 8]
    angles = []
    for axis, width in enumerate(split):
        freqs = 10000.0 ** (-torch.arange(0, width, 2, device=x.device, dtype=torch.float32) / width)
        angles.append(pos[:, axis, None].float() * freqs)
    theta = torch.cat(angles, dim=-1)
    cos, sin = theta.cos(), theta.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


def video_like_qkv(shape: Shape, device: str, seed: int) -> tuple[torch.Tensor, ...]:
    """Smooth per-token features over the grid (context = source video, target = edited copy), projected
    per head, with 3D RoPE; bf16 [1, H, 2 * n_part, D]."""
    g = torch.Generator(device=device).manual_seed(seed)
    t, hh, ww = shape.grid
    pos = torch.stack(torch.meshgrid(torch.arange(t), torch.arange(hh), torch.arange(ww), indexing="ij"), -1)
    pos = pos.reshape(-1, 3).to(device)
    rel = pos.float() / torch.tensor([t, hh, ww], device=device)

    def field(n_feat: int) -> torch.Tensor:
        freqs = torch.randint(0, 4, (3, n_feat), generator=g, device=device).float()
        phase = torch.rand(n_feat, generator=g, device=device) * 2 * math.pi
        return torch.cos(2 * math.pi * rel @ freqs + phase)

    source = field(64)
    target = source + 0.5 * field(64)
    feats = torch.cat([target, source], dim=0)
    feats = feats + 0.1 * torch.randn(feats.shape, generator=g, device=device)
    full_pos = torch.cat([pos, pos], dim=0)
    # Heads range from broad (gain 0.4) to local and peaky (gain 1.2), as in video DiTs.
    gains = torch.linspace(0.4, 1.2, shape.heads, device=device)[:, None, None]
    out = []
    for is_value in (False, False, True):
        w = torch.randn(shape.heads, 64, shape.dim, generator=g, device=device) / math.sqrt(8)
        out.append(torch.einsum("nc,hcd->hnd", feats, w if is_value else w * gains))
    q, k = _rope_3d(out[0], full_pos), _rope_3d(out[1], full_pos)
    return tuple(x[None].to(torch.bfloat16).contiguous() for x in (q, k, out[2]))


def random_qkv(shape: Shape, device: str, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator(device=device).manual_seed(seed)
    n = 2 * shape.n_part
    return tuple(torch.randn(1, shape.heads, n, shape.dim, generator=g, device=device).to(torch.bfloat16)
                 for _ in range(3))



def bench_ms(fn, backward: bool, q, k, v) -> float:
    """Median ms of fn (forward under no_grad, or forward + backward of a random output gradient)."""
    if not backward:
        with torch.no_grad():
            return triton.testing.do_bench(lambda: fn(q, k, v), warmup=25, rep=200, return_mode="median")
    qg, kg, vg = (x.detach().clone().requires_grad_() for x in (q, k, v))
    do = torch.randn_like(q)
    return triton.testing.do_bench(lambda: fn(qg, kg, vg).backward(do), warmup=25, rep=200,
                                   grad_to_none=[qg, kg, vg], return_mode="median")


def error_vs_f64(fn, q, k, v, rows: torch.Tensor, heads: int) -> dict:
    """Relative L2 and cosine of fn's output vs float64 dense attention on the chosen rows and heads."""
    with torch.no_grad():
        out = fn(q, k, v)[:, :heads, rows].double()
        ref = dense_attention_f64(q[:, :heads], k[:, :heads], v[:, :heads], rows)
    rel = ((out - ref).norm() / ref.norm()).item()
    cos = F.cosine_similarity(out.flatten(), ref.flatten(), dim=0).item()
    return {"rel_l2": rel, "cosine": cos}


def fmt(x, spec: str) -> str:
    """A table cell: '-' for a missing number."""
    return "-" if x is None else format(x, spec)
