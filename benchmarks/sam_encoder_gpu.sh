#!/usr/bin/env bash
# One device call: SAM's image encoder, library attention against the fused form, fp32/bf16, batches, compiled
# (benchmarks/sam_encoder.py; docs/PERFORMANCE.md, "SAM's image encoder"). Run from a copy of the repository
# that holds .whl/ with segment-anything and pydantic (+ pydantic-core, annotated-types, typing-inspection,
# typing-extensions) for Python 3.12: the device image lacks them. Arguments go to the benchmark.
set -uo pipefail
export PYTHONUNBUFFERED=1 LIVEDITOR_OFFLINE=1
source "$(dirname "$0")/device_site.sh"
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv
  python3 benchmarks/sam_encoder.py --json-out "$OUT/sam_encoder.json" "$@"
  date -u
} 2>&1 | tee "$OUT/run.log"
