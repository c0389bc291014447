#!/usr/bin/env bash
# One device call for issue 21's bar: the GPU tests of the model stages, then the objects + CLIP stages end to end
# (benchmarks/model_stages_gpu.py: 5 s 640x360 clips, 4 tracked objects, a mask on every frame) with SAM on every
# 8th frame (fused, compiled, bf16, batch 8) at 16 workers on one GPU, once with the stages' blocking GPU waits and
# once with CUDA's default spin (LIVEDITOR_CUDA_WAIT=spin) for the ratio, then at 24 workers; RUNS picks others.
# Run from a copy of the repository that holds .whl/ (see device_site.sh); JSON and logs land in $OUT.
#   [RUNS="blocking 16,blocking 24"] bash benchmarks/model_stages_gpu_bar.sh [stage seconds, default 30]
set -uo pipefail
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 HF_HUB_OFFLINE=1 LIVEDITOR_OFFLINE=1
source "$(dirname "$0")/device_site.sh"
SECONDS_PER_RUN="${1:-30}"
RUN=(python3 benchmarks/model_stages_gpu.py --skip-models --keyframe-interval 8 --sam-option attention=fused
     --sam-option compile=true --sam-option batch=8 --stage-seconds "$SECONDS_PER_RUN")
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv
  timeout 240 python3 -m pytest -o addopts="" -q -p no:cacheprovider --timeout 200 tests/test_model_devices.py \
    tests/test_yolo_letterbox.py tests/test_models_clip.py tests/test_models_objects.py 2>&1 | tail -6
  IFS=, read -ra runs <<< "${RUNS:-blocking 16,spin 16,blocking 24}"
  for run in "${runs[@]}"; do
    set -- $run
    echo "== LIVEDITOR_CUDA_WAIT=$1, $2 workers, $(date -u +%T)"
    LIVEDITOR_CUDA_WAIT=$1 timeout 240 "${RUN[@]}" --workers "$2" --out "$OUT/model_stages_gpu_h200_k8_$1_w$2.json" \
      | tail -2
  done
  date -u
} 2>&1 | grep --line-buffered -v "RANDOM-INIT\|No pretrained weights" | tee "$OUT/run.log"
