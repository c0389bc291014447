#!/usr/bin/env bash
# LIVEditor v2 on one GPU (issue 24; docs/MODEL.md, "Starting from the source"). One script, run as two calls on
# one warm machine: the run folders stay under RUNS (an ignored folder of the repository copy) between them.
#   PHASE=ablation: trains `small` side by side from scratch, STEPS steps each, on DATA's train split, one run per
#     VARIANTS entry name:seed (default "noise:0 bridge:0 deltanomask:0 delta:0 delta:1"), objectives of
#     isa_model/objective.py:
#       noise       - rectified flow from noise (the first LIVEditor), 16 steps with guidance 1.5;
#       bridge      - the path from the source, with the blend mask, 16 steps, guidance 1.0;
#       delta       - the change relative to the source, with the blend mask (`small` now), one step;
#       deltanomask - the same without the blend mask.
#     Seed 0 of every variant is scored on the test split (the ablation; noise also sampled from the source
#     noised to t = 0.6), every QUALITY run (default delta) on the val split (the quality table).
#   PHASE=quality: resumes the QUALITY runs to TOTAL steps (or TRAIN_S seconds) and scores them on val and test.
#   PHASE=speed: benchmarks/model_speed.py at SHAPES (default 32K,64K) alone.
# DATA: a curated dataset root carried with the call (jobs/configs/train_pairs.yaml); SNAPSHOT: its edit_pairs
# snapshot JSON, read instead of the Delta log (the device image has no deltalake). Wheels in .whl/ (av,
# open_clip_torch, ftfy, wcwidth, pycocotools for Python 3.12) are installed once into SITE; a later call on the same
# machine finds them there. Writes $OUT/v2-<phase>.log and $OUT/v2_<phase>.json (benchmarks/model_v2_collect.py).
# CONFIG (default small) lets the same script run on the CPU with tiny, as a check of the script itself.
set -uo pipefail
export PYTHONUNBUFFERED=1
PHASE=${PHASE:-ablation}
RUNS=${RUNS:-out/v2-runs}
SITE=${SITE:-out/v2-site}
: "${DATA:?DATA: the curated dataset root}" "${SNAPSHOT:?SNAPSHOT: its edit_pairs snapshot JSON}"
if [ ! -d "$SITE/av" ] || [ ! -d "$SITE/pycocotools" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl || exit 1
fi
export PYTHONPATH=$PWD/$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ "$PHASE" = speed ]; then  # `small`'s training and sampling steps, ISA vs dense (benchmarks/model_speed.py)
  python3 benchmarks/model_speed.py --out "$OUT/model_speed.json" --shapes "${SHAPES:-32K,64K}" 2>&1 | tee "$OUT/v2-speed.log"
  exit
fi
declare -A FLAGS=([noise]="--objective noise --blend-mask off" [bridge]="--objective source --blend-mask on"
                  [delta]="--objective delta --blend-mask on" [deltanomask]="--objective delta --blend-mask off")
declare -A GUIDANCE=([noise]=1.5 [bridge]=1.0 [delta]=1.0 [deltanomask]=1.0)
QUALITY=${QUALITY:-delta}
if [ "$PHASE" = ablation ]; then VARIANTS=${VARIANTS:-noise:0 bridge:0 deltanomask:0 delta:0 delta:1}
else VARIANTS=${VARIANTS:-$QUALITY:0 $QUALITY:1}; fi
mkdir -p "$RUNS"
validate() {  # run split extra...: score one run's EMA weights, in the background
  local run=$1 split=$2 name=$3; shift 3
  python3 -m isa_model validate --ckpt "$RUNS/$run/checkpoints" --data "$DATA" --snapshot "$SNAPSHOT" \
      --split "$split" --out "$RUNS/$run/$PHASE-$name" "$@" >"$RUNS/$run/$PHASE-$name.log" 2>&1 &
}
{
  date -u; nvidia-smi -L
  if [ "$PHASE" = quality ]; then  # the GPU tests, beside the training runs
    python3 -m pytest tests/test_isa_model_gpu.py -q -p no:cacheprovider >"$RUNS/gpu-tests.log" 2>&1 &
  fi
  for vs in $VARIANTS; do
    v=${vs%:*}; s=${vs#*:}; run=$v-s$s
    if [ "$PHASE" = ablation ]; then steps=${STEPS:-600}; resume=""; else steps=${TOTAL:-4000}; resume=--resume; fi
    python3 -m isa_model train --config "${CONFIG:-small}" ${FLAGS[$v]} --seed "$s" --data "$DATA" --snapshot "$SNAPSHOT" \
        --out "$RUNS/$run" --steps "$steps" $resume --time-limit "${TRAIN_S:-380}" \
        >"$RUNS/$run.$PHASE.out" 2>"$RUNS/$run.$PHASE.err" &
  done
  wait
  date -u
  [ -f "$RUNS/gpu-tests.log" ] && [ "$PHASE" = quality ] && tail -3 "$RUNS/gpu-tests.log"
  for vs in $VARIANTS; do
    v=${vs%:*}; s=${vs#*:}; run=$v-s$s
    echo "== $run: $(tail -c 400 "$RUNS/$run.$PHASE.err" | tr '\r' '\n' | grep -v '^$' | tail -2)"
    [ "$s" = 0 ] && validate "$run" test test --guidance "${GUIDANCE[$v]}"
    [ "$v" = noise ] && [ "$PHASE" = ablation ] && validate "$run" test test-sdedit --guidance 1.5 --start-t 0.6
    [ "$v" = "$QUALITY" ] && validate "$run" val val --guidance "${GUIDANCE[$v]}"
  done
  wait
  date -u
  for f in "$RUNS"/*/"$PHASE"-*.log; do echo "== $f"; tail -9 "$f"; done
  python3 benchmarks/model_v2_collect.py "$RUNS" "$PHASE" "$OUT/v2_$PHASE.json"
} 2>&1 | tee "$OUT/v2-$PHASE.log"
for vs in $VARIANTS; do run=${vs%:*}-s${vs#*:}
  [ -f "$RUNS/$run/$PHASE-val/preview.png" ] && cp "$RUNS/$run/$PHASE-val/preview.png" "$OUT/preview_${run}_$PHASE.png"
done
[ -f "$RUNS/$QUALITY-s0/loss.png" ] && cp "$RUNS/$QUALITY-s0/loss.png" "$OUT/loss_$QUALITY-s0_$PHASE.png"
ls -la "$OUT"
