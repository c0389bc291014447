"""A device copy of a curated pair set: only the files its `edit_pairs` rows use, each clip and mask scaled
to cover the model's bucket, plus the snapshot JSON the trainer reads instead of the Delta log.

A device call carries at most 64 MiB, PyAV's wheel takes 36 of it, and the device image has no deltalake.
`small` resizes every clip to cover 64x64 before it crops (`isa_model.data.to_bucket`), so the copy is scaled
here the same way (bilinear, antialiased: 256x144 -> 114x64) and re-encoded at a low crf; on the device
`to_bucket` then only crops. The rows, pair ids and URIs are the curated ones (their width/height columns
still give the curated size).

    python benchmarks/model_pack_pairs.py out/train_pairs out/gpu_pairs [--short-side 64] [--crf 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from manifests import read_table, take_snapshot
from manifests.media.decode import read_frames
from manifests.media.encode import VideoWriter
from manifests.media.masks import open_mask_file, write_mask_file
from manifests.media.probe import probe
from manifests.uris import resolve_uri

SNAPSHOT_NAME = "edit_pairs.snapshot.json"


def cover_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) scaled so the short side is `short_side`, each rounded to an even number (yuv420p)."""
    s = short_side / min(height, width)
    return max(2, round(height * s / 2) * 2), max(2, round(width * s / 2) * 2)


def scale_clip(src: Path, dst: Path, short_side: int, crf: int) -> None:
    info = probe(src)
    frames = read_frames(src, list(range(info.frames)))  # (T, H, W, 3) uint8
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    size = cover_size(x.shape[-2], x.shape[-1], short_side)
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    out = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (T, h, w, 3)
    with VideoWriter(dst, fps=info.fps or 12.0, crf=crf) as writer:
        for frame in out:
            writer.write(frame)


def scale_mask(src: Path, dst: Path, short_side: int) -> None:
    dense = open_mask_file(src).dense()  # (T, H, W) bool
    m = torch.from_numpy(dense.astype(np.float32))[:, None]  # (T, 1, H, W)
    size = cover_size(m.shape[-2], m.shape[-1], short_side)
    small = F.interpolate(m, size=size, mode="area")[:, 0] > 0.5  # (T, h, w): pixels mostly inside
    write_mask_file(dst, small.numpy())


def pack(root: Path, out: Path, short_side: int, crf: int) -> dict[str, int]:
    snapshot = take_snapshot(root, ["edit_pairs"])
    rows = read_table(root, "edit_pairs", columns=["source_uri", "target_uri", "mask_uri"], snapshot=snapshot)
    clips = {u for col in ("source_uri", "target_uri") for u in rows.column(col).to_pylist() if u}
    masks = {u for u in rows.column("mask_uri").to_pylist() if u}
    for part in snapshot.table("edit_pairs").files:
        (out / part.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / part.path, out / part.path)
    for uri in sorted(clips):
        scale_clip(resolve_uri(root, uri), out / uri, short_side, crf)
    for uri in sorted(masks):
        scale_mask(resolve_uri(root, uri), out / uri, short_side)
    data = snapshot.to_json()
    data["root"] = "."  # the trainer looks the files up under its --data root
    (out / SNAPSHOT_NAME).write_text(json.dumps(data))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"rows": rows.num_rows, "clips": len(clips), "masks": len(masks), "bytes": size}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--short-side", type=int, default=64)
    p.add_argument("--crf", type=int, default=10)
    args = p.parse_args(argv)
    print(json.dumps(pack(Path(args.root), Path(args.out), args.short_side, args.crf)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
