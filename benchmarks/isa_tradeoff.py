"""Error against latency for ISA, ISA with per-head alpha_f, and plain block-sparse top-k (the same kernels
without 0-th order terms): the GPU grid (latency and error), the CPU oracle grid (error and exact work), a
PNG plot and a table.
"""
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from isa_inputs import Shape, bench_ms, error_vs_f64, fmt, video_like_qkv

from kernels import IsaConfig, TileConfig, dense_attention_f64, isa_attention, isa_plan
from kernels.isa_blocks import block_masks

TRADEOFF_ALPHA_F = (0.25, 0.375, 0.5, 0.625, 0.75, 1.0)
TRADEOFF_METHODS = {"isa": {}, "isa per-head alpha_f": {"per_head_alpha_f": True},
                    "block-sparse": {"mean_terms": False}}


def run_tradeoff(shape: Shape, tiles: TileConfig, err_rows: int, err_heads: int, device: str) -> list[dict]:
    """Relative L2 error (video-like inputs) against forward latency over alpha_f, for ISA, ISA with per-head
    alpha_f from pooled sharpness (same total of sharp blocks), and the same kernels without 0-th order
    terms (plain block-sparse top-k at equal exact work)."""
    q, k, v = video_like_qkv(shape, device, seed=2)
    rows = torch.sort(torch.randperm(2 * shape.n_part, device=device)[:err_rows]).values
    heads = min(err_heads, shape.heads)
    out = []
    for method, opts in TRADEOFF_METHODS.items():
        for alpha_f in TRADEOFF_ALPHA_F:
            cfg = IsaConfig(alpha_f=alpha_f, **opts)
            fn = lambda q_, k_, v_, cfg=cfg: isa_attention(q_, k_, v_, shape.n_part, config=cfg, tiles=tiles)  # noqa: E731
            row = {"shape": shape.label, "method": method, "alpha_f": alpha_f,
                   "fwd_ms": bench_ms(fn, False, q, k, v), "video": error_vs_f64(fn, q, k, v, rows, heads)}
            print(f"  tradeoff {row}", file=sys.stderr, flush=True)
            out.append(row)
    return out


CPU_ERROR_SHAPE = Shape((5, 15, 27), 8)


def run_cpu_error_grid(shape: Shape, err_rows: int) -> list[dict]:
    """Error only (no latency), on the CPU with the torch oracle: rel-L2 against float64 dense attention on
    video-like inputs for each method of the trade-off grid, plus each method's exact work as a fraction of
    dense (the latency proxy: equal between isa and its per-head variant by construction)."""
    q, k, v = video_like_qkv(shape, "cpu", seed=2)
    q, k, v = q.float(), k.float(), v.float()
    rows = torch.sort(torch.randperm(2 * shape.n_part)[:err_rows]).values
    ref = dense_attention_f64(q, k, v, rows)
    out = []
    for method, opts in TRADEOFF_METHODS.items():
        for alpha_f in TRADEOFF_ALPHA_F[:-1]:
            cfg = IsaConfig(alpha_f=alpha_f, **opts)
            plan = isa_plan(q, k, shape.n_part, config=cfg)
            got = isa_attention(q, k, v, shape.n_part, plan=plan, backend="torch")[:, :, rows].double()
            exact = block_masks(plan.selection)[0].double()
            lengths = plan.layout.lengths().double()
            exact_frac = (exact * lengths[:, None] * lengths[None, :]).sum() / (shape.heads * (2 * shape.n_part) ** 2)
            row = {"shape": shape.label, "method": method, "alpha_f": alpha_f, "exact_fraction": exact_frac.item(),
                   "video": {"rel_l2": ((got - ref).norm() / ref.norm()).item(),
                             "cosine": F.cosine_similarity(got.flatten(), ref.flatten(), dim=0).item()}}
            print(f"  cpu error {row}", file=sys.stderr, flush=True)
            out.append(row)
    return out


def plot_tradeoff(rows: list[dict], cudnn_ms: float | None, path: str) -> None:
    """PNG: rel-L2 error against forward latency (fraction of cuDNN when known), one line per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in TRADEOFF_METHODS:
        pts = [r for r in rows if r["method"] == method]
        x = [r["fwd_ms"] / (cudnn_ms or 1.0) for r in pts]
        ax.plot(x, [r["video"]["rel_l2"] for r in pts], "o-", label=method)
        for r, xi in zip(pts, x):
            ax.annotate(f"{r['alpha_f']:g}", (xi, r["video"]["rel_l2"]), fontsize=7)
    ax.set_xlabel("forward latency / cuDNN" if cudnn_ms else "forward ms")
    ax.set_ylabel("relative L2 error vs float64 dense (video-like)")
    ax.set_title(f"{rows[0]['shape']}, labels: alpha_f")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def print_tradeoff(rows: list[dict], cudnn_ms: float | None) -> None:
    print("\n| method | alpha_f | fwd ms | fwd / cuDNN | rel-L2 video | cos video |")
    print("|" + "---|" * 6)
    for r in rows:
        ratio = r["fwd_ms"] / cudnn_ms if cudnn_ms else None
        print(f"| {r['method']} | {r['alpha_f']:g} | {r['fwd_ms']:.2f} | {fmt(ratio, '.3f')} "
              f"| {r['video']['rel_l2']:.4f} | {r['video']['cosine']:.4f} |")
