"""Bytes a curated clip costs on disk: the clip (extract's CRF), a pair's target (the editors' CRF) and its
masks (object_frames rows: COCO RLE in zstd Parquet), per pixel-frame and per object-frame.

docs/SCALING.md prices the storage of a 1.7M-pair set from these. Videos are the synthetic corpus's
(real photo textures, panning or zooming cameras, moving objects), re-encoded whole as extraction and
the editors write them (libx264 veryfast); masks are the corpus's exact ones.

    python benchmarks/storage_per_clip.py [--videos 3] [--out benchmarks/results/storage_per_clip.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.corpus import build_corpus, load_masks
from curation.editors.output import PAIR_CRF
from curation.stages.extract import ExtractConfig
from manifests.media.decode import read_frames
from manifests.media.encode import VideoWriter
from manifests.media.probe import probe
from manifests.rle import rle_encode


def encoded_bytes(frames: np.ndarray, fps: float, crf: int, path: Path) -> int:
    with VideoWriter(path, fps, crf=crf) as writer:
        for f in frames:
            writer.write(f)
    return path.stat().st_size


def mask_bytes(video: Path, path: Path) -> tuple[int, int]:
    """(Parquet bytes, object-frames) of the video's true masks written as object_frames' RLE column."""
    rows = {"object_id": [], "frame_index": [], "mask_rle": []}
    for oid, (frames, masks) in load_masks(video).items():
        for f, m in zip(frames, masks):
            rows["object_id"].append(f"{oid:024d}")
            rows["frame_index"].append(int(f))
            rows["mask_rle"].append(rle_encode(m))
    pq.write_table(pa.table(rows), path, compression="zstd")
    return path.stat().st_size, len(rows["mask_rle"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "storage_per_clip.json"))
    args = parser.parse_args(argv)
    crf = ExtractConfig().crf
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for video in build_corpus(Path(tmp) / "corpus", seed=0, videos=args.videos, with_real=False):
            info = probe(video)
            frames = read_frames(video, list(range(info.frames)))
            pixel_frames = info.width * info.height * info.frames
            clip = encoded_bytes(frames, info.fps, crf, Path(tmp) / "clip.mp4")
            target = encoded_bytes(frames, info.fps, PAIR_CRF, Path(tmp) / "target.mp4")
            masks, object_frames = mask_bytes(video, Path(tmp) / "masks.parquet")
            rows.append({"video": video.name, "width": info.width, "height": info.height, "frames": info.frames,
                         f"clip_crf{crf}_bytes_per_pixel_frame": clip / pixel_frames,
                         f"target_crf{PAIR_CRF}_bytes_per_pixel_frame": target / pixel_frames,
                         "mask_bytes_per_object_frame": masks / object_frames if object_frames else None,
                         "object_frames": object_frames})
    print(f"{'video':36s} {'size':>9s} {'frames':>6s} {'clip B/px-frame':>16s} {'target B/px-frame':>18s}"
          f" {'mask B/object-frame':>20s}")
    for r in rows:
        print(f"{r['video']:36s} {r['width']:4d}x{r['height']:<4d} {r['frames']:6d}"
              f" {r[f'clip_crf{crf}_bytes_per_pixel_frame']:16.4f} {r[f'target_crf{PAIR_CRF}_bytes_per_pixel_frame']:18.4f}"
              f" {r['mask_bytes_per_object_frame'] or 0:20.1f}")
    report = {"benchmark": "storage_per_clip", "clip_crf": crf, "target_crf": PAIR_CRF, "rows": rows,
              "machine": f"{platform.machine()} {os.cpu_count()} cpu"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
