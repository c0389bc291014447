"""ISA vs dense attention (cuDNN, flash SDPA, FlexAttention): latency, exact-path TFLOP/s, error vs float64.

Prints a table and writes JSON (--json-out). Error is measured on a subset of query rows and heads against
float64 dense attention over all keys, on random inputs and on video-like inputs (smooth q/k over a
T x H x W token grid, both parts starting at position 0, with 3D RoPE). --quick is a small smoke run.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
import triton
from torch.nn.attention import SDPBackend, sdpa_kernel

from kernels import IsaConfig, TileConfig, dense_attention_f64, isa_attention, isa_plan
from kernels.isa import isa_forward
from kernels.isa_forward import launch_forward
from kernels.isa_pool import pool_qkv
from kernels.isa_reference import block_masks


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


FULL_SHAPES = [Shape((21, 30, 52), 12), Shape((21, 30, 52), 40), Shape((21, 34, 60), 12), Shape((21, 34, 60), 40)]
QUICK_SHAPES = [Shape((5, 21, 39), 4)]
ABLATION = [
    ("default", {}),
    ("alpha_s=0.25", {"alpha_s": 0.25}),
    ("alpha_s=0.0625", {"alpha_s": 0.0625}),
    ("alpha_f=0.25", {"alpha_f": 0.25}),
    ("alpha_f=0.75", {"alpha_f": 0.75}),
    ("alpha_ns=0.125", {"alpha_ns": 0.125}),
    ("alpha_ns=0.03125", {"alpha_ns": 0.03125}),
    ("dropped_mean", {"dropped_mean": True}),
    ("alpha_s=alpha_f=1 (dense)", {"alpha_s": 1.0, "alpha_f": 1.0}),
]


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


def _sdpa(backend: SDPBackend):
    def run(q, k, v):
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v)
    return run


def _flex():
    from torch.nn.attention.flex_attention import flex_attention
    compiled = torch.compile(flex_attention, dynamic=False)
    return lambda q, k, v: compiled(q, k, v)


def _isa(n_ctx: int, tiles: TileConfig, **alphas):
    return lambda q, k, v: isa_attention(q, k, v, n_ctx, tiles=tiles, **alphas)


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


def exact_path_tflops(q, k, v, n_ctx: int, tiles: TileConfig) -> dict:
    """Time the sharp-block forward launch alone (dense tiles over the kept keys) and count its FLOPs; time
    the plan alone and a forward call that reuses a plan."""
    with torch.no_grad():
        p = isa_plan(q, k, n_ctx, tiles=tiles)
        sharp = p.fwd[0]
        _, km, vm = pool_qkv(None, k, v, p.layout)
        km, vm = km.to(q.dtype), vm.to(q.dtype)
        o, lse = isa_forward(q, k, v, km, vm, p, tiles)
        ms = triton.testing.do_bench(lambda: launch_forward(
            q, k, v, o, lse, km, vm, p.mask, sharp, p.layout, tiles.fwd_warps,
            tiles.fwd_stages, tiles.mean_tile, tiles.fwd_key_blocks), warmup=25, rep=200, return_mode="median")
        plan_ms = triton.testing.do_bench(lambda: isa_plan(q, k, n_ctx, tiles=tiles), warmup=10, rep=100,
                                          return_mode="median")
        reuse_ms = triton.testing.do_bench(lambda: isa_attention(q, k, v, n_ctx, plan=p, tiles=tiles), warmup=25,
                                           rep=200, return_mode="median")
        eager_ms = triton.testing.do_bench(
            lambda: isa_attention(q, k, v, n_ctx, tiles=replace(tiles, graph_plan=False)), warmup=25, rep=200,
            return_mode="median")
    lengths = p.layout.lengths(q.device)
    sharp = p.selection.sharp
    rows = lengths[sharp.clamp(max=p.layout.nbq - 1)][sharp < p.layout.nbq].sum().item()
    keys = lengths[p.selection.kept[0, 0]].sum().item()
    flops = 4.0 * rows * keys * q.shape[-1]
    return {"exact_ms": ms, "exact_tflops": flops / ms / 1e9, "plan_ms": plan_ms, "fwd_reused_plan_ms": reuse_ms,
            "fwd_eager_plan_ms": eager_ms}


def memory_mb(fn, q, k, v) -> dict:
    """Peak device memory beyond inputs and outputs: forward (no grad), held for backward after a forward
    with grad (the output itself excluded), and forward + backward (gradients excluded)."""
    mb = 2.0 ** -20
    out_bytes = q.numel() * q.element_size()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with torch.no_grad():
        out = fn(q, k, v)
    fwd_peak = torch.cuda.max_memory_allocated() - base - out_bytes
    del out
    qg, kg, vg = (x.detach().clone().requires_grad_() for x in (q, k, v))
    do = torch.randn_like(q)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn(qg, kg, vg)
    held = torch.cuda.memory_allocated() - base - out_bytes
    out.backward(do)
    grads = sum(x.grad.numel() * x.grad.element_size() for x in (qg, kg, vg))
    peak = torch.cuda.max_memory_allocated() - base - out_bytes - grads
    del out, qg, kg, vg
    return {"mem_fwd_extra_mb": fwd_peak * mb, "mem_saved_for_bwd_mb": held * mb, "mem_fwd_bwd_extra_mb": peak * mb}


def run_shape(shape: Shape, backends: list[str], backward: bool, tiles: TileConfig, err_rows: int,
              err_heads: int, device: str) -> list[dict]:
    n_ctx = shape.n_part
    q, k, v = random_qkv(shape, device, seed=1)
    vq, vk, vv = video_like_qkv(shape, device, seed=2)
    n = 2 * shape.n_part
    rows = torch.sort(torch.randperm(n, device=device)[:err_rows]).values
    heads = min(err_heads, shape.heads)
    fns = {"cudnn": _sdpa(SDPBackend.CUDNN_ATTENTION), "flash": _sdpa(SDPBackend.FLASH_ATTENTION),
           "flex": _flex(), "isa": _isa(n_ctx, tiles)}
    dense_flops = 4.0 * n * n * shape.dim * shape.heads
    results = []
    for name in backends:
        fn = fns[name]
        t0 = time.time()
        try:
            row = {"shape": shape.label, "backend": name, "fwd_ms": bench_ms(fn, False, q, k, v)}
            # FlexAttention's backward compile is slow; its forward is the baseline we report.
            row["fwd_bwd_ms"] = bench_ms(fn, True, q, k, v) if backward and name != "flex" else None
            row["dense_tflops"] = dense_flops / row["fwd_ms"] / 1e9
            row["random"] = error_vs_f64(fn, q, k, v, rows, heads)
            row["video"] = error_vs_f64(fn, vq, vk, vv, rows, heads)
            row.update(memory_mb(fn, q, k, v))
            if name == "isa":
                row.update(exact_path_tflops(q, k, v, n_ctx, tiles))
            if name in ("isa", "cudnn"):  # target-only queries (context K/V cache): q holds the target alone
                row["tgt_only_fwd_ms"] = bench_ms(fn, False, q[:, :, :shape.n_part].contiguous(), k, v)
        except Exception as exc:  # one failing baseline must not lose the other rows
            print(f"error: {shape.label} {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                  file=sys.stderr, flush=True)
            continue
        row["wall_s"] = time.time() - t0
        results.append(row)
        print(f"  done {shape.label} {name} in {row['wall_s']:.1f}s", file=sys.stderr, flush=True)
    base = {r["backend"]: r for r in results}
    for r in results:
        for ref in ("cudnn", "flash", "flex"):
            if ref in base:
                r[f"fwd_vs_{ref}"] = r["fwd_ms"] / base[ref]["fwd_ms"]
                if r["fwd_bwd_ms"] and base[ref]["fwd_bwd_ms"]:
                    r[f"fwd_bwd_vs_{ref}"] = r["fwd_bwd_ms"] / base[ref]["fwd_bwd_ms"]
    return results


def run_ablation(shape: Shape, tiles: TileConfig, err_rows: int, err_heads: int, device: str) -> list[dict]:
    """Error (video-like and random inputs) vs forward latency over the ISA options."""
    q, k, v = video_like_qkv(shape, device, seed=2)
    rq, rk, rv = random_qkv(shape, device, seed=1)
    rows = torch.sort(torch.randperm(2 * shape.n_part, device=device)[:err_rows]).values
    heads = min(err_heads, shape.heads)
    out = []
    for name, opts in ABLATION:
        fn = _isa(shape.n_part, tiles, **opts)
        out.append({"shape": shape.label, "variant": name, "fwd_ms": bench_ms(fn, False, q, k, v),
                    "video": error_vs_f64(fn, q, k, v, rows, heads),
                    "random": error_vs_f64(fn, rq, rk, rv, rows, heads)})
    return out


FWD_VARIANTS = {
    "gq2 kp2 w8 s3 (default)": TileConfig(),
    "gq1 kp1 w4 s3 (v6)": TileConfig(fwd_sharp_gq=1, fwd_key_blocks=1, fwd_warps=4),
    "gq1 kp2 w4 s2": TileConfig(fwd_sharp_gq=1, fwd_warps=4, fwd_stages=2),
    "gq1 kp2 w4 s3": TileConfig(fwd_sharp_gq=1, fwd_warps=4),
    "gq2 kp1 w8 s3": TileConfig(fwd_key_blocks=1),
    "gq2 kp2 w8 s2": TileConfig(fwd_stages=2),
}


def run_sweep(shape: Shape, device: str) -> tuple[list[dict], TileConfig]:
    """Forward tile variants at one shape (whole-call fwd ms, exact-path TFLOP/s); returns the rows and the
    fastest variant's tiles, which the rest of the run uses."""
    q, k, v = random_qkv(shape, device, seed=1)
    out, best = [], None
    for name, tiles in FWD_VARIANTS.items():
        fn = _isa(shape.n_part, tiles)
        try:
            row = {"variant": name, "tiles": asdict(tiles), "fwd_ms": bench_ms(fn, False, q, k, v)}
            row.update(exact_path_tflops(q, k, v, shape.n_part, tiles))
            if best is None or row["fwd_ms"] < best[0]:
                best = (row["fwd_ms"], tiles)
        except Exception as exc:  # a variant that fails to compile (shared memory) is reported, not fatal
            row = {"variant": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        print(f"  sweep {name}: {row}", file=sys.stderr, flush=True)
        out.append(row)
    tiles = best[1] if best else TileConfig()
    print(profile_isa(q, k, v, shape.n_part, tiles), flush=True)
    return out, tiles


def profile_isa(q, k, v, n_ctx: int, tiles: TileConfig) -> str:
    """Per-kernel GPU time of one ISA forward (no grad) and of one forward + backward, as tables."""
    qg, kg, vg = (x.detach().clone().requires_grad_() for x in (q, k, v))
    do = torch.randn_like(q)
    isa_attention(qg, kg, vg, n_ctx, tiles=tiles).backward(do)
    tables = []
    for backward in (False, True):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            if backward:
                isa_attention(qg, kg, vg, n_ctx, tiles=tiles).backward(do)
            else:
                with torch.no_grad():
                    isa_attention(q, k, v, n_ctx, tiles=tiles)
            torch.cuda.synchronize()
        title = "forward + backward" if backward else "forward (no grad, graphed plan)"
        tables.append(f"profile: {title}\n" + prof.key_averages().table(sort_by="cuda_time_total", row_limit=16))
    return "\n".join(tables)


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_tables(results: list[dict], ablation: list[dict]) -> None:
    print("| shape | backend | fwd ms | fwd+bwd ms | fwd / cuDNN | fwd+bwd / cuDNN | fwd / flash | fwd / flex "
          "| TFLOP/s (dense-equiv) | exact-path TFLOP/s | rel-L2 random | cos random | rel-L2 video | cos video |")
    print("|" + "---|" * 14)
    for r in results:
        print(f"| {r['shape']} | {r['backend']} | {r['fwd_ms']:.2f} | {_fmt(r['fwd_bwd_ms'], '.2f')} "
              f"| {_fmt(r.get('fwd_vs_cudnn'), '.3f')} | {_fmt(r.get('fwd_bwd_vs_cudnn'), '.3f')} "
              f"| {_fmt(r.get('fwd_vs_flash'), '.3f')} | {_fmt(r.get('fwd_vs_flex'), '.3f')} "
              f"| {r['dense_tflops']:.0f} | {_fmt(r.get('exact_tflops'), '.0f')} "
              f"| {r['random']['rel_l2']:.4f} | {r['random']['cosine']:.4f} "
              f"| {r['video']['rel_l2']:.4f} | {r['video']['cosine']:.4f} |")
    if ablation:
        print("\n| shape | variant | fwd ms | rel-L2 video | cos video | rel-L2 random | cos random |")
        print("|" + "---|" * 7)
        for a in ablation:
            print(f"| {a['shape']} | {a['variant']} | {a['fwd_ms']:.2f} | {a['video']['rel_l2']:.4f} "
                  f"| {a['video']['cosine']:.4f} | {a['random']['rel_l2']:.4f} | {a['random']['cosine']:.4f} |")


def print_tradeoff(rows: list[dict], cudnn_ms: float | None) -> None:
    print("\n| method | alpha_f | fwd ms | fwd / cuDNN | rel-L2 video | cos video |")
    print("|" + "---|" * 6)
    for r in rows:
        ratio = r["fwd_ms"] / cudnn_ms if cudnn_ms else None
        print(f"| {r['method']} | {r['alpha_f']:g} | {r['fwd_ms']:.2f} | {_fmt(ratio, '.3f')} "
              f"| {r['video']['rel_l2']:.4f} | {r['video']['cosine']:.4f} |")


def print_isa_extras(results: list[dict]) -> None:
    """Plan, reuse, target-only and memory columns of the ISA rows."""
    base = {(r["shape"], r["backend"]): r for r in results}
    print("\n| shape | plan ms | fwd ms | fwd reused plan ms | fwd eager plan ms | exact ms | tgt-only fwd ms "
          "| tgt-only / cuDNN tgt-only | mem fwd MB | mem saved MB | mem fwd+bwd MB | cuDNN fwd+bwd MB |")
    print("|" + "---|" * 12)
    for r in results:
        if r["backend"] != "isa":
            continue
        c = base.get((r["shape"], "cudnn"), {})
        ratio = r["tgt_only_fwd_ms"] / c["tgt_only_fwd_ms"] if c.get("tgt_only_fwd_ms") else None
        print(f"| {r['shape']} | {r['plan_ms']:.2f} | {r['fwd_ms']:.2f} | {r['fwd_reused_plan_ms']:.2f} "
              f"| {r['fwd_eager_plan_ms']:.2f} | {r['exact_ms']:.2f} | {r['tgt_only_fwd_ms']:.2f} "
              f"| {_fmt(ratio, '.3f')} | {r['mem_fwd_extra_mb']:.0f} | {r['mem_saved_for_bwd_mb']:.0f} "
              f"| {r['mem_fwd_bwd_extra_mb']:.0f} | {_fmt(c.get('mem_fwd_bwd_extra_mb'), '.0f')} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small shape (smoke run)")
    ap.add_argument("--shapes", default="all", help="'all' or comma-separated indices into the full shape list")
    ap.add_argument("--backends", default="cudnn,flash,flex,isa")
    ap.add_argument("--no-backward", action="store_true")
    ap.add_argument("--ablation", action="store_true", help="ISA option ablation at the first shape")
    ap.add_argument("--sweep", action="store_true",
                    help="forward tile sweep and profile at the first shape; the fastest tiles are used after it")
    ap.add_argument("--tradeoff", action="store_true", help="error vs latency over alpha_f at the first shape")
    ap.add_argument("--plot-out", default=None, help="PNG of the --tradeoff rows")
    ap.add_argument("--cpu-error-grid", action="store_true",
                    help="no GPU: error of every trade-off method on the CPU oracle at a small shape, then exit")
    ap.add_argument("--err-rows", type=int, default=1024)
    ap.add_argument("--err-heads", type=int, default=4)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)
    if args.cpu_error_grid:
        torch.manual_seed(0)
        rows = run_cpu_error_grid(CPU_ERROR_SHAPE, args.err_rows)
        print("| method | alpha_f | exact work / dense | rel-L2 video | cos video |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['method']} | {r['alpha_f']:g} | {r['exact_fraction']:.3f} | {r['video']['rel_l2']:.4f} "
                  f"| {r['video']['cosine']:.4f} |")
        meta = {"device": "cpu", "torch": torch.__version__, "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
        _dump({"meta": meta, "cpu_error_grid": rows}, args.json_out)
        return 0
    if not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA GPU", file=sys.stderr)
        return 2
    try:
        shapes = QUICK_SHAPES if args.quick else (
            FULL_SHAPES if args.shapes == "all" else [FULL_SHAPES[int(i)] for i in args.shapes.split(",")])
    except (ValueError, IndexError):
        print(f"error: --shapes takes 'all' or indices 0..{len(FULL_SHAPES) - 1}, got {args.shapes!r}",
              file=sys.stderr)
        return 2
    backends = [b for b in args.backends.split(",") if b]
    unknown = set(backends) - {"cudnn", "flash", "flex", "isa"}
    if unknown:
        print(f"error: unknown backends {sorted(unknown)}", file=sys.stderr)
        return 2
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    print(json.dumps(meta))
    report: dict = {"meta": meta, "results": [], "ablation": [], "sweep": [], "tradeoff": []}
    tiles = TileConfig()
    if args.sweep:
        report["sweep"], tiles = run_sweep(shapes[0], "cuda")
        report["tiles"] = asdict(tiles)
        print(f"tiles for the rest of the run: {tiles}", flush=True)
    for i, shape in enumerate(shapes):
        report["results"] += run_shape(shape, backends, not args.no_backward, tiles, args.err_rows,
                                       args.err_heads, "cuda")
        torch.cuda.empty_cache()
        if args.ablation and i == 0:
            report["ablation"] = run_ablation(shapes[0], tiles, args.err_rows, args.err_heads, "cuda")
        if args.tradeoff and i == 0:
            report["tradeoff"] = run_tradeoff(shapes[0], tiles, args.err_rows, args.err_heads, "cuda")
            cudnn = [r["fwd_ms"] for r in report["results"] if r["backend"] == "cudnn"]
            if args.plot_out:
                plot_tradeoff(report["tradeoff"], cudnn[0] if cudnn else None, args.plot_out)
        _dump(report, args.json_out)
    for row in report["sweep"]:
        print(f"sweep | {row['variant']} | fwd {_fmt(row.get('fwd_ms'), '.2f')} ms | exact "
              f"{_fmt(row.get('exact_ms'), '.2f')} ms, {_fmt(row.get('exact_tflops'), '.0f')} TFLOP/s"
              f"{' | ' + row['error'] if 'error' in row else ''}")
    if report["tradeoff"]:
        cudnn = [r["fwd_ms"] for r in report["results"] if r["backend"] == "cudnn"]
        print_tradeoff(report["tradeoff"], cudnn[0] if cudnn else None)
    print_tables(report["results"], report["ablation"])
    print_isa_extras(report["results"])
    _dump(report, args.json_out)
    return 0


def _dump(report: dict, path: str | None) -> None:
    """Written after every shape, so a run cut short still leaves its finished rows."""
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
