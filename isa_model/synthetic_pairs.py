"""A small synthetic `edit_pairs` set: generated clips and exact edits of them, written as the real stages would.

No edit pairs exist in the project yet, so tests, the demo and the GPU runs train on these until the pair
synthesis stages produce real ones. Clips are moving textured shapes over drifting gradients, H.264 encoded;
targets are exact global edits (invert, sepia, grayscale) and one masked local edit (invert inside a box,
with its mask file). Rows go through `manifests.ManifestWriter` with today's schema; clips are split by clip
(one in four to `val`) so held-out pairs show unseen content.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from manifests import ManifestWriter, read_table
from manifests.media.encode import VideoWriter
from manifests.media.masks import write_mask_file

STAGE = "synthetic_pairs"
STAGE_VERSION = "1"
UNIT = "synthetic"
GLOBAL_EDITS = ("invert", "sepia", "grayscale")
LOCAL_EDITS = ("invert_box",)
INSTRUCTIONS = {
    "invert": ("invert the colours", "make a colour negative of the video", "invert every colour"),
    "sepia": ("give it a sepia tone", "make it look like an old sepia photo", "apply a sepia filter"),
    "grayscale": ("make it black and white", "remove all colour", "convert the video to grayscale"),
    "invert_box": ("invert the colours in the top left corner", "make the upper left area a negative"),
}
_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)


def render_clip(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) uint8: a drifting two-colour gradient with a few moving textured discs and squares."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1 = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    shapes = [(rng.uniform(0, width), rng.uniform(0, height), rng.uniform(-2, 2), rng.uniform(-2, 2),
               rng.uniform(min(height, width) / 8, min(height, width) / 3), rng.uniform(0, 255, 3), rng.integers(2))
              for _ in range(3)]
    texture = rng.normal(0, 12, (height, width, 1)).astype(np.float32)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        u = (np.cos(angle) * xx + np.sin(angle) * yy) / (width + height) + 0.02 * t
        frame = c0 + (c1 - c0) * (0.5 + 0.5 * np.sin(2 * np.pi * u))[..., None]  # (H, W, 3)
        for x0, y0, vx, vy, r, colour, square in shapes:
            cx, cy = x0 + vx * t, y0 + vy * t
            inside = (np.maximum(abs(xx - cx), abs(yy - cy)) < r) if square else ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)
            frame[inside] = colour
        out[t] = np.clip(frame + texture, 0, 255).astype(np.uint8)
    return out


def box_mask(frames: int, height: int, width: int) -> np.ndarray:
    """(T, H, W) bool: the top-left quarter, the region of the local edit."""
    mask = np.zeros((frames, height, width), bool)
    mask[:, : height // 2, : width // 2] = True
    return mask


def apply_edit(video: np.ndarray, edit_type: str) -> np.ndarray:
    """The exact target of an edit on (T, H, W, 3) uint8 frames."""
    x = video.astype(np.float32)
    if edit_type == "invert":
        y = 255.0 - x
    elif edit_type == "sepia":
        y = x @ _SEPIA.T
    elif edit_type == "grayscale":
        y = np.repeat(x @ np.array([0.299, 0.587, 0.114], np.float32)[:, None], 3, axis=-1)
    elif edit_type == "invert_box":
        m = box_mask(*video.shape[:3])[..., None]
        y = np.where(m, 255.0 - x, x)
    else:
        raise ValueError(f"unknown edit type {edit_type!r}")
    return np.clip(y, 0, 255).round().astype(np.uint8)


def _write(path: Path, frames: np.ndarray, fps: float) -> None:
    with VideoWriter(path, fps=fps, crf=12) as writer:
        for frame in frames:
            writer.write(frame)


def build_pairs(root: str | Path, clips: int = 8, frames: int = 12, size: tuple[int, int] = (48, 64),
                seed: int = 0, fps: float = 12.0) -> int:
    """Write `clips` source clips and one pair per edit type each under `root`; returns the pair count.

    Idempotent: a unit already committed is left as it is."""
    root = Path(root)
    writer = ManifestWriter(root, "edit_pairs")
    if writer.is_committed(UNIT):
        return read_table(root, "edit_pairs", columns=["pair_id"]).num_rows
    height, width = size
    rows: list[dict[str, object]] = []
    for i in range(clips):
        clip_id = f"synthetic{seed:04d}-{i:07d}-{frames:07d}"
        rng = np.random.default_rng([seed, i])
        source = render_clip(rng, frames, height, width)
        source_uri = f"clips/{clip_id}.mp4"
        _write(root / source_uri, source, fps)
        split = "val" if i % 4 == 3 else "train"
        for edit_type in GLOBAL_EDITS + LOCAL_EDITS:
            pair_id = f"{clip_id}-{edit_type}"
            target_uri = f"pairs/{pair_id}.mp4"
            mask_uri = f"pairs/{pair_id}.mask.npz" if edit_type in LOCAL_EDITS else None
            _write(root / target_uri, apply_edit(source, edit_type), fps)
            if mask_uri:
                write_mask_file(root / mask_uri, box_mask(frames, height, width))
            phrases = INSTRUCTIONS[edit_type]
            rows.append({
                "pair_id": pair_id, "clip_id": clip_id, "edit_type": edit_type,
                "instruction": phrases[int(rng.integers(len(phrases)))],
                "source_uri": source_uri, "target_uri": target_uri, "mask_uri": mask_uri,
                "gates_passed": [], "split": split,
                "stage": STAGE, "stage_version": STAGE_VERSION, "model_name": "none", "weights_id": "none",
            })
    writer.write(UNIT, rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m isa_model.synthetic_pairs", description=__doc__.split("\n")[0])
    parser.add_argument("root")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, nargs=2, default=(48, 64), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = build_pairs(args.root, args.clips, args.frames, tuple(args.size), args.seed)
    print(f"{n} edit pairs under {args.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
