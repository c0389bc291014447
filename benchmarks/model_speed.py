"""LIVEditor speed on one GPU: ISA vs dense training step, and context-cached vs uncached sampling step.

Model: the `small` config's transformer (or `--config`'s) at larger buckets (RoPE makes it size-agnostic).
Training step = forward + backward + AdamW step under bf16 autocast, batch 1 (or --batch: `small` trains on 8
clips of the train bucket). Sampling step = one denoiser call with CFG (batch 2): uncached = full in-context
sequence (target + source tokens), cached = target tokens only over their own K/V plus the source K/V computed
once (context-cache mode). Attention alone = forward + backward of one block's attention times the depth (what
ISA changes in a training step). Times are medians of CUDA-event timings after warm-up. With --compile both
training steps are timed a second time with `model.compile` on (each block's element-wise work through
torch.compile). Every training step's first call is kept apart: its seconds hold the compile cost, its loss
compares compiled with eager (same seed). With --graph-plan-train the ISA training steps (and attention alone)
are timed again with `isa.graph_plan_train` on: each call's block selection and work lists replayed as one
CUDA graph instead of ~90 ops issued from Python. With --graph-call-train, again with `isa.graph_call_train` on:
each call's selection, forward and backward kernels replayed as two CUDA graphs (kernels/isa_call_graph.py).
Prints a table and writes JSON.

    python3 benchmarks/model_speed.py --out benchmarks/results/model_speed.json
    python3 benchmarks/model_speed.py --config benchmarks/configs/model_small_alpha_s_0.125.json --shapes 32K,64K
    python3 benchmarks/model_speed.py --shapes 32K,64K --compile --out benchmarks/results/model_speed_compile.json
    python3 benchmarks/model_speed.py --shapes 32K,64K --compile --graph-plan-train
    python3 benchmarks/model_speed.py --shapes train-bucket --batch 8 --compile --graph-plan-train
    python3 benchmarks/model_speed.py --shapes 32K,64K --compile --graph-plan-train --graph-call-train
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from isa_model import objective
from isa_model.config import ModelConfig, load_config
from isa_model.model import LIVEditor
from isa_model.model import attention as attention_fn

SHAPES = {"train-bucket": (8, 64, 64), "32K": (16, 128, 128), "64K": (32, 128, 128)}  # (frames, H, W) per clip
GRAPHS = {"graph_plan_train": ("graphed", "the block selection"),  # isa flag -> (its rows' key part, what it graphs)
          "graph_call_train": ("callgraph", "the whole call")}


def timed(fn, warmup: int = 3, repeats: int = 10) -> float:
    """Median milliseconds of fn() by CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def first_step(step: Callable[[], torch.Tensor]) -> tuple[float, float]:
    """(wall seconds, loss) of a training step's first call, GPU work included: the seconds hold what compiling
    costs (Triton's kernels, torch.compile's regions); the loss compares compiled with eager (same seed)."""
    start = time.perf_counter()
    loss = step().item()
    return time.perf_counter() - start, loss


def model_config(config: str, shape: tuple[int, int, int], graph: str | None = None, **changes) -> ModelConfig:
    """A config's model (`small` or a JSON file) at another bucket with the one isa flag of GRAPHS named by
    graph on (None: both off, whatever the config says)."""
    cfg = load_config(config).model
    isa = dataclasses.replace(cfg.isa, **{flag: flag == graph for flag in GRAPHS})
    return dataclasses.replace(cfg, frames=shape[0], height=shape[1], width=shape[2], isa=isa, **changes)


def build(config: str, shape: tuple[int, int, int], graph: str | None = None, **changes) -> LIVEditor:
    torch.manual_seed(0)
    return LIVEditor(model_config(config, shape, graph, **changes)).cuda()


def train_step(config: str, shape: tuple[int, int, int], attention: str, compiled: bool = False,
               graph: str | None = None, batch: int = 1) -> Callable[[], torch.Tensor]:
    """One training step of `batch` clips as a closure returning its loss: forward + backward + AdamW under bf16
    autocast, with model.compile set to `compiled` whatever the config says. Weights and inputs are seeded,
    so every closure's first step sees the same ones."""
    model = build(config, shape, graph, attention=attention, compile=compiled).train()
    with torch.no_grad():  # adaLN-Zero's zero layers made small and random, as after some training: at zero
        for name, p in model.named_parameters():  # every block is the identity and the loss cannot see them
            if "ada" in name or name.startswith("out."):
                p.normal_(0, 0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    c = model.cfg
    x0, src = (torch.randn(batch, 3, c.frames, c.height, c.width, device="cuda") for _ in range(2))
    tokens = model.text.tokenize(["invert the colours"] * batch).cuda()
    t = torch.rand(batch, device="cuda")

    def step() -> torch.Tensor:  # the config's objective (small: the change relative to the source, with its mask)
        x1 = objective.path_start(c.objective, src, torch.randn_like(x0))
        x_t, v = objective.path_point(x0, x1, t)
        mask = objective.change_mask(src, x0) if c.blend_mask else None
        with torch.autocast("cuda", dtype=torch.bfloat16):
            raw = model(x_t, t, src, model.encode_text(tokens))
        loss, _ = objective.loss(objective.split_output(raw, c.channels, c.blend_mask), v, mask, 1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def attention_train_ms(config: str, shape: tuple[int, int, int], attention: str, graph: str | None = None) -> float:
    """Forward + backward of the model's attention alone (random q, k, v of one block's shape) times its
    depth: the part of a training step that ISA can change; the rest of the step is the same for both."""
    cfg = model_config(config, shape, graph, attention=attention)
    n_part = shape[0] * (shape[1] // cfg.patch[1]) * (shape[2] // cfg.patch[2])
    head_dim = cfg.dim // cfg.heads
    q, k, v = (torch.randn(1, cfg.heads, 2 * n_part, head_dim, device="cuda", dtype=torch.bfloat16,
                           requires_grad=True) for _ in range(3))  # (B, H, N, D)
    grad = torch.randn_like(q)

    def step() -> None:
        attention_fn(q, k, v, n_part, cfg).backward(grad)

    return timed(step) * cfg.depth


@torch.no_grad()
def sample_step_ms(config: str, shape: tuple[int, int, int], attention: str, cached: bool) -> tuple[float, float]:
    """(ms per denoising step, ms to build the context cache once) at batch 2 (CFG)."""
    model = build(config, shape, attention=attention, context_cache=cached).eval()
    c = model.cfg
    x, src = (torch.randn(2, 3, c.frames, c.height, c.width, device="cuda") for _ in range(2))
    t = torch.full((2,), 0.5, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        text = model.encode_text(model.text.tokenize(["invert the colours", ""]).cuda())
        if cached:
            cache_ms = timed(lambda: model.encode_context(src, text), warmup=1, repeats=3)
            cache = model.encode_context(src, text)
            ms = timed(lambda: model.forward_cached(x, t, text, cache))
        else:
            cache_ms = 0.0
            ms = timed(lambda: model(x, t, src, text))
    return ms, cache_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results/model_speed.json")
    parser.add_argument("--shapes", default="train-bucket,32K,64K")
    parser.add_argument("--config", default="small", help="model config name or JSON file")
    parser.add_argument("--batch", type=int, default=1, help="clips per training step (sampling stays at 2)")
    parser.add_argument("--compile", action="store_true",
                        help="also time both training steps with model.compile on, and their first step")
    parser.add_argument("--graph-plan-train", action="store_true",
                        help="also time the ISA training steps with isa.graph_plan_train on")
    parser.add_argument("--graph-call-train", action="store_true",
                        help="also time the ISA training steps with isa.graph_call_train on")
    args = parser.parse_args()
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "config": args.config,
               "model": load_config(args.config).to_dict()["model"],  # as resolved: a file's base may change later
               "train_batch": args.batch,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": []}
    graphs = [flag for flag in GRAPHS if getattr(args, flag)]
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        tokens = 2 * (shape[0] * (shape[1] // 4) * (shape[2] // 4))
        row = {"shape": name, "frames_h_w": shape, "tokens_per_sample": tokens}
        # ISA first: its first compiled step compiles this shape's regions, which the dense model then reuses
        modes = [(False, ""), (True, "_compiled")] if args.compile else [(False, "")]
        for compiled, suffix in modes:
            for attention in ("isa", "dense"):
                step = train_step(args.config, shape, attention, compiled, batch=args.batch)
                row[f"first_step_{attention}{suffix}_s"], row[f"loss_{attention}{suffix}"] = first_step(step)
                row[f"train_{attention}{suffix}_ms"] = timed(step)
            for graph in graphs:
                step = train_step(args.config, shape, "isa", compiled, graph=graph, batch=args.batch)
                key = f"isa_{GRAPHS[graph][0]}{suffix}"
                row[f"first_step_{key}_s"], row[f"loss_{key}"] = first_step(step)
                row[f"train_{key}_ms"] = timed(step)
        if args.compile:
            row["train_speedup_compiled"] = row["train_dense_compiled_ms"] / row["train_isa_compiled_ms"]
        row["attn_train_isa_ms"] = attention_train_ms(args.config, shape, "isa")
        for graph in graphs:
            row[f"attn_train_isa_{GRAPHS[graph][0]}_ms"] = attention_train_ms(args.config, shape, "isa", graph=graph)
        row["attn_train_dense_ms"] = attention_train_ms(args.config, shape, "dense")
        row["sample_full_isa_ms"], _ = sample_step_ms(args.config, shape, "isa", cached=False)
        row["sample_full_dense_ms"], _ = sample_step_ms(args.config, shape, "dense", cached=False)
        row["sample_cached_ms"], row["cache_build_ms"] = sample_step_ms(args.config, shape, "isa", cached=True)
        row["train_speedup"] = row["train_dense_ms"] / row["train_isa_ms"]
        row["cache_speedup_vs_isa"] = row["sample_full_isa_ms"] / row["sample_cached_ms"]
        row["cache_speedup_vs_dense"] = row["sample_full_dense_ms"] / row["sample_cached_ms"]
        results["rows"].append(row)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(json.dumps(row), flush=True)
    print("\nattention alone (fwd + bwd x depth) and the rest of the training step:")
    for r in results["rows"]:
        rest = r["train_dense_ms"] - r["attn_train_dense_ms"]
        print(f"{r['shape']:<13} ISA {r['attn_train_isa_ms']:.1f} ms, dense {r['attn_train_dense_ms']:.1f} ms "
              f"({r['attn_train_dense_ms'] / r['attn_train_isa_ms']:.2f}x); rest of the dense step {rest:.1f} ms")
    cfg = model_config(args.config, SHAPES["32K"])
    print(f"\n{results['device']}, {results['date']}, {args.config} (dim {cfg.dim}, depth {cfg.depth}, "
          f"{cfg.heads} heads of {cfg.dim // cfg.heads}), bf16")
    print(f"{'shape':<13} {'tokens':>7} {'train ISA':>10} {'dense':>8} {'x':>5} | {'sample full ISA':>15} "
          f"{'full dense':>10} {'cached':>7} {'x ISA':>6} {'x dense':>7} {'cache once':>10}")
    for r in results["rows"]:
        print(f"{r['shape']:<13} {r['tokens_per_sample']:>7} {r['train_isa_ms']:>8.1f}ms {r['train_dense_ms']:>6.1f}ms "
              f"{r['train_speedup']:>5.2f} | {r['sample_full_isa_ms']:>13.1f}ms {r['sample_full_dense_ms']:>8.1f}ms "
              f"{r['sample_cached_ms']:>5.1f}ms {r['cache_speedup_vs_isa']:>6.2f} {r['cache_speedup_vs_dense']:>7.2f} "
              f"{r['cache_build_ms']:>8.1f}ms")
    if args.compile:
        print("\ntraining step, eager against model.compile (first compiled step, compile included):")
        for r in results["rows"]:
            print(f"{r['shape']:<13} eager ISA {r['train_isa_ms']:.1f} / dense {r['train_dense_ms']:.1f} ms "
                  f"({r['train_speedup']:.2f}x); compiled ISA {r['train_isa_compiled_ms']:.1f} / dense "
                  f"{r['train_dense_compiled_ms']:.1f} ms ({r['train_speedup_compiled']:.2f}x); first step ISA "
                  f"{r['first_step_isa_compiled_s']:.1f} s, dense {r['first_step_dense_compiled_s']:.1f} s; first loss "
                  f"ISA {r['loss_isa']:.6f} / {r['loss_isa_compiled']:.6f}, dense {r['loss_dense']:.6f} / "
                  f"{r['loss_dense_compiled']:.6f} (eager / compiled)")
    for graph in graphs:
        g, what = GRAPHS[graph]
        print(f"\nISA training step with {what} replayed as CUDA graphs (isa.{graph}):")
        for r in results["rows"]:
            with_compile = "" if not args.compile else (
                f"; compiled {r[f'train_isa_{g}_compiled_ms']:.1f} ms against {r['train_isa_compiled_ms']:.1f} "
                f"({r['train_dense_compiled_ms'] / r[f'train_isa_{g}_compiled_ms']:.2f}x dense)")
            print(f"{r['shape']:<13} eager {r[f'train_isa_{g}_ms']:.1f} ms against {r['train_isa_ms']:.1f} "
                  f"({r['train_dense_ms'] / r[f'train_isa_{g}_ms']:.2f}x dense){with_compile}; attention alone "
                  f"{r[f'attn_train_isa_{g}_ms']:.1f} against {r['attn_train_isa_ms']:.1f} ms; first loss "
                  f"{r[f'loss_isa_{g}']:.6f} against {r['loss_isa']:.6f}")


if __name__ == "__main__":
    main()
