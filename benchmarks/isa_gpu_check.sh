#!/usr/bin/env bash
# One device call: ISA tests on the GPU (bf16/fp16), then the benchmark; logs and JSON go to $OUT.
# Usage: bash benchmarks/isa_gpu_check.sh [benchmark args...]
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
OUT="${OUT:-out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_isa_kernels.py tests/test_isa_reference.py \
    2>&1 | tee "$OUT/tests.log"
python3 benchmarks/isa_attention.py --json-out "$OUT/bench.json" "$@" 2>&1 | tee "$OUT/bench.log"
