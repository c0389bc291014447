"""LIVEditor: a video diffusion transformer that edits in context (DESIGN section 7).

One sequence per sample: noisy target tokens first, then the source clip's (context) tokens, both 3D
patches with 3D RoPE positions starting at 0. Timestep and instruction (open_clip text tower, pooled;
text.py) condition every block through adaLN-Zero, as in DiT; with `text_attention` each block also reads
the instruction's words. With `clip_coords` each token also gets its place in the whole clip the sample was
cut from: RoPE sees only differences of positions, and an instruction names places in the whole clip ("on
the left"), which a random crop moves. Every self-attention is ISA (`kernels.isa_attention`) or dense SDPA.
In context-cache mode the source tokens are conditioned at timestep 0 and attend only to each other, so
their keys/values are computed once per sample and reused at every denoising step.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from isa_model.config import ModelConfig
from isa_model.layout import LAYOUT_FEATURES, LAYOUT_SIZE, layout_features
from isa_model.text import TextEncoder, WordAttention, pooled_text, text_words
from kernels import TileConfig, isa_attention

COORD_BANDS = 6
"""Frequencies per axis of a token's place in its clip (model.clip_coords): pi * 2**k for k < 6. The lowest has
period 2, so a place in [0, 1] is never ambiguous; the highest 1/16, under the width of the places an instruction
named up to pairs stage 1.4 (a 14 x 14 grid)."""


# ---------------------------------------------------------------- pure pieces (testable alone)

def patchify(video: torch.Tensor, patch: tuple[int, int, int]) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, Tn*Hn*Wn, C*pt*ph*pw), tokens in (t, h, w) raster order."""
    b, c, t, h, w = video.shape
    pt, ph, pw = patch
    x = video.reshape(b, c, t // pt, pt, h // ph, ph, w // pw, pw)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, Tn, Hn, Wn, C, pt, ph, pw)
    return x.reshape(b, (t // pt) * (h // ph) * (w // pw), c * pt * ph * pw)


def unpatchify(tokens: torch.Tensor, patch: tuple[int, int, int], grid: tuple[int, int, int], channels: int
               ) -> torch.Tensor:
    """Inverse of `patchify`: (B, N, C*pt*ph*pw) -> (B, C, T, H, W)."""
    b = tokens.shape[0]
    (pt, ph, pw), (tn, hn, wn) = patch, grid
    x = tokens.reshape(b, tn, hn, wn, channels, pt, ph, pw)
    x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)  # (B, C, Tn, pt, Hn, ph, Wn, pw)
    return x.reshape(b, channels, tn * pt, hn * ph, wn * pw)


def patch_grid(video_shape: torch.Size, patch: tuple[int, int, int]) -> tuple[int, int, int]:
    """(Tn, Hn, Wn): the token grid of a (..., T, H, W) video."""
    (t, h, w), (pt, ph, pw) = video_shape[-3:], patch
    return t // pt, h // ph, w // pw


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Head channels given to the (t, h, w) axes; each even, t gets a quarter."""
    dt = (head_dim // 4) // 2 * 2
    dh = (head_dim - dt) // 4 * 2
    return dt, dh, head_dim - dt - dh


def rope_3d(grid: tuple[int, int, int], head_dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables (N, head_dim/2) for a (Tn, Hn, Wn) grid whose positions start at 0."""
    angles = []
    axes = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in grid), indexing="ij")
    for pos, d in zip(axes, rope_split(head_dim)):
        freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
        angles.append(pos.reshape(-1, 1) * freqs)  # (N, d/2)
    a = torch.cat(angles, dim=1)  # (N, head_dim/2)
    return a.cos().float(), a.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1) of x (B, H, N, D) by the angles of each token (N, D/2)."""
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # (B, H, N, D/2) each
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2).to(x.dtype)


def token_coords(box: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """(B, 3, 2) sample boxes ([start, end) fractions of the clip for t, y, x; `data.sample_box`) -> (B, N, 3):
    each token's centre as fractions of its whole clip, tokens in `patchify`'s (t, h, w) raster order."""
    centres = []
    for axis, n in enumerate(grid):
        u = (torch.arange(n, device=box.device, dtype=torch.float32) + 0.5) / n  # (n,)
        start, end = box[:, axis, :1].float(), box[:, axis, 1:].float()  # (B, 1) each
        centres.append(start + u * (end - start))  # (B, n)
    b, (tn, hn, wn) = box.shape[0], grid
    shapes = ((b, tn, 1, 1), (b, 1, hn, 1), (b, 1, 1, wn))
    t, h, w = (c.view(shape).expand(b, tn, hn, wn) for c, shape in zip(centres, shapes))  # (B, Tn, Hn, Wn) each
    return torch.stack([t, h, w], dim=-1).reshape(b, tn * hn * wn, 3)


def coord_features(coords: torch.Tensor, bands: int = COORD_BANDS) -> torch.Tensor:
    """Fourier features of places in [0, 1]: (B, N, 3) -> (B, N, 3 * 2 * bands)."""
    freqs = math.pi * 2.0 ** torch.arange(bands, device=coords.device, dtype=torch.float32)  # (bands,)
    angles = coords[..., None] * freqs  # (B, N, 3, bands)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)


def whole_clip(batch: int, device: torch.device) -> torch.Tensor:
    """(B, 3, 2): the box of a sample that is its whole clip."""
    return torch.tensor([[0.0, 1.0]] * 3, device=device).expand(batch, 3, 2)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1] (scaled by 1000 as in DiT): (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, cfg: ModelConfig) -> torch.Tensor:
    """The one attention of the model. q (B, H, Nq, D); k, v (B, H, N, D) whose last n_ctx tokens are context.

    Nq == N: full in-context attention (ISA or dense). Nq < N: target-only queries over target + cached
    context keys (ISA ranks sharpness among the target query blocks only).
    """
    if cfg.attention == "dense":
        return F.scaled_dot_product_attention(q, k, v)
    return isa_attention(q, k, v, n_ctx, config=cfg.isa.kernel_config(), backend=cfg.isa.backend,
                         tiles=_tiles(cfg.isa.graph_plan_train, cfg.isa.graph_call_train, cfg.isa.fp8_scores))


@functools.cache
def _tiles(graph_plan_train: bool, graph_call_train: bool, fp8_scores: bool) -> TileConfig:
    """The kernels' launch shapes, made once (their checks run at construction)."""
    return TileConfig(graph_plan_train=graph_plan_train, graph_call_train=graph_call_train, fwd_fp8=fp8_scores)


def rms_norm(x: torch.Tensor, norm: nn.RMSNorm) -> torch.Tensor:
    """norm(x) with the weight cast to x's dtype: under bf16 autocast an fp32 weight sends torch to its
    unfused RMSNorm (several passes over q or k) with a dtype-mismatch warning on every call."""
    return F.rms_norm(x, norm.normalized_shape, norm.weight.to(x.dtype), norm.eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, n_tgt: int) -> torch.Tensor:
    """adaLN with separate (shift, scale) for target tokens [:n_tgt] and context tokens [n_tgt:].

    shift, scale: (B, 2, dim), index 0 for the target part, 1 for the context part."""
    parts = [x[:, :n_tgt] * (1 + scale[:, :1]) + shift[:, :1]]
    if x.shape[1] > n_tgt:
        parts.append(x[:, n_tgt:] * (1 + scale[:, 1:]) + shift[:, 1:])
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def gate(x: torch.Tensor, g: torch.Tensor, n_tgt: int) -> torch.Tensor:
    """Per-part residual gate, g: (B, 2, dim)."""
    parts = [x[:, :n_tgt] * g[:, :1]]
    if x.shape[1] > n_tgt:
        parts.append(x[:, n_tgt:] * g[:, 1:])
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


@functools.cache
def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn through torch.compile, built once per function: every block of every model shares its compiled code
    (the module is an argument), so the model compiles once per input shape, not once per block."""
    return torch.compile(fn, dynamic=False, fullgraph=True)


# ---------------------------------------------------------------- modules

class Block(nn.Module):
    """DiT block (adaLN-Zero) with qk-RMSNorm and 3D RoPE; with text_attention, cross-attention to the words."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.q_norm = nn.RMSNorm(cfg.dim // cfg.heads, eps=1e-6)
        self.k_norm = nn.RMSNorm(cfg.dim // cfg.heads, eps=1e-6)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.norm2 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, cfg.dim))
        self.ada = nn.Linear(cfg.dim, 6 * cfg.dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.words = WordAttention(cfg) if cfg.text_attention else None

    def before_attention(self, x: torch.Tensor, c: torch.Tensor, n_tgt: int, cos: torch.Tensor, sin: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Everything of the block up to the attention call, element-wise but for two matmuls: one region for
        torch.compile to fuse (cfg.compile). Returns q, k, v (B, H, N, D) and the adaLN output (B, 2, 6 * dim)
        that `after_attention` reads."""
        b, n, _ = x.shape
        mod = self.ada(F.silu(c))  # (B, 2, 6 * dim)
        shift1, scale1 = mod.chunk(6, dim=-1)[:2]  # (B, 2, dim) each
        h = modulate(self.norm1(x), shift1, scale1, n_tgt)  # (B, N, dim)
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, D)
        q = apply_rope(rms_norm(q, self.q_norm), cos, sin).to(v.dtype)
        k = apply_rope(rms_norm(k, self.k_norm), cos, sin).to(v.dtype)
        return q, k, v, mod

    def after_attention(self, x: torch.Tensor, o: torch.Tensor, mod: torch.Tensor, n_tgt: int,
                        words: torch.Tensor | None) -> torch.Tensor:
        """Everything after the attention call (output projection, gated residuals, the words' cross-attention,
        the MLP): the second region for torch.compile. x (B, N, dim), o (B, H, N, D), words (B, L, dim) or None
        -> the block's output (B, N, dim)."""
        b, n, dim = x.shape
        g1, shift2, scale2, g2 = mod.chunk(6, dim=-1)[2:]  # (B, 2, dim) each
        x = x + gate(self.proj(o.transpose(1, 2).reshape(b, n, dim)), g1, n_tgt)
        if self.words is not None and words is not None:
            x = x + self.words(x, words)
        return x + gate(self.mlp(modulate(self.norm2(x), shift2, scale2, n_tgt)), g2, n_tgt)

    def forward(self, x: torch.Tensor, c: torch.Tensor, n_tgt: int, cos: torch.Tensor, sin: torch.Tensor,
                ctx_kv: tuple[torch.Tensor, torch.Tensor] | None = None, words: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, N, dim) with N = n_tgt + n_ctx; c (B, 2, dim) conditioning of the target and context parts;
        words (B, L, dim): the instruction's tokens (text_attention). Returns the new x and this block's (k, v)
        of x, (B, H, N, D) each.

        Context-cache mode: ctx_kv None and cfg.context_cache -> context queries see context keys only;
        ctx_kv given -> x holds target tokens only and attends over its own K/V plus the cached ones.
        The attention call stays outside the compiled regions: the ISA kernels and SDPA run as they are."""
        n = x.shape[1]
        before, after = Block.before_attention, Block.after_attention
        if self.cfg.compile:
            before, after = compiled(before), compiled(after)
        q, k, v, mod = before(self, x, c, n_tgt, cos, sin)  # (B, H, N, D) x 3, (B, 2, 6 * dim)
        if ctx_kv is not None:
            o = attention(q, torch.cat([k, ctx_kv[0]], 2), torch.cat([v, ctx_kv[1]], 2), ctx_kv[0].shape[2], self.cfg)
        elif self.cfg.context_cache and n > n_tgt:
            o_tgt = attention(q[:, :, :n_tgt], k, v, n - n_tgt, self.cfg)  # (B, H, n_tgt, D)
            o_ctx = attention(q[:, :, n_tgt:], k[:, :, n_tgt:], v[:, :, n_tgt:], 0, self.cfg)
            o = torch.cat([o_tgt, o_ctx], dim=2)
        else:
            o = attention(q, k, v, n - n_tgt, self.cfg)  # (B, H, N, D)
        return after(self, x, o, mod, n_tgt, words), (k, v)


@dataclass
class ContextCache:
    """Per-block (k, v) of the source tokens, (B, H, N_ctx, D) each, valid for one sample batch, and the
    batch's place embedding (`LIVEditor.place`), which the target tokens share with the source's."""
    kv: list[tuple[torch.Tensor, torch.Tensor]]
    place: torch.Tensor | float = 0.0


class LIVEditor(nn.Module):
    rope_cos: torch.Tensor  # registered buffers (the config's bucket), declared for the type checker
    rope_sin: torch.Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        patch_dim = cfg.channels * math.prod(cfg.patch)
        self.out_channels = cfg.channels + int(cfg.blend_mask)  # velocity (+ the blend mask's logit)
        self.embed = nn.Linear(patch_dim, cfg.dim)
        self.part = nn.Parameter(torch.zeros(2, cfg.dim))  # target / context type embedding
        nn.init.normal_(self.part, std=0.02)
        self.coords = nn.Linear(6 * COORD_BANDS, cfg.dim) if cfg.clip_coords else None  # place in the clip
        layout_out = nn.Linear(cfg.dim, cfg.dim)
        self.layout = nn.Sequential(nn.Linear(LAYOUT_FEATURES, cfg.dim), nn.SiLU(), layout_out
                                    ) if cfg.layout else None  # offset from the place the instruction names
        self.t_embed = nn.Sequential(nn.Linear(256, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.text = TextEncoder(cfg, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.out = nn.Linear(cfg.dim, self.out_channels * math.prod(cfg.patch))
        zeroed = [self.final_ada, self.out, *([self.coords] if self.coords is not None else []),
                  *([layout_out] if cfg.layout else [])]
        for m in zeroed:  # a new model copies the source, and reads its place and layout from zero
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        cos, sin = rope_3d(cfg.grid, cfg.dim // cfg.heads)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def rope(self, video_shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE tables for one clip of this shape (the config's bucket is precomputed)."""
        grid = patch_grid(video_shape, self.cfg.patch)
        if grid == self.cfg.grid:
            return self.rope_cos, self.rope_sin
        cos, sin = rope_3d(grid, self.cfg.dim // self.cfg.heads)
        return cos.to(self.rope_cos.device), sin.to(self.rope_cos.device)

    def place(self, box: torch.Tensor | None, video_shape: torch.Size, layout: torch.Tensor | None = None
              ) -> torch.Tensor | float:
        """(B, N, dim): each token's place in its whole clip (clip_coords) and its offset from the place its
        instruction names (layout), embedded; 0 with neither. box (B, 3, 2) from `data.sample_box`, None for
        samples that are their whole clip; layout (B, 7) from `layout.instruction_layout`, None: none named."""
        if self.coords is None and self.layout is None:
            return 0.0
        dev = self.rope_cos.device
        if box is None:
            box = whole_clip(video_shape[0], dev)
        coords = token_coords(box.to(dev), patch_grid(video_shape, self.cfg.patch))  # (B, N, 3)
        out = self.coords(coord_features(coords)) if self.coords is not None else 0.0
        if self.layout is not None:
            named = torch.zeros(video_shape[0], LAYOUT_SIZE, device=dev) if layout is None else layout.to(dev).float()
            out = out + self.layout(layout_features(coords, named)) * named[:, None, 4:5]  # (B, N, dim): 0 unnamed
        return out

    def condition(self, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(B,) timesteps + `encode_text`'s pooled (B, dim) -> (B, dim)."""
        return self.t_embed(timestep_embedding(t, 256)) + pooled_text(text)

    def part_conditions(self, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(B, 2, dim): the target at t; the context at t, or at 0 (clean) in context-cache mode."""
        t_ctx = torch.zeros_like(t) if self.cfg.context_cache else t
        return torch.stack([self.condition(t, text), self.condition(t_ctx, text)], dim=1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, source: torch.Tensor, text: torch.Tensor,
                box: torch.Tensor | None = None, layout: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity for the target. x_t, source: (B, C, T, H, W); t: (B,) in [0, 1]; text: (B, dim) or (B, 1 + L, dim)
        from `encode_text`; box (B, 3, 2): where the sample lies in its clip (read with clip_coords or layout);
        layout (B, 7): the place its instruction names (read with layout only). Returns (B, C, T, H, W), or
        (B, C + 1, T, H, W) with the blend mask's logits last (`objective.split_output` takes them apart)."""
        cos, sin = self.rope(x_t.shape)
        place = self.place(box, x_t.shape, layout)  # (B, Nt, dim) or 0: target and source tokens share their places
        tgt = self.embed(patchify(x_t, self.cfg.patch)) + self.part[0] + place  # (B, Nt, dim)
        ctx = self.embed(patchify(source, self.cfg.patch)) + self.part[1] + place  # (B, Nc, dim)
        n_tgt = tgt.shape[1]
        x = torch.cat([tgt, ctx], dim=1)  # (B, N, dim)
        cos2, sin2 = torch.cat([cos, cos]), torch.cat([sin, sin])  # both parts start at position 0
        c, words = self.part_conditions(t, text), text_words(text)
        for block in self.blocks:
            x, _ = block(x, c, n_tgt, cos2, sin2, words=words)
        return self.head(x[:, :n_tgt], c[:, 0], x_t.shape)

    def head(self, x: torch.Tensor, c: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        shift, scale = self.final_ada(F.silu(c)).chunk(2, dim=-1)  # (B, dim) each
        x = self.final_norm(x) * (1 + scale[:, None]) + shift[:, None]
        return unpatchify(self.out(x), self.cfg.patch, patch_grid(shape, self.cfg.patch), self.out_channels)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text(tokens)

    @torch.no_grad()
    def encode_context(self, source: torch.Tensor, text: torch.Tensor, box: torch.Tensor | None = None,
                       layout: torch.Tensor | None = None) -> ContextCache:
        """Context-cache mode: the source tokens' per-block K/V, computed once per sample (box, layout as
        `forward`)."""
        if not self.cfg.context_cache:
            raise ValueError("encode_context needs a model built with context_cache=True")
        cos, sin = self.rope(source.shape)
        place = self.place(box, source.shape, layout)
        x = self.embed(patchify(source, self.cfg.patch)) + self.part[1] + place  # (B, Nc, dim)
        t0 = torch.zeros(source.shape[0], device=source.device)
        c = self.part_conditions(t0, text)[:, 1:].expand(-1, 2, -1)  # context conditioning for every token
        kv, words = [], text_words(text)
        for block in self.blocks:
            x, block_kv = block(x, c, x.shape[1], cos, sin, words=words)  # context alone: attends to itself only
            kv.append(block_kv)
        return ContextCache(kv, place)

    def forward_cached(self, x_t: torch.Tensor, t: torch.Tensor, text: torch.Tensor, cache: ContextCache
                       ) -> torch.Tensor:
        """Same output as `forward` in context-cache mode, running only the target tokens."""
        cos, sin = self.rope(x_t.shape)
        x = self.embed(patchify(x_t, self.cfg.patch)) + self.part[0] + cache.place  # (B, Nt, dim)
        c, words = self.part_conditions(t, text), text_words(text)
        for block, kv in zip(self.blocks, cache.kv):
            x, _ = block(x, c, x.shape[1], cos, sin, ctx_kv=kv, words=words)
        return self.head(x, c[:, 0], x_t.shape)
