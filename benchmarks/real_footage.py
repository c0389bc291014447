"""Real footage at scale: peak RSS and real-time factor per CPU stage on long HD and 4K inputs (issue 20).

Generates H.264 sources (a 10-minute 1080p30 one and a 4K one by default: textured shots that pan and zoom,
3-20 s long, hard cuts between them), then for each source:
- in-process, stage by stage: each of ingest, shots, extract and signals runs in a fresh child process on
  the previous stage's rows; the child's own CPU seconds and peak RSS come from os.wait4's rusage.
  Real-time factor per core = source seconds / CPU seconds (bar: >= 2x for the four together);
- through Ray: the whole job (`python -m jobs.curate`), its process tree sampled with psutil: peak RSS per
  stage actor (bar: <= 2 GiB each, as in-process).

    python benchmarks/real_footage.py --minutes 10 --uhd-seconds 20 --ray-snap-s 0.5 --work DIR   # JSON: benchmarks/results/
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.pipeline_throughput import run_job  # noqa: E402

MiB = 1 << 20
STAGES = ("ingest", "shots", "extract", "signals")
RSS_BAR_MIB = 2048
REALTIME_BAR = 2.0


def generate(path: Path, seconds: float, width: int, height: int, fps: int = 30, seed: int = 0) -> Path:
    """Textured shots (3-20 s) that pan or zoom, hard cuts between them, as H.264 (x264 ultrafast, crf 23, a
    keyframe every 250 frames). Each cut's first frame is a keyframe, as x264's scene-cut detection makes it in
    real footage at its default presets (ultrafast, used here for speed, turns that detection off)."""
    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".partial.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        frame_no, total = 0, int(seconds * fps)
        while frame_no < total:
            length = min(total - frame_no, int(rng.uniform(3, 20) * fps))
            coarse = rng.integers(0, 256, (height // 24 + 4, width // 24 + 4, 3), np.uint8)
            texture = cv2.resize(coarse, (width * 5 // 4, height * 5 // 4), interpolation=cv2.INTER_CUBIC)
            zoom, (dx, dy) = rng.random() < 0.5, rng.uniform(-1.5, 1.5, 2)
            for t in range(length):
                picture_type = "I" if t == 0 else "NONE"
                if zoom:  # a crop shrinking from the whole texture to 80% of it, scaled back to the frame
                    scale = 1.0 - 0.2 * t / length
                    h, w = int(texture.shape[0] * scale), int(texture.shape[1] * scale)
                    y, x = (texture.shape[0] - h) // 2, (texture.shape[1] - w) // 2
                    frame = cv2.resize(texture[y : y + h, x : x + w], (width, height), interpolation=cv2.INTER_LINEAR)
                else:  # a pan across the texture
                    x = int(width / 8 + dx * t) % (width // 4)
                    y = int(height / 8 + dy * t) % (height // 4)
                    frame = texture[y : y + height, x : x + width]
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                picture.pict_type = av.video.frame.PictureType[picture_type]
                for packet in stream.encode(picture):
                    container.mux(packet)
            frame_no += length
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return path


def write_config(work: Path, source: Path, output: Path, snap_s: float, skip_nonref: bool) -> Path:
    """curate.yaml on this source, with the shots stage's keyframe snap and reference-pictures-only decoding set."""
    config = work / f"{output.name}.yaml"
    shots = {"keyframe_snap_s": snap_s, "detector_options": {"skip_nonref": skip_nonref}}
    config.write_text(yaml.safe_dump({"extends": str(REPO / "jobs/configs/curate.yaml"), "input": str(source.parent),
                                      "output": str(output), "num_cpus": 2, "shots": shots}))
    return config


def run_stage_child(config_path: str, stage_name: str, unit_in: str, unit_out: str) -> None:
    """In the child: build one stage from the job config, run it on the unit, write the unit back."""
    from curation.job_config import load_config
    from curation.pipeline import build_stages
    from curation.stage import WorkUnit

    stage = next(s for s in build_stages(load_config(config_path)) if s.name == stage_name)
    stage.setup()
    unit = stage.run(WorkUnit.from_json(Path(unit_in).read_text()))
    Path(unit_out).write_text(unit.to_json())


def measure_stages(work: Path, source: Path, snap_s: float, skip_nonref: bool) -> list[dict[str, Any]]:
    """Each stage in its own child process; CPU seconds and peak RSS from that child's rusage."""
    from curation.stage import WorkUnit

    output = work / f"out-{source.stem}-snap{snap_s:g}-in-process"
    shutil.rmtree(output, ignore_errors=True)  # a fresh output: a resume would skip the work
    config = write_config(work, source, output, snap_s, skip_nonref)
    unit_file = work / f"{output.name}-unit-0.json"
    unit_file.write_text(WorkUnit("b000000", [str(source)], str(output)).to_json())
    rows = []
    for k, name in enumerate(STAGES):
        nxt = work / f"{output.name}-unit-{k + 1}.json"
        cmd = [sys.executable, __file__, "--run-stage", str(config), name, str(unit_file), str(nxt)]
        start = time.perf_counter()
        pid = os.spawnv(os.P_NOWAIT, sys.executable, cmd)
        _, status, usage = os.wait4(pid, 0)
        if status != 0:
            raise SystemExit(f"error: stage {name} failed on {source.name} (exit status {status})")
        rows.append({"stage": name, "wall_s": round(time.perf_counter() - start, 2),
                     "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)})
        unit_file = nxt
    unit = WorkUnit.from_json(unit_file.read_text())
    errors = unit.rows("errors")
    if errors:
        raise SystemExit(f"error: {len(errors)} errors rows, first: {errors[0].get('message') or errors[0]}")
    clips = [c for c in unit.rows("clips") if c["uri"]]
    seconds = sum(c["end_time_s"] - c["start_time_s"] for c in clips)
    rows.append({"stage": "clips", "count": len(clips), "seconds": round(seconds, 2)})
    return rows


def measure_ray(work: Path, source: Path, snap_s: float, skip_nonref: bool) -> dict[str, Any]:
    output = work / f"out-{source.stem}-snap{snap_s:g}-ray"
    shutil.rmtree(output, ignore_errors=True)
    config = write_config(work, source, output, snap_s, skip_nonref)
    wall, peaks, by_process, cpu_by_process = run_job(config, False, sorted(os.sched_getaffinity(0)), 0.5)
    actors = {k: round(v / MiB, 1) for k, v in by_process.items() if "StageActor" in k}
    return {"wall_s": round(wall, 1), "cpu_s": round(peaks["cpu_s"], 1), "driver_peak_rss_mib": round(peaks["driver"] / MiB, 1),
            "actor_peak_rss_mib": actors, "cpu_s_by_process": {k: round(v, 1) for k, v in cpu_by_process.items()}}


def print_result(result: dict[str, Any]) -> None:
    seconds, stages = result["seconds"], result["stages"]
    print(f"\n{result['source']} ({seconds:g} s of {result['width']}x{result['height']}), keyframe_snap_s "
          f"{result['keyframe_snap_s']:g}, skip_nonref {result['skip_nonref']}: {result['clips']['count']} clips, "
          f"{result['clips']['seconds']} s; in-process")
    print(f"{'stage':<10}{'wall s':>9}{'cpu s':>9}{'x real time/core':>18}{'peak RSS MiB':>14}")
    total = {"stage": "all four", "wall_s": sum(r["wall_s"] for r in stages), "cpu_s": sum(r["cpu_s"] for r in stages),
             "peak_rss_mib": result["peak_rss_mib"]}
    for r in [*stages, total]:
        factor = seconds / max(r["cpu_s"], 1e-9)
        print(f"{r['stage']:<10}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{factor:>18.2f}{r['peak_rss_mib']:>14.0f}")
    if "ray" in result:
        actors = sorted(result["ray"]["actor_peak_rss_mib"].items())
        print(f"Ray: wall {result['ray']['wall_s']} s, CPU {result['ray']['cpu_s']} s; peak RSS per actor (MiB): "
              + ", ".join(f"{name.split('(')[-1].rstrip(')')} {mib:.0f}" for name, mib in actors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the 1080p30 source")
    parser.add_argument("--uhd-seconds", type=float, default=20.0, help="length of the 2160p30 source (0: none)")
    parser.add_argument("--work", type=Path, default=None, help="folder for sources and outputs (kept; default: a temp folder)")
    parser.add_argument("--ray-snap-s", type=float, nargs="*", default=None,
                        help="the keyframe_snap_s values also run through Ray (default: all; none: no Ray runs)")
    parser.add_argument("--keyframe-snap-s", type=float, nargs="+", default=[0.0, 0.5],
                        help="shots.keyframe_snap_s values to run (0: exact shot boundaries, every clip re-encoded)")
    parser.add_argument("--skip-nonref", choices=("on", "off"), default="on",
                        help="shots.detector_options.skip_nonref (on in curate.yaml)")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/results/real_footage.json")
    parser.add_argument("--run-stage", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_stage:
        run_stage_child(*args.run_stage)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="real-footage-"))
    sources = [("1080p", args.minutes * 60, 1920, 1080)] + ([("2160p", args.uhd_seconds, 3840, 2160)] if args.uhd_seconds else [])
    results = []
    for label, seconds, width, height in sources:
        folder = work / label
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        source = generate(folder / f"{label}_{seconds:g}s.mp4", seconds, width, height)
        print(f"{label}: {source.name} ready ({time.perf_counter() - start:.0f} s)", flush=True)
        skip_nonref = args.skip_nonref == "on"
        for snap_s in args.keyframe_snap_s:
            *stages, clips = measure_stages(work, source, snap_s, skip_nonref)
            cpu = sum(r["cpu_s"] for r in stages)
            result = {"source": label, "seconds": seconds, "width": width, "height": height, "keyframe_snap_s": snap_s,
                      "skip_nonref": skip_nonref, "stages": stages, "clips": clips, "realtime_per_core": round(seconds / cpu, 3),
                      "peak_rss_mib": max(r["peak_rss_mib"] for r in stages)}
            if args.ray_snap_s is None or snap_s in args.ray_snap_s:
                result["ray"] = measure_ray(work, source, snap_s, skip_nonref)
            results.append(result)
            print_result(result)
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "bars": {"realtime_per_core": REALTIME_BAR, "peak_rss_mib": RSS_BAR_MIB}, "results": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
