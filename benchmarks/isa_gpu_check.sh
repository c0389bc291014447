#!/usr/bin/env bash
# One device call: ISA tests on the GPU (bf16/fp16), then the benchmark (cuDNN beside ISA at the four
# shapes, plan reuse, target-only queries, memory, error vs latency table + PNG); logs and JSON go to $OUT.
# Usage: bash benchmarks/isa_gpu_check.sh [benchmark args...]   (default: the full run)
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
OUT="${OUT:-out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
date -u +"%Y-%m-%d %H:%M UTC" | tee -a "$OUT/gpu.txt"
timeout "${ISA_TEST_TIMEOUT:-300}" python3 -m pytest -q -p no:cacheprovider -o addopts="" \
    tests/test_isa_kernels.py tests/test_isa_reference.py tests/test_isa_target_plan.py tests/test_isa_hopper.py 2>&1 | tee "$OUT/tests.log"
if [ "$#" -eq 0 ]; then
    set -- --shapes 0,2,1,3 --backends cudnn,isa --sweep --tradeoff
fi
python3 benchmarks/isa_attention.py --json-out "$OUT/isa_bench.json" --plot-out "$OUT/isa_tradeoff.png" "$@" \
    2>&1 | tee "$OUT/bench.log"
