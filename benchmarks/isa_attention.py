"""ISA vs dense attention (cuDNN, flash SDPA, FlexAttention): latency, exact-path TFLOP/s, error vs float64.

Prints a table and writes JSON (--json-out). Error is measured on a subset of query rows and heads against
float64 dense attention over all keys, on random and on video-like inputs (isa_inputs.py); the error against
latency grid lives in isa_tradeoff.py. --quick is a small smoke run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace

import torch

# kernels first: without a GPU it sets TRITON_INTERPRET before triton is imported (the CPU error grid).
from kernels import TileConfig, isa_attention, isa_plan  # isort: skip
import torch.nn.functional as F
import triton
from isa_inputs import Shape, bench_ms, error_vs_f64, fmt, random_qkv, video_like_qkv
from isa_tradeoff import CPU_ERROR_SHAPE, plot_tradeoff, print_tradeoff, run_cpu_error_grid, run_tradeoff
from torch.nn.attention import SDPBackend, sdpa_kernel

from kernels.isa import isa_forward
from kernels.isa_forward import launch_forward
from kernels.isa_pool import pool_qkv

FULL_SHAPES = [Shape((21, 30, 52), 12), Shape((21, 30, 52), 40), Shape((21, 34, 60), 12), Shape((21, 34, 60), 40),
               Shape((16, 32, 32), 4)]  # the last: one attention of LIVEditor `small` at 32K tokens (docs/MODEL.md)
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


def exact_path_tflops(q, k, v, n_ctx: int, tiles: TileConfig) -> dict:
    """Time the sharp-block forward launch alone (dense tiles over the kept keys) and count its FLOPs; time
    the plan alone and a forward call that reuses a plan."""
    with torch.no_grad():
        p = isa_plan(q, k, n_ctx, tiles=tiles)
        sharp = p.fwd[0]
        _, km, vm = pool_qkv(None, k, v, p.layout)
        km, vm = km.to(q.dtype), vm.to(q.dtype)
        o, lse = isa_forward(q, k, v, km, vm, p, tiles)
        ms = triton.testing.do_bench(lambda: launch_forward(q, k, v, o, lse, km, vm, p.mask, sharp, p.layout, tiles,
                                                            sharp=True), warmup=25, rep=200, return_mode="median")
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
        except Exception as exc:  # noqa: BLE001  # one failing baseline must not lose the other rows
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


FWD_VARIANTS = {  # v17/v18: the Gluon kernels against the Triton ones (docs/ISA.md): 1 key block per sharp
    # slot (541-554 TFLOP/s) and 2 slots (496) lost to 2 blocks x 3 slots (619); ping-pong scheduling of the two
    # consumer warpgroups and the plan without its CUDA graph were within noise and are gone; flat ring
    # slots 2 and 4 lost to 3 (v18); v20 runs the flat launch on a side stream beside the sharp one
    "hopper, flat on a side stream (default)": TileConfig(),
    "hopper, one stream": TileConfig(flat_side_stream=False),
    "triton, one stream": TileConfig(fwd_hopper=False, flat_side_stream=False),
}


BWD_VARIANTS = {  # backward tiles, on top of the forward winner; each changes one launch (dq or dk/dv).
    # v15 sweep (H200, docs/ISA.md): 4 stages won for the Triton dq and dk/dv and became their default; v19
    # adds the Gluon dk/dv (default on Hopper) against the Triton one
    "default (dq gq2 w8 s4, dkdv hopper s4, flat s2)": {},
    "dkdv hopper s3": {"dkdv_hopper_stages": 3},
    "dkdv triton gk2 w8 s4": {"dkdv_hopper": False},
}


def _sweep_row(name: str, fn) -> dict:
    """One variant's row; a variant that fails to compile (shared memory) is reported, not fatal."""
    try:
        row = {"variant": name, **fn()}
    except Exception as exc:  # noqa: BLE001  # a variant that fails to compile is a row, not the end of the sweep
        row = {"variant": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
    print(f"  sweep {name}: {row}", file=sys.stderr, flush=True)
    return row


def run_sweep(shape: Shape, device: str) -> tuple[list[dict], TileConfig]:
    """Forward tile variants (whole-call fwd ms, exact-path TFLOP/s), then backward variants on the forward
    winner (fwd+bwd ms); returns the rows and the tiles the rest of the run uses: the fastest forward, with
    the fastest dq change and the fastest dk/dv change."""
    q, k, v = random_qkv(shape, device, seed=1)
    out = []
    for name, tiles in FWD_VARIANTS.items():
        out.append(_sweep_row(name, lambda t=tiles: {"tiles": asdict(t),
                                                     "fwd_ms": bench_ms(_isa(shape.n_part, t), False, q, k, v),
                                                     **exact_path_tflops(q, k, v, shape.n_part, t)}))
    timed = [(r["fwd_ms"], FWD_VARIANTS[r["variant"]]) for r in out if "fwd_ms" in r]
    tiles = min(timed, key=lambda t: t[0])[1] if timed else TileConfig()
    best: dict[str, tuple[float, dict]] = {}
    for name, changes in BWD_VARIANTS.items():
        fn = _isa(shape.n_part, replace(tiles, **changes))
        row = _sweep_row(name, lambda f=fn, c=changes: {"changes": c, "fwd_bwd_ms": bench_ms(f, True, q, k, v)})
        out.append(row)
        for launch in ("dq", "dkdv"):
            if "fwd_bwd_ms" in row and all(key.startswith(launch) for key in changes):
                if launch not in best or row["fwd_bwd_ms"] < best[launch][0]:
                    best[launch] = (row["fwd_bwd_ms"], changes)
    tiles = replace(tiles, **{key: value for _, changes in best.values() for key, value in changes.items()})
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


def print_tables(results: list[dict], ablation: list[dict]) -> None:
    print("| shape | backend | fwd ms | fwd+bwd ms | fwd / cuDNN | fwd+bwd / cuDNN | fwd / flash | fwd / flex "
          "| TFLOP/s (dense-equiv) | exact-path TFLOP/s | rel-L2 random | cos random | rel-L2 video | cos video |")
    print("|" + "---|" * 14)
    for r in results:
        print(f"| {r['shape']} | {r['backend']} | {r['fwd_ms']:.2f} | {fmt(r['fwd_bwd_ms'], '.2f')} "
              f"| {fmt(r.get('fwd_vs_cudnn'), '.3f')} | {fmt(r.get('fwd_bwd_vs_cudnn'), '.3f')} "
              f"| {fmt(r.get('fwd_vs_flash'), '.3f')} | {fmt(r.get('fwd_vs_flex'), '.3f')} "
              f"| {r['dense_tflops']:.0f} | {fmt(r.get('exact_tflops'), '.0f')} "
              f"| {r['random']['rel_l2']:.4f} | {r['random']['cosine']:.4f} "
              f"| {r['video']['rel_l2']:.4f} | {r['video']['cosine']:.4f} |")
    if ablation:
        print("\n| shape | variant | fwd ms | rel-L2 video | cos video | rel-L2 random | cos random |")
        print("|" + "---|" * 7)
        for a in ablation:
            print(f"| {a['shape']} | {a['variant']} | {a['fwd_ms']:.2f} | {a['video']['rel_l2']:.4f} "
                  f"| {a['video']['cosine']:.4f} | {a['random']['rel_l2']:.4f} | {a['random']['cosine']:.4f} |")


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
              f"| {fmt(ratio, '.3f')} | {r['mem_fwd_extra_mb']:.0f} | {r['mem_saved_for_bwd_mb']:.0f} "
              f"| {r['mem_fwd_bwd_extra_mb']:.0f} | {fmt(c.get('mem_fwd_bwd_extra_mb'), '.0f')} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small shape (smoke run)")
    ap.add_argument("--shapes", default="all", help="'all' or comma-separated indices into the full shape list")
    ap.add_argument("--backends", default="cudnn,flash,flex,isa")
    ap.add_argument("--no-backward", action="store_true")
    ap.add_argument("--ablation", action="store_true", help="ISA option ablation at the first shape")
    ap.add_argument("--sweep", action="store_true",
                    help="forward then backward tile sweep and profile at the first shape; the fastest tiles are "
                         "used after it")
    ap.add_argument("--tradeoff", action="store_true", help="error vs latency over alpha_f at the first shape")
    ap.add_argument("--profile", action="store_true", help="per-kernel GPU time of ISA at every shape")
    ap.add_argument("--plot-out", default=None, help="PNG of the --tradeoff rows")
    ap.add_argument("--cpu-error-grid", action="store_true",
                    help="no GPU: error of every trade-off method on the CPU oracle at a small shape, then exit")
    ap.add_argument("--err-rows", type=int, default=1024)
    ap.add_argument("--err-heads", type=int, default=4)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)
    if args.cpu_error_grid:
        if os.environ.get("TRITON_INTERPRET") != "1":
            print("error: --cpu-error-grid runs the Triton pooling kernel on the CPU: set TRITON_INTERPRET=1",
                  file=sys.stderr)
            return 2
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
        if args.profile:
            print(f"{shape.label}\n" + profile_isa(*random_qkv(shape, "cuda", seed=1), shape.n_part, tiles), flush=True)
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
        print(f"sweep | {row['variant']} | fwd {fmt(row.get('fwd_ms'), '.2f')} ms | exact "
              f"{fmt(row.get('exact_ms'), '.2f')} ms, {fmt(row.get('exact_tflops'), '.0f')} TFLOP/s | fwd+bwd "
              f"{fmt(row.get('fwd_bwd_ms'), '.2f')} ms{' | ' + row['error'] if 'error' in row else ''}")
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
