"""Object-mask methods against the synthetic corpus's exact masks: mean IoU on its moving objects, and frames/s.

Every synthetic object moves (its centre travels across its shot). Each shot proper of each video is
one clip; a method's tracks are matched one to one with the shot's true objects (Hungarian on summed
per-frame IoU), an object's score is its mean IoU over every frame it is visible (0 where missed),
and the bar is the mean over objects: >= 0.7 for the motion proposer (its default config, first row),
on every seed. The other rows are ablations. YOLO + SAM run on random-init weights here, so only their
speed is measured (`--models`).

    python benchmarks/mask_proposer.py [--videos 4] [--seeds 0 1] [--models] [--out benchmarks/results/mask_proposer.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.corpus import build_corpus, load_masks, load_truth
from curation.models.mask_proposer import ProposerConfig, propose
from curation.models.tracks import matched_iou
from manifests.media.decode import read_frames

BAR = 0.7


def shot_truth(masks: dict, start: int, end: int) -> dict[int, dict[int, np.ndarray]]:
    """{object id: {clip-relative frame: mask}} of the objects visible in [start, end)."""
    out: dict[int, dict[int, np.ndarray]] = {}
    for oid, (frames, m) in masks.items():
        sel = (frames >= start) & (frames < end)
        if sel.any():
            out[oid] = {int(f) - start: mm for f, mm in zip(frames[sel], m[sel])}
    return out


def run_proposer(videos: list[Path], config: ProposerConfig) -> dict:
    ious: list[float] = []
    frames_done, seconds, shots, tracks_made, empty_shots, empty_tracks = 0, 0.0, 0, 0, 0, 0
    for video in videos:
        truth, masks = load_truth(video), load_masks(video)
        for shot in truth["shots"]:
            gt = shot_truth(masks, shot["start"], shot["end"])
            frames = read_frames(video, list(range(shot["start"], shot["end"])))
            t0 = time.perf_counter()
            tracks = propose(frames, config)
            seconds += time.perf_counter() - t0
            frames_done += len(frames)
            shots += 1
            tracks_made += len(tracks)
            if not gt:  # a shot with no objects: every track there is a false positive
                empty_shots, empty_tracks = empty_shots + 1, empty_tracks + len(tracks)
            ious += list(matched_iou(gt, tracks).values())
    return {"mean_iou": float(np.mean(ious)) if ious else None, "objects": len(ious),
            "objects_iou_ge_0.7": int(sum(i >= 0.7 for i in ious)), "frames": frames_done,
            "frames_per_s": frames_done / seconds if seconds else None,
            "tracks_per_shot": tracks_made / shots if shots else None,
            "shots_without_objects": empty_shots, "tracks_on_shots_without_objects": empty_tracks}


# The default first (the bar is on it), then ablations: each drops one part of it, and "v1 settings"
# puts back the previous release's background and thresholds (median of 15 frames, two passes, dense
# flow, no blur, threshold 28, regions >= 0.3% of the frame) under today's camera fit and object following.
METHODS = {
    "proposer (densest background + object following + GrabCut)": ProposerConfig(),
    "proposer, no GrabCut": replace(ProposerConfig(), grabcut=False),
    "ablation: median background": replace(ProposerConfig(), mode_tolerance=0.0),
    "ablation: no blur before the distance, threshold 20": replace(ProposerConfig(), blur=0.0, threshold=20.0,
                                                                   weak_threshold=20.0),
    "ablation: v1 settings": replace(ProposerConfig(), background_samples=15, mode_tolerance=0.0, passes=2,
                                     blur=0.0, threshold=28.0, weak_threshold=8.0, min_area=0.003),
}


def run_models(video: Path, n_frames: int) -> dict:
    """YOLO detect + track and SAM box prompts on random-init weights: frames/s only (their masks are noise).

    Each SAM backend at its real input size (1024), on the same frames and boxes, one frame after a warm-up.
    """
    from curation.models.sam import SamConfig, SamMasker
    from curation.models.weights import WeightsConfig
    from curation.models.yolo import YoloConfig, YoloTracker

    random = WeightsConfig(weights="random", allow_random_init=True)
    frames = read_frames(video, list(range(n_frames)))
    yolo = YoloTracker(YoloConfig(weights=random, imgsz=320, conf=0.0, max_det=4))
    yolo.setup()
    yolo.track(frames[:1])  # warm-up
    t0 = time.perf_counter()
    yolo.track(frames)
    out = {"yolo11n_imgsz320_frames_per_s": n_frames / (time.perf_counter() - t0)}
    boxes = np.array([[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.9]]) * np.array([frames.shape[2], frames.shape[1]] * 2)
    for backend in ("segment-anything", "ultralytics-mobile-sam"):
        sam = SamMasker(SamConfig(backend=backend, weights=random))
        sam.setup()
        sam.masks(frames[0], boxes)  # warm-up
        t0 = time.perf_counter()
        got = sam.masks(frames[1], boxes)
        out[f"sam_{backend}_1024_frames_per_s"] = 1 / (time.perf_counter() - t0)
        out[f"sam_{backend}_masks_per_2_boxes"] = int(len(got))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--models", action="store_true", help="also time YOLO + SAM (random-init)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "mask_proposer.json"))
    args = parser.parse_args(argv)
    results: dict[str, dict] = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            videos = build_corpus(tmp, seed=seed, videos=args.videos, with_real=False)
            results[f"seed {seed}"] = {name: {**run_proposer(videos, cfg), "config": asdict(cfg)}
                                       for name, cfg in METHODS.items()}
            if args.models and seed == args.seeds[0]:
                results["yolo11n + SAM (random-init, speed only)"] = run_models(videos[0], 4)
    print(f"{'seed':5s} {'method':60s} {'mean IoU':>9s} {'objects':>8s} {'>=0.7':>6s} {'frames/s':>9s}"
          f" {'tracks/shot':>12s} {'tracks on empty shots':>22s}")
    for key, per_method in results.items():
        if not key.startswith("seed"):
            print(f"{key}: " + ", ".join(f"{k} {v:.3g}" for k, v in per_method.items()))
            continue
        for name, r in per_method.items():
            print(f"{key[5:]:5s} {name:60s} {r['mean_iou']:9.3f} {r['objects']:8d} {r['objects_iou_ge_0.7']:6d} "
                  f"{r['frames_per_s']:9.2f} {r['tracks_per_shot']:12.1f} "
                  f"{r['tracks_on_shots_without_objects']:>13d} / {r['shots_without_objects']:<6d}")
    default = next(iter(METHODS))
    scores = {key: r[default]["mean_iou"] for key, r in results.items() if key.startswith("seed")}
    met = all(v >= BAR for v in scores.values())
    print(f"bar: proposer mean IoU >= {BAR} on every seed: {'PASS' if met else 'MISS'} "
          + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    report = {"benchmark": "mask_proposer", "bar_mean_iou": BAR, "bar_met": met, "videos": args.videos,
              "seeds": args.seeds, "machine": f"{platform.machine()} {os.cpu_count()} cpu", "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
