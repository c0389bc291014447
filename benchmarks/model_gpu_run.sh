#!/usr/bin/env bash
# One device call for LIVEditor (docs/MODEL.md): GPU model tests, the speed benchmark, a resumable
# `small` training run (on the curated pairs under $DATA, or on synthetic pairs built there), and validation.
# Everything lands in $OUT.
# Run from a copy of the repository that holds .whl/ (av, pycocotools, open_clip_torch, ftfy, wcwidth wheels
# for Python 3.12: the device image lacks them).
#   TRAIN_S: training time limit in seconds (default 240); RUN: run folder (kept for a resumed call);
#   TRAIN_ONLY=1 skips the GPU tests and the speed benchmark; DATA: a curated dataset root (edit_pairs with
#   train/val splits, e.g. out/train_pairs from jobs/configs/train_pairs.yaml) carried with the call.
set -uo pipefail
export PYTHONUNBUFFERED=1
SITE=$(mktemp -d)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 1
export PYTHONPATH=$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}
RUN=${RUN:-$(mktemp -d)/liveditor-small}
LOG=$OUT/run.log
{
  date -u; nvidia-smi -L
  if [ -z "${TRAIN_ONLY:-}" ]; then
    python3 -m pytest tests/test_isa_model_gpu.py -q -p no:cacheprovider 2>&1 | tail -5
    python3 benchmarks/model_speed.py --out "$OUT/model_speed.json" --shapes "${SHAPES:-train-bucket,32K}" 2>&1
  fi
  python3 -m isa_model train --config small ${DATA:+--data "$DATA"} --out "$RUN" --resume --time-limit "${TRAIN_S:-240}" 2>"$RUN.err" | tail -3
  tail -c 600 "$RUN.err"
  python3 -m isa_model validate --ckpt "$RUN/checkpoints" ${DATA:+--data "$DATA"} --out "$RUN/val" 2>&1 | tail -12
  python3 -m isa_model validate --ckpt "$RUN/checkpoints" ${DATA:+--data "$DATA"} --out "$RUN/val-raw" --weights model --max-pairs 32 2>&1 | tail -8
  cp "$RUN/val-raw/validation.json" "$OUT/validation-raw.json"
  date -u
} 2>&1 | tee "$LOG"
cp "$RUN/loss.png" "$RUN/metrics.jsonl" "$RUN/val/validation.json" "$RUN/val/preview.png" "$RUN/val/preview.mp4" "$OUT/" 2>/dev/null
ls -la "$OUT"
