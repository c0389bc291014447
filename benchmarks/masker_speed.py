"""Masks on every frame of the same clips, three ways: segment-anything on every frame, segment-anything on
every k-th frame with the masks carried between (the objects stage's default), and SAM 2.1's video
predictor prompted on the same keyframes. Seconds per clip and frames/s; random-init weights at the
published input size (1024), so speed only, not mask quality (benchmarks/mask_carry.py measures that).

Clips: shots proper of the synthetic corpus (seed 0) that show an object, cut to `--frames` frames;
prompts are the true boxes of the objects on the keyframes.

    python benchmarks/masker_speed.py [--clips 1] [--frames 8] [--interval 8] [--device cpu] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.mask_carry import corpus_clips
from curation.corpus import build_corpus
from curation.models.keyframes import keyframes
from curation.models.sam import SamConfig, SamMasker
from curation.models.tracks import mask_box
from curation.models.weights import WeightsConfig

RANDOM = WeightsConfig(weights="random", allow_random_init=True)


def methods(interval: int, device: str) -> dict[str, tuple[SamConfig, int]]:
    return {"segment-anything vit_b, every frame": (SamConfig(weights=RANDOM, device=device), 1),
            f"segment-anything vit_b, every {interval}th + motion carry": (SamConfig(weights=RANDOM, device=device),
                                                                           interval),
            f"SAM 2.1 hiera_t video predictor, prompts every {interval}th": (
                SamConfig(backend="sam2-video", weights=RANDOM, device=device), interval)}


def track_prompts(frames: np.ndarray, truth: dict[int, dict[int, np.ndarray]], interval: int
                  ) -> tuple[np.ndarray, list[dict[int, list[float]]], list[list[int]]]:
    """`masks_of_tracks`' arguments for a clip: each object's true boxes on the keyframes (on its middle
    frame when it is on none) and the frames it is visible on."""
    keys = set(keyframes(len(frames), interval))
    tracks = [t for t in truth.values() if t]
    prompts = [{f: mask_box(m) for f, m in t.items() if f in keys} or
               {(mid := sorted(t)[len(t) // 2]): mask_box(t[mid])} for t in tracks]
    return frames, prompts, [sorted(t) for t in tracks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--interval", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "masker_speed.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        clips: list[tuple[np.ndarray, dict[int, dict[int, np.ndarray]]]] = []
        for frames, truth in corpus_clips(build_corpus(tmp, seed=0, videos=3, with_real=False)):
            if len(frames) >= args.frames and len(clips) < args.clips:
                clips.append((frames[: args.frames], {o: {f: m for f, m in t.items() if f < args.frames}
                                                      for o, t in truth.items()}))
    if not clips:
        print(f"error: no shot of the corpus has {args.frames} frames; ask for fewer with --frames", file=sys.stderr)
        return 2
    results = {}
    for name, (config, interval) in methods(args.interval, args.device).items():
        masker = SamMasker(config)
        masker.setup()
        if args.device != "cpu":  # one untimed clip first: kernel selection and allocator warm-up are not speed
            masker.masks_of_tracks(*track_prompts(*clips[0], interval))
        seconds, frames_done = 0.0, 0
        for frames, truth in clips:
            t0 = time.perf_counter()
            masker.masks_of_tracks(*track_prompts(frames, truth, interval))
            seconds += time.perf_counter() - t0
            frames_done += len(frames)
        results[name] = {"clips": len(clips), "frames": frames_done, "seconds": seconds,
                         "frames_per_s": frames_done / seconds, "objects": sum(len(t) for _, t in clips)}
        print(f"{name:55s} {seconds:8.1f} s {frames_done / seconds:8.3f} frames/s")
    report = {"benchmark": "masker_speed", "device": args.device, "frames_per_clip": args.frames,
              "interval": args.interval, "machine": f"{platform.machine()} {os.cpu_count()} cpu", "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
