"""SAM's image encoder at the card's speed: segment-anything's own attention against the fused form
(curation.models.sam_attention), fp32 and bf16, batches of frames, with and without torch.compile.

FLOPs are counted once per architecture with torch's FlopCounterMode on the library's encoder (its matmuls,
attention included), so TFLOP/s are the same useful work for every mode; the fused form does a little more
arithmetic (longer head dim) for far less memory traffic. Weights are random-init: speed does not depend on
their values. `max_err` is the largest |difference| from the fp32 library output on the same frames, over
that output's largest |value|.

    python benchmarks/sam_encoder.py --arch vit_b,vit_h --batch 1,4,8 --json-out benchmarks/results/sam_encoder_h200.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.models.sam_attention import fuse_encoder_attention

MODES = ("library-fp32", "library-bf16", "fused-bf16", "fused-bf16-compiled")
BF16_PEAK_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0}  # dense bf16, the vendors' data sheets


def encoder_flops(encoder: torch.nn.Module, size: int, device: torch.device) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        encoder(torch.zeros(1, 3, size, size, device=device))
    return counter.get_total_flops()


def time_mode(encoder, x: torch.Tensor, bf16: bool, iters: int) -> tuple[float, torch.Tensor, float]:
    """(seconds per call, output of the first call, seconds of that first call) after warm-up."""
    with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=bf16):
        t0 = time.perf_counter()
        first = encoder(x).float()
        torch.cuda.synchronize()
        first_s = time.perf_counter() - t0
        for _ in range(2):
            encoder(x)
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            encoder(x)
        end.record()
        torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000 / iters, first, first_s


def run(arch: str, batches: list[int], modes: list[str], iters: int, size: int) -> list[dict]:
    device = torch.device("cuda")
    torch.manual_seed(0)
    from segment_anything import sam_model_registry  # its own builder: the device needs no manifests stack

    if size != 1024:
        raise SystemExit("error: segment-anything's builder makes 1024-pixel encoders only")
    library = sam_model_registry[arch](checkpoint=None).image_encoder.to(device).eval()
    for name, p in library.named_parameters():
        if "rel_pos" in name:
            p.data.normal_(0, 0.02)  # zero at init: make the position terms do their work
    fused = copy.deepcopy(library)
    fuse_encoder_attention(fused)
    compiled = torch.compile(fused) if "fused-bf16-compiled" in modes else None
    flops = encoder_flops(library, size, device)
    rows = []
    for batch in batches:
        x = torch.randn(batch, 3, size, size, device=device)
        reference = None
        for mode in modes:
            encoder = {"library": library, "fused": fused}[mode.split("-")[0]]
            if mode.endswith("compiled"):
                encoder = compiled
            try:
                seconds, out, first_s = time_mode(encoder, x, "bf16" in mode, iters)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                rows.append({"arch": arch, "batch": batch, "mode": mode, "error": "out of memory"})
                continue
            if mode == "library-fp32":
                reference = out
            err = float((out - reference).abs().max() / reference.abs().max()) if reference is not None else None
            rows.append({"arch": arch, "batch": batch, "mode": mode, "ms_per_frame": 1000 * seconds / batch,
                         "frames_per_s": batch / seconds, "tflops": flops * batch / seconds / 1e12,
                         "first_call_s": first_s, "max_err": err,
                         "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30})
            torch.cuda.reset_peak_memory_stats()
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict], peak: float | None) -> str:
    head = f"{'arch':<6} {'batch':>5} {'mode':<20} {'ms/frame':>9} {'frames/s':>9} {'TFLOP/s':>8} {'% peak':>7} {'max err':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['arch']:<6} {r['batch']:>5} {r['mode']:<20} {r['error']}")
            continue
        share = f"{100 * r['tflops'] / peak:.1f}" if peak else "-"
        err = f"{r['max_err']:.1e}" if r["max_err"] is not None else "-"
        lines.append(f"{r['arch']:<6} {r['batch']:>5} {r['mode']:<20} {r['ms_per_frame']:>9.2f} {r['frames_per_s']:>9.1f} "
                     f"{r['tflops']:>8.1f} {share:>7} {err:>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="vit_b,vit_h")
    parser.add_argument("--batch", default="1,4,8")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA GPU", file=sys.stderr)
        return 2
    card = torch.cuda.get_device_name()
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in card), None)
    modes = [m for m in args.modes.split(",") if m]
    rows = [r for arch in args.arch.split(",") for r in run(arch, [int(b) for b in args.batch.split(",")], modes,
                                                               args.iters, args.size)]
    print(table(rows, peak))
    report = {"benchmark": "sam_encoder", "date": datetime.now(UTC).isoformat(timespec="seconds"), "card": card,
              "torch": torch.__version__, "bf16_peak_tflops": peak, "image_size": args.size, "weights": "random-init",
              "rows": rows}
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
