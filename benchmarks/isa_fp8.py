"""fp8 scores in the ISA forward (TileConfig.fwd_fp8) against bf16, at the model's attention shapes.

Per shape (the model's heads and head dim, target + context tokens) and ISA setting (a model config's): the
forward's error against float64 dense attention for bf16 ISA and fp8-scores ISA on the same rows, the fp8
output's distance from the bf16 one (the same plan: only the scores' precision differs), and forward times
(median ms, no autograd) of bf16 on the default kernels (Gluon on Hopper), bf16 on the Triton kernel, and fp8 on
the Triton kernel. Inputs are video-like (benchmarks/isa_inputs.py) with q and k RMS-normalised per token as
the model's qk-norm leaves them. Prints a table and writes JSON. Needs a CUDA GPU (fp8 tensor cores: Hopper
or newer); `rows_for` runs on the CPU too, in Triton's interpreter (fp32 inputs).

    python3 benchmarks/isa_fp8.py --out benchmarks/results/isa_fp8.json
    python3 benchmarks/isa_fp8.py --configs small,benchmarks/configs/model_small_alpha_f_0.25.json --shapes 32K
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

# kernels first: without a GPU it sets TRITON_INTERPRET before triton is imported (rows_for on the CPU).
from kernels import IsaConfig, TileConfig, isa_attention, isa_plan  # isort: skip
from isa_inputs import Shape, bench_ms, error_vs_f64, video_like_qkv

from isa_model.config import load_config

SHAPES = {"32K": Shape((16, 32, 32), heads=4), "64K": Shape((32, 32, 32), heads=4)}  # small's 4 heads of 128
BF16, BF16_TRITON, FP8 = TileConfig(), TileConfig(fwd_hopper=False), TileConfig(fwd_fp8=True)


def qk_normed(q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k with unit RMS per token, as the model's qk-RMSNorm gives them (its weights start at one)."""
    def norm(x: torch.Tensor) -> torch.Tensor:
        return (x.float() * torch.rsqrt(x.float().square().mean(-1, keepdim=True) + 1e-6)).to(x.dtype)
    return norm(q), norm(k)


def rows_for(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, cfg: IsaConfig, err_rows: int,
             err_heads: int) -> dict:
    """Errors of one input: bf16 (or the inputs' dtype) and fp8 scores, each against float64 dense attention
    on err_rows target rows of err_heads heads, and fp8 against bf16 over every row."""
    plan = isa_plan(q, k, n_ctx, config=cfg)
    rows = torch.linspace(0, q.shape[2] - n_ctx - 1, err_rows, device=q.device).long()
    with torch.no_grad():
        full = isa_attention(q, k, v, n_ctx, plan=plan)
        fp8 = isa_attention(q, k, v, n_ctx, plan=plan, tiles=FP8)
    return {
        "bf16_vs_f64": error_vs_f64(lambda *x: isa_attention(*x, n_ctx, plan=plan), q, k, v, rows, err_heads),
        "fp8_vs_f64": error_vs_f64(lambda *x: isa_attention(*x, n_ctx, plan=plan, tiles=FP8), q, k, v, rows,
                                   err_heads),
        "fp8_vs_bf16_rel_l2": ((fp8.double() - full.double()).norm() / full.double().norm()).item(),
    }


def times_ms(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, cfg: IsaConfig) -> dict:
    """Median forward ms (selection included) of bf16 on the default kernels, bf16 on Triton, fp8 on Triton."""
    return {name: bench_ms(lambda *x, t=tiles: isa_attention(*x, n_ctx, config=cfg, tiles=t), False, q, k, v)
            for name, tiles in (("bf16_ms", BF16), ("bf16_triton_ms", BF16_TRITON), ("fp8_ms", FP8))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="small,benchmarks/configs/model_small_alpha_f_0.25.json",
                    help="model configs (names or JSON files) whose ISA settings to run, comma-separated")
    ap.add_argument("--shapes", default="32K,64K", help=f"comma-separated among {', '.join(SHAPES)}")
    ap.add_argument("--err-rows", type=int, default=1024)
    ap.add_argument("--err-heads", type=int, default=4)
    ap.add_argument("--out", default="benchmarks/results/isa_fp8.json")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA GPU (fp8 tensor cores)", file=sys.stderr)
        return 2
    unknown = set(args.shapes.split(",")) - set(SHAPES)
    if unknown:
        print(f"error: unknown shapes {sorted(unknown)}; known: {', '.join(SHAPES)}", file=sys.stderr)
        return 2
    report: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": []}
    for config in args.configs.split(","):
        cfg = load_config(config).model.isa.kernel_config()
        for name in args.shapes.split(","):
            shape = SHAPES[name]
            q, k, v = video_like_qkv(shape, "cuda", seed=0)
            q, k = qk_normed(q, k)
            row = {"config": config, "isa": dataclasses.asdict(cfg), "shape": name, "label": shape.label,
                   **rows_for(q, k, v, shape.n_part, cfg, args.err_rows, args.err_heads),
                   **times_ms(q, k, v, shape.n_part, cfg)}
            report["rows"].append(row)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(report, indent=1))
            print(json.dumps(row), flush=True)
            torch.cuda.empty_cache()
    print(f"\n{report['device']}, {report['date']}; forward only, median ms; errors: relative L2")
    print(f"{'config':<48} {'shape':<6} {'bf16':>7} {'bf16 Triton':>11} {'fp8 Triton':>10} | {'bf16 vs f64':>11} "
          f"{'fp8 vs f64':>10} {'fp8 vs bf16':>11}")
    for r in report["rows"]:
        print(f"{r['config'][-48:]:<48} {r['shape']:<6} {r['bf16_ms']:>7.2f} {r['bf16_triton_ms']:>11.2f} "
              f"{r['fp8_ms']:>10.2f} | {r['bf16_vs_f64']['rel_l2']:>11.4f} {r['fp8_vs_f64']['rel_l2']:>10.4f} "
              f"{r['fp8_vs_bf16_rel_l2']:>11.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
