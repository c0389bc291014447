"""One GPU worker of the objects stage under torch's profiler: where a clip's GPU time and host waits go.

The workload of benchmarks/model_stages_gpu.py (5 s 640x360 H.264 clips, random-init YOLO at conf 0 with 4
boxes a frame, SAM on every 8th frame, fused, compiled, bf16, batch 8): three warm-up clips, four timed
ones (wall and CPU seconds a clip, and the seconds inside YOLO and SAM), then one clip profiled: the ops by
GPU time and by CPU time, kernels launched and host waits (stream synchronisations, copies) per clip.

    python benchmarks/objects_profile_gpu.py > profile.log     # on a GPU machine (see model_stages_gpu_bar.sh)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import model_stages_gpu as stages  # noqa: E402  (beside this file)
from stage_runner import _timed  # noqa: E402


def main() -> None:
    from torch.profiler import ProfilerActivity, profile

    from curation.stage import WorkUnit
    from curation.stages.objects import ObjectsStage

    sizes = replace(stages.FULL, distinct_clips=2)
    root = Path(tempfile.mkdtemp())
    clips = stages.write_clips(root, sizes)
    tracker = root / "bytetrack_keep_all.yaml"
    tracker.write_text(json.dumps(stages.KEEP_ALL))
    job = stages.stage_job(sizes, "cuda", 4, str(tracker),
                           {"interval": 8, "batch": 8, "attention": "fused", "compile": True})
    stage = ObjectsStage(job.objects)
    stage.setup()

    def unit(i: int) -> WorkUnit:
        uri = clips[i % len(clips)].name
        return WorkUnit(f"c{i}", [uri], str(root), tables={"clips": [{"clip_id": f"c{i}", "status": "ok", "uri": uri}]})

    for i in range(3):
        stage.process(unit(i))
    spent = {"yolo": 0.0, "sam": 0.0}
    _timed(stage.yolo, "track", spent, "yolo")
    _timed(stage.sam, "masks_of_frames", spent, "sam")
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(4):
        stage.process(unit(i))
    print(f"per clip: wall {(time.perf_counter() - wall) / 4:.3f} s, CPU {(time.process_time() - cpu) / 4:.3f} s, "
          f"yolo {spent['yolo'] / 4:.3f} s, sam {spent['sam'] / 4:.3f} s")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        stage.process(unit(5))
    events = prof.key_averages()
    print(events.table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=60))
    print(events.table(sort_by="cpu_time_total", row_limit=25, max_name_column_width=60))
    kernels = sum(e.count for e in events if e.device_type.name == "CUDA")
    print(f"GPU kernels a clip: {kernels}")
    for e in events:
        if any(s in e.key for s in ("Synchronize", "cudaMemcpy")):
            print(f"host waits: {e.key} x{e.count}, {e.cpu_time_total / 1e3:.1f} ms")


if __name__ == "__main__":
    main()
