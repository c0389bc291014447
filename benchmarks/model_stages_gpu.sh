#!/usr/bin/env bash
# One device call: YOLO / SAM / CLIP frames/s per batch size, then the objects + CLIP stages end to end with
# GPU utilisation sampled (benchmarks/model_stages_gpu.py; docs/PERFORMANCE.md, "Model stages on GPU").
# Run from a copy of the repository that holds .whl/: the device image lacks ultralytics, lap,
# segment-anything, open_clip_torch (+ ftfy, wcwidth), decord, av, pycocotools and pydantic (+ pydantic-core,
# annotated-types, typing-inspection, typing-extensions); wheels for Python 3.12, the pins of pyproject.toml.
# Arguments go to the benchmark (e.g. --tiny --workers 2 for a smoke run). Logs and JSON land in $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 HF_HUB_OFFLINE=1 LIVEDITOR_OFFLINE=1
source "$(dirname "$0")/device_site.sh"
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv
  python3 benchmarks/model_stages_gpu.py --out "$OUT/model_stages_gpu.json" "$@"
  date -u
} 2>&1 | grep --line-buffered -v "RANDOM-INIT\|No pretrained weights" | tee "$OUT/run.log"
