"""Where a LIVEditor training step spends its GPU time: kernels grouped into attention, matmul and the rest.

`model_speed.py` says how long a step takes; this says what the time is made of, so that the part outside
attention (the same for ISA and dense, and what caps ISA's step speed-up) can be attacked with numbers.
Profiles a few training steps (batch 1, bf16 autocast) with torch.profiler, prints the groups and the top
kernels per step, and writes JSON. GPU only.

    python3 benchmarks/model_profile.py --shape 64K --out benchmarks/results/model_profile.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import torch
from model_speed import SHAPES, timed, train_step
from torch.profiler import ProfilerActivity, profile

# Kernel-name fragments of each group, tried in this order; the first that matches names the group.
GROUPS = (
    ("attention", ("isa", "attn", "fmha", "flash", "cudnn", "sdpa", "_pool", "select", "sharp")),
    ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "sm90", "splitk")),
    ("norm", ("norm",)),
    ("copy / cat", ("copy", "cat", "transpose", "contiguous")),
    ("optimizer", ("adam", "foreach", "multi_tensor")),
    ("reduce", ("reduce",)),
)


def kernel_group(name: str) -> str:
    """The group of a CUDA kernel by its name ("elementwise / other" when no fragment matches)."""
    low = name.lower()
    for group, fragments in GROUPS:
        if any(f in low for f in fragments):
            return group
    return "elementwise / other"


def kernel_times(prof: profile, steps: int) -> dict[str, tuple[float, int]]:
    """{kernel name: (ms per step, launches per step)} of the GPU kernels the profiler saw."""
    out: dict[str, tuple[float, int]] = {}
    for evt in prof.key_averages():
        if evt.device_type != torch.autograd.DeviceType.CUDA and evt.self_cpu_time_total > 0:
            continue  # a CPU-side op; its kernels are listed under their own names
        ms = evt.self_device_time_total / 1000.0 / steps
        if ms > 0:
            out[evt.key] = (ms, round(evt.count / steps))
    return out


def profile_step(config: str, shape: tuple[int, int, int], attention: str, steps: int) -> dict:
    step = train_step(config, shape, attention)
    wall_ms = timed(step)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    kernels = kernel_times(prof, steps)
    groups: dict[str, float] = defaultdict(float)
    for name, (ms, _) in kernels.items():
        groups[kernel_group(name)] += ms
    top = sorted(kernels.items(), key=lambda item: -item[1][0])[:20]
    return {"attention": attention, "step_ms": wall_ms, "kernel_ms": sum(ms for ms, _ in kernels.values()),
            "launches": sum(n for _, n in kernels.values()), "groups_ms": dict(groups),
            "top_kernels": [{"name": name[:160], "ms": ms, "launches": n} for name, (ms, n) in top]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="small", help="model config name or JSON file")
    parser.add_argument("--shape", default="64K", choices=sorted(SHAPES))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/model_profile.json")
    args = parser.parse_args()
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "config": args.config,
              "shape": args.shape, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": []}
    for attention in ("isa", "dense"):
        result["runs"].append(profile_step(args.config, SHAPES[args.shape], attention, args.steps))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"{result['device']}, {result['date']}, {args.config} at {args.shape}: ms per training step")
    names = sorted({g for run in result["runs"] for g in run["groups_ms"]})
    print(f"{'attention':<10} {'step':>8} {'kernels':>8} {'launches':>8} " + " ".join(f"{g:>20}" for g in names))
    for run in result["runs"]:
        print(f"{run['attention']:<10} {run['step_ms']:>8.1f} {run['kernel_ms']:>8.1f} {run['launches']:>8} "
              + " ".join(f"{run['groups_ms'].get(g, 0.0):>20.1f}" for g in names))
    for run in result["runs"]:
        print(f"\ntop kernels, {run['attention']}:")
        for k in run["top_kernels"]:
            print(f"  {k['ms']:>7.2f} ms {k['launches']:>5}x  {kernel_group(k['name']):<20} {k['name'][:100]}")


if __name__ == "__main__":
    main()
