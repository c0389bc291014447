"""`python -m curation.shots VIDEO [--detector fast|transnetv2] [--json] [--threshold T]`: print a video's shots."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Iterator

from curation.shots.base import DETECTOR_NAMES, ShotDetection, ShotError, get_detector
from manifests.cli_args import OneLineParser, float_in
from manifests.media.probe import VideoError
from manifests.render import printable

# --threshold sets the detector's main knob: TransNetV2's probability, our detector's cut ratio
THRESHOLD_FIELD = {"transnetv2": "threshold", "fast": "cut_ratio"}


def shots_table(det: ShotDetection) -> str:
    lines = [f"{'shot':>4} {'start':>7} {'end':>7} {'start_s':>9} {'end_s':>9}"]
    for i, (a, b) in enumerate(det.shots()):
        lines.append(f"{i:>4} {a:>7} {b:>7} {a / det.fps:>9.3f} {b / det.fps:>9.3f}")
    return "\n".join(lines)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what the C decoders (decord's and PyAV's FFmpeg) log on fd 2, so a bad input yields one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m curation.shots", description=__doc__)
    parser.add_argument("video")
    parser.add_argument("--detector", choices=DETECTOR_NAMES, default="fast")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--threshold", type=float_in(0.0, 1e6), default=None,
                        help="TransNetV2: transition probability (default 0.5); fast: cut ratio (default 3.0)")
    args = parser.parse_args(argv)
    try:
        detector = get_detector(args.detector)
        if args.threshold is not None:
            config = dataclasses.replace(detector.config, **{THRESHOLD_FIELD[args.detector]: args.threshold})
            detector = get_detector(args.detector, config)
        with quiet_native_stderr():
            detector.setup()
            det = detector.detect(args.video)
    except (ShotError, VideoError, ValueError, OSError) as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({
            "video": args.video, "detector": detector.name, "model_name": detector.model_name,
            "weights_id": detector.weights_id, "fps": det.fps, "frames": det.frames, "cuts": det.cuts,
            "transitions": [list(t) for t in det.transitions], "shots": [list(s) for s in det.shots()],
        }))
    else:
        print(printable(f"{args.video}: {det.frames} frames at {det.fps:.3f} fps, {len(det.shots())} shots "
                        f"({detector.name})"))
        print(shots_table(det))
    return 0


if __name__ == "__main__":
    sys.exit(main())
