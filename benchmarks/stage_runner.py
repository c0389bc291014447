"""The timed half of benchmarks/model_stages_gpu.py: worker processes that share one GPU and run the objects and
CLIP stages clip by clip, and the thread that samples GPU utilisation (NVML) and CPU load meanwhile.

Workers are spawned processes, as Ray actors with fractional num_gpus would be: each sets up both stages,
runs one warm-up clip, reports ready, then takes the next untaken clip until the count or the time is up.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np


def _timed(obj: Any, method: str, spent: dict[str, float], key: str) -> None:
    """Make obj.method add its wall seconds to spent[key] (it returns host arrays, so it has synchronised)."""
    inner = getattr(obj, method)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t0

    setattr(obj, method, wrapper)


def stage_worker(rank: int, job: SimpleNamespace, threads: int, clips: list[str], out_root: str, max_clips: int,
                 taken: Any, results: Any, start: Any, stop: Any) -> None:
    """One GPU-sharing worker: both stages set up once, then one clip per unit (the next untaken one, cycling
    over `clips`) until `max_clips` are taken or it is told to stop."""
    import cv2
    import torch

    from curation.stage import WorkUnit
    from curation.stages.clip_scores import ClipScoresStage
    from curation.stages.objects import ObjectsStage

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    objects, scores = ObjectsStage(job.objects), ClipScoresStage(job.clip_scores)
    objects.setup()
    scores.setup()
    spent = dict.fromkeys(("objects", "yolo", "sam", "clip_scores", "clip_model"), 0.0)
    count = dict.fromkeys(("clips", "objects_rows", "mask_frames", "sam_frames", "sam_prompts", "scores_rows",
                           "errors"), 0)
    segment = objects.sam.masks_of_frames

    def counted(frames: Any, boxes: list) -> Any:  # the frames SAM itself sees (keyframes), not the masked ones
        count["sam_frames"] += len(frames)
        count["sam_prompts"] += sum(len(b) for b in boxes)
        return segment(frames, boxes)

    objects.sam.masks_of_frames = counted
    _timed(objects.yolo, "track", spent, "yolo")
    _timed(objects.sam, "masks_of_frames", spent, "sam")
    _timed(scores.embedder, "frames", spent, "clip_model")
    first_error = None

    def one(clip_id: str, uri: str) -> None:
        nonlocal first_error
        unit = WorkUnit(clip_id, [uri], out_root, tables={"clips": [{"clip_id": clip_id, "status": "ok", "uri": uri}]})
        for stage, key, table in ((objects, "objects", "objects"), (scores, "clip_scores", "scores")):
            t0 = time.perf_counter()
            out = stage.process(unit).rows
            spent[key] += time.perf_counter() - t0
            count[f"{table}_rows"] += len(out[table])
            count["errors"] += len(out["errors"])
            first_error = first_error or (out["errors"][0]["message"] if out["errors"] else None)
            if table == "objects":
                count["mask_frames"] += len({f for r in out["objects"] for f in r["frame_indices"]})
        count["clips"] += 1

    one(f"warm-up-{rank}", clips[rank % len(clips)])  # CUDA kernels, cuDNN plans, ultralytics' predictor
    spent.update(dict.fromkeys(spent, 0.0))
    count.update(dict.fromkeys(count, 0))
    results.put(("ready", None))
    start.wait()
    while not stop.is_set():
        with taken.get_lock():
            i = taken.value
            taken.value += 1
        if i >= max_clips:
            break
        one(f"clip-{i:05d}", clips[i % len(clips)])
    results.put(("done", {**count, **{f"{k}_s": v for k, v in spent.items()}, "first_error": first_error}))


class Sampler(threading.Thread):
    """GPU utilisation (NVML: % of the last sample period a kernel ran) and CPU load every `period` s."""

    def __init__(self, period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.period, self.gpu, self.cpu, self.mem_gib = period, [], [], 0.0
        self._halt = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # noqa: BLE001 - no NVML (CPU machine, no driver): GPU samples stay empty
            self._nvml = None

    def run(self) -> None:
        import psutil

        psutil.cpu_percent()
        while not self._halt.wait(self.period):
            if self._nvml is not None:
                self.gpu.append(float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu))
                self.mem_gib = max(self.mem_gib, self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**30)
            self.cpu.append(psutil.cpu_percent())

    def stop(self) -> dict:
        self._halt.set()
        self.join()
        mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
        return {"gpu_busy_mean_pct": mean(self.gpu), "gpu_busy_samples": len(self.gpu),
                "gpu_busy_p10_pct": float(np.percentile(self.gpu, 10)) if self.gpu else None,
                "cpu_busy_mean_pct": mean(self.cpu), "gpu_memory_peak_gib": self.mem_gib if self.gpu else None}


def run_stages(workers: int, clips: list[Path], job: SimpleNamespace, clip_frames: int, seconds: float,
               max_clips: int, cores: int) -> dict:
    """Both stages over clips (cycled) in `workers` processes for `seconds` or `max_clips`, whichever first."""
    ctx = mp.get_context("spawn")
    taken, results, start, stop = ctx.Value("l", 0), ctx.Queue(), ctx.Event(), ctx.Event()
    threads = max(1, cores // workers)
    names = [c.name for c in clips]
    procs = [ctx.Process(target=stage_worker, daemon=True,
                         args=(r, job, threads, names, str(clips[0].parent), max_clips, taken, results, start, stop))
             for r in range(workers)]
    for p in procs:
        p.start()

    def collect(kind: str, deadline: float | None) -> list:
        """`workers` messages of `kind`; past `deadline` the workers are told to stop; a dead worker is fatal."""
        got = []
        while len(got) < workers:
            try:
                k, payload = results.get(timeout=0.5)
                got.append(payload)
            except queue.Empty:
                if deadline is not None and time.perf_counter() > deadline:
                    stop.set()  # time is up: each worker finishes its clip, then reports
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise SystemExit(f"a stage worker died (exit code {dead[0]}) while waiting for '{kind}'") from None
        return got

    collect("ready", None)
    sampler = Sampler()
    sampler.start()
    t0 = time.perf_counter()
    start.set()
    done = collect("done", t0 + seconds)
    elapsed = time.perf_counter() - t0
    util = sampler.stop()
    for p in procs:
        p.join(timeout=60)
    total = {k: sum(d[k] for d in done) for k in done[0] if k != "first_error"}
    object_frames = total["clips"] * min(clip_frames, job.objects.max_frames)  # decoded by the objects stage
    frames = object_frames + total["clips"] * min(clip_frames, job.clip_scores.frames_per_clip)
    host = total["objects_s"] + total["clip_scores_s"] - total["yolo_s"] - total["sam_s"] - total["clip_model_s"]
    busy = total["objects_s"] + total["clip_scores_s"]
    return {"workers": workers, "threads_per_worker": threads, "seconds": elapsed, **total,
            "clips_per_s": total["clips"] / elapsed, "frames_decoded_per_s": frames / elapsed,
            "sam_frames_share": total["sam_frames"] / max(1, object_frames),
            "mask_frames_share": total["mask_frames"] / max(1, object_frames),
            "sam_prompts_per_sam_frame": total["sam_prompts"] / max(1, total["sam_frames"]),
            "share_of_worker_time": {"decode_and_host": host / busy, "yolo": total["yolo_s"] / busy,
                                     "sam": total["sam_s"] / busy, "clip": total["clip_model_s"] / busy},
            "first_error": next((d["first_error"] for d in done if d["first_error"]), None), **util}
