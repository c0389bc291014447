"""Ground truth files beside each synthetic video, and their readers.

`<name>.truth.json`: fps, frames, size, hard `cuts`, all `transitions`, `shots` and per-frame object
boxes. `<name>.masks.npz`: per object, the frames it is visible in and its exact boolean masks,
bit-packed. Frame ranges are half-open [start, end); frames inside a dissolve or fade belong to no shot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.corpus.plan import VideoPlan

TRUTH_VERSION = 1


class TruthError(Exception):
    """A ground-truth file is missing or malformed; the message is one line."""


@dataclass
class MaskRecorder:
    """Collects each object's visible masks frame by frame while the video renders."""

    height: int
    width: int

    def __post_init__(self) -> None:
        self.frames: dict[int, list[int]] = {}
        self.bits: dict[int, list[np.ndarray]] = {}  # one packed row per frame keeps memory small
        self.boxes: dict[int, list[list[int]]] = {}

    def add(self, t: int, masks: dict[int, np.ndarray]) -> None:
        """Record the visible masks of frame t, with their xyxy boxes (x2/y2 exclusive)."""
        for oid, m in masks.items():
            ys, xs = np.nonzero(m)
            self.frames.setdefault(oid, []).append(t)
            self.bits.setdefault(oid, []).append(np.packbits(m.reshape(-1)))
            self.boxes.setdefault(oid, []).append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])

    def save(self, path: Path) -> None:
        """Write `shape` (H, W) and per object `frames_<id>` (N,) and `bits_<id>` (N, ceil(H*W/8)) packbits rows."""
        arrays: dict[str, np.ndarray] = {"shape": np.array([self.height, self.width], np.int64)}
        for oid, rows in self.bits.items():
            arrays[f"frames_{oid}"] = np.array(self.frames[oid], np.int64)
            arrays[f"bits_{oid}"] = np.stack(rows)
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]  # numpy's stubs match **arrays against allow_pickle: bool


def truth_dict(plan: VideoPlan, seed: int, recorder: MaskRecorder) -> dict:
    return {
        "truth_version": TRUTH_VERSION,
        "source": "synthetic",
        "seed": seed,
        "name": plan.name,
        "fps": float(plan.fps),
        "fps_fraction": f"{plan.fps.numerator}/{plan.fps.denominator}",
        "frames": plan.frames,
        "width": plan.width,
        "height": plan.height,
        "cuts": [t.start for t in plan.transitions if t.kind == "cut"],
        "transitions": [{"kind": t.kind, "start": t.start, "end": t.end} for t in plan.transitions],
        "shots": [
            {"start": s.pure_start, "end": s.pure_end, "photo": s.photo, "camera": s.camera.kind}
            for s in plan.shots
        ],
        "objects": [
            {
                "id": o.id, "label": o.shape, "texture": o.texture,
                "frames": recorder.frames.get(o.id, []), "boxes": recorder.boxes.get(o.id, []),
            }
            for o in plan.objects
            if recorder.frames.get(o.id)
        ],
    }


def write_truth(path: Path, truth: dict) -> None:
    path.write_text(json.dumps(truth, indent=1) + "\n")


def truth_path(video: str | Path) -> Path:
    v = Path(video)
    return v.with_name(v.name.removesuffix(".mp4") + ".truth.json")


def masks_path(video: str | Path) -> Path:
    v = Path(video)
    return v.with_name(v.name.removesuffix(".mp4") + ".masks.npz")


def load_truth(path: str | Path) -> dict:
    """Load a truth file, given it or the video it sits beside."""
    p = Path(path)
    if p.suffix == ".mp4":
        p = truth_path(p)
    try:
        truth = json.loads(p.read_text())
    except FileNotFoundError:
        raise TruthError(f"{p}: no truth file") from None
    except json.JSONDecodeError as exc:
        raise TruthError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if truth.get("truth_version") != TRUTH_VERSION:
        raise TruthError(f"{p}: truth_version {truth.get('truth_version')!r}, expected {TRUTH_VERSION}")
    return truth


def load_masks(path: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{object id: (frame indices (N,), masks bool (N, H, W))}, given the npz or its video."""
    p = Path(path)
    if p.suffix == ".mp4":
        p = masks_path(p)
    if not p.is_file():
        raise TruthError(f"{p}: no masks file")
    with np.load(p) as z:
        h, w = (int(x) for x in z["shape"])
        out = {}
        for key in z.files:
            if key.startswith("frames_"):
                oid = int(key.removeprefix("frames_"))
                frames = z[key]
                bits = np.unpackbits(z[f"bits_{oid}"], axis=1, count=h * w)
                out[oid] = (frames, bits.reshape(len(frames), h, w).astype(bool))
    return out
