#!/usr/bin/env bash
# LIVEditor v2 on one GPU (issue 24; docs/MODEL.md, "Starting from the source"). One script, run as two calls on
# one warm machine: the run folders stay under RUNS (an ignored folder of the repository copy) between them.
#   PHASE=ablation: trains `small` side by side from scratch, STEPS steps each, on DATA's train split, one run per
#     VARIANTS entry name:seed (default "noise:0 bridge:0 deltanomask:0 delta:0 delta:1"), objectives of
#     isa_model/objective.py:
#       noise       - rectified flow from noise (the first LIVEditor), 16 steps with guidance 1.5;
#       bridge      - the path from the source, with the blend mask, 16 steps, guidance 1.0;
#       delta       - the change relative to the source, with the blend mask, one step;
#       deltanomask - the same without the blend mask;
#       mw0.1, mw1, mw3 - delta with the blend mask, its cross-entropy weighted 0.1, 1 or 3 (train.mask_weight);
#       ew0.3, ew1, ew3 - mw0.1 with each pair weighing 1 + 0.3, 1 or 3 / its edited fraction (train.edit_weight;
#                     ew1 is `small` now); every other variant trains with edit weight 0;
#       ew1b16, ew1lr6 - ew1 with batch 16 or learning rate 6e-4 (compare these at equal TRAIN_S, not steps);
#       ew1b16c - ew1b16 cropping every sample in the middle, as validation does (data.crop centre);
#       ew1b16p - ew1b16 (random crops) with each token's place in its whole clip embedded (model.clip_coords);
#       ew1b16pw - ew1b16p with every block also attending to the instruction's tokens (model.text_attention);
#       ew1b16pwa - ew1b16pw with half the samples mirrored and half played backwards, their instructions
#                   rewritten to match (data.mirror, data.reverse: isa_model/augment.py);
#       ew1b16pl - ew1b16p with each token's offset from the path or place its instruction names
#                  (model.layout: isa_model/layout.py; `small` since 2026-12-06).
#     A variant is CONFIG with its flags: what CONFIG turns on and the flags leave alone (e.g. `small`'s
#     clip_coords and layout) is on in it too.
#     Every run is scored on the test split and on each EXTRA_VAL copy's val split (the ablation) at each
#     blend-mask cut of THRESHOLDS (default 0.5; train.mask_threshold), with each of WEIGHTS (default "ema"; "ema
#     model" also scores the raw weights, reports `*-model-t<cut>`); noise also sampled from the source noised
#     to t = 0.6.
#   PHASE=quality: resumes the QUALITY runs (QUALITY=auto: the mw*/ew* variant, cut and weights the ablation's
#     pairs chose, benchmarks/model_v2_collect.py --choose) to TOTAL steps (or TRAIN_S seconds) and scores them on
#     val (the quality table) and test at the cut MASK_THRESHOLD (default 0.5) with the one WEIGHTS (default ema).
#     The checkpoint each run resumed from is scored on both splits too (`val-resumed`, `test-resumed`), and the
#     val split of each EXTRA_VAL copy (other pair sets, packed alone: `val-<folder>`). FP8=1 scores val once
#     more with the ISA model's exact scores in fp8 (`validate --isa-fp8 on`: `val-fp8`, its ISA vs dense beside
#     the bf16 one). CUTS: more blend-mask cuts at which the final checkpoint's val, test and EXTRA_VAL splits are
#     scored (`val-t<cut>`, ...), and the cut and checkpoint (final or resumed, at MASK_THRESHOLD) that test and
#     EXTRA_VAL choose as the ablation's pairs do (model_v2_collect.py --choose RUNS quality: never by the val split).
#     HELD_OUT: packed copies of corpus seeds no run has seen, whose val splits the quality table then quotes
#     (`held-<folder>`, `held-<folder>-resumed`, at CUTS too; their test splits `held-<folder>-test[-resumed]`);
#     DATA's val split then chooses beside test, and the held-out pairs never do (--quoted held-<first folder>). A
#     copy carried by an earlier call on the same machine is found where it was left.
#   PHASE=train: resumes the QUALITY runs as the quality phase does (QUALITY=auto chosen the same way), scores
#     nothing; a call of training alone, so a later quality call needs less of its time for training.
#   PHASE=setup: installs the wheels and stops (a first call that carries them with part of DATA).
#   PHASE=speed: benchmarks/model_speed.py at SHAPES (default 32K,64K) alone, with SPEED_ARGS (e.g. "--compile
#     --graph-plan-train"); the only phase that needs no DATA.
# DATA: a curated dataset root carried with the call (jobs/configs/train_pairs.yaml); SNAPSHOT: its edit_pairs
# snapshot JSON, read instead of the Delta log (the device image has no deltalake). DATA_PARTS: folders carried by
# this or an earlier call whose files belong under DATA (benchmarks/model_pack_pairs.py --first-mib splits a copy
# that one carry cannot hold); they are copied in, the copy's duplicates put back, and DATA is checked for every file
# its rows use. Wheels in
# WHEELS (default .whl/: av, open_clip_torch, ftfy, wcwidth, pycocotools, pytest for Python 3.12) are installed
# once into SITE; a later call on the same machine finds them there. Writes $OUT/v2-<phase>.log,
# $OUT/v2_<phase>.json (benchmarks/model_v2_collect.py), $OUT/runs_<phase>.tgz (each run's metrics.jsonl and
# this phase's validation.json files) and $OUT/pictures_<phase>.tgz (previews and worst-kept pairs).
# TRAIN_ARGS: more `isa_model train` flags for every run (e.g. "--decay-steps 1500" with TOTAL).
# CONFIG (default small) lets the same script run on the CPU with tiny, as a check of the script itself.
set -uo pipefail
export PYTHONUNBUFFERED=1
PHASE=${PHASE:-ablation}
RUNS=${RUNS:-out/v2-runs}
SITE=${SITE:-out/v2-site}
if [ ! -d "$SITE/av" ] || [ ! -d "$SITE/pycocotools" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "${WHEELS:-.whl}"/*.whl || exit 1
fi
export PYTHONPATH=$PWD/$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ "$PHASE" = speed ]; then  # `small`'s training and sampling steps, ISA vs dense (benchmarks/model_speed.py)
  python3 benchmarks/model_speed.py --out "$OUT/model_speed.json" --shapes "${SHAPES:-32K,64K}" ${SPEED_ARGS:-} 2>&1 \
    | tee "$OUT/v2-speed.log"
  exit
fi
: "${DATA:?DATA: the curated dataset root}" "${SNAPSHOT:?SNAPSHOT: its edit_pairs snapshot JSON}"
[ "$PHASE" = setup ] && { echo "wheels in $SITE"; du -sh "$DATA" ${DATA_PARTS:-}; exit; }
for part in ${DATA_PARTS:-}; do cp -rn "$part"/. "$DATA"/ || exit 1; done
for copy in "$DATA" ${EXTRA_VAL:-} ${HELD_OUT:-}; do python3 benchmarks/model_pack_pairs.py --unpack "$copy" || exit 1; done
PLAIN="--edit-weight 0"  # every pair weighs the same per pixel, as these variants were first run
declare -A FLAGS=([noise]="--objective noise --blend-mask off $PLAIN" [bridge]="--objective source --blend-mask on $PLAIN"
                  [delta]="--objective delta --blend-mask on $PLAIN" [deltanomask]="--objective delta --blend-mask off $PLAIN"
                  [mw0.1]="--objective delta --blend-mask on --mask-weight 0.1 $PLAIN"
                  [mw1]="--objective delta --blend-mask on --mask-weight 1 $PLAIN"
                  [mw3]="--objective delta --blend-mask on --mask-weight 3 $PLAIN"
                  [ew0.3]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 0.3"
                  [ew1]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 1"
                  [ew3]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 3"
                  [ew1b16]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 1 --batch-size 16"
                  [ew1lr6]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 1 --lr 6e-4"
                  [ew1b16c]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 1 --batch-size 16 --crop centre"
                  [ew1b16p]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 1 --batch-size 16 --clip-coords on --layout off"
                  [ew1b16pw]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 1 --batch-size 16 --clip-coords on --text-attention on --layout off"
                  [ew1b16pwa]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 1 --batch-size 16 --clip-coords on --text-attention on --mirror 0.5 --reverse 0.5 --layout off"
                  [ew1b16pl]="--objective delta --blend-mask on --mask-weight 0.1 --edit-weight 1 --batch-size 16 --clip-coords on --layout on")
declare -A GUIDANCE=([noise]=1.5 [bridge]=1.0 [delta]=1.0 [deltanomask]=1.0 [mw0.1]=1.0 [mw1]=1.0 [mw3]=1.0
                     [ew0.3]=1.0 [ew1]=1.0 [ew3]=1.0 [ew1b16]=1.0 [ew1lr6]=1.0 [ew1b16c]=1.0
                     [ew1b16p]=1.0 [ew1b16pw]=1.0 [ew1b16pwa]=1.0 [ew1b16pl]=1.0)
QUALITY=${QUALITY:-delta}
if [ "$QUALITY" = auto ] && [ "$PHASE" != ablation ]; then  # the ablation's choice (model_v2_collect.py --choose)
  read -r QUALITY MASK_THRESHOLD WEIGHTS _ < <(python3 benchmarks/model_v2_collect.py --choose "$RUNS") || exit 1
  echo "chosen by the ablation's pairs: $QUALITY, mask threshold $MASK_THRESHOLD, $WEIGHTS weights"
fi
if [ "$PHASE" = ablation ]; then VARIANTS=${VARIANTS:-noise:0 bridge:0 deltanomask:0 delta:0 delta:1}
else VARIANTS=${VARIANTS:-$QUALITY:0 $QUALITY:1}; fi
for vs in $VARIANTS; do  # a name FLAGS lacks would train the config's defaults under that name
  [ -n "${FLAGS[${vs%:*}]+set}" ] || { echo "unknown variant ${vs%:*}; known: ${!FLAGS[*]}"; exit 1; }
done
held_name() { echo "held-$(basename "$1")"; }  # the report name of a HELD_OUT copy's val split
QUOTED=val  # the report name of the pairs the quality table quotes: never chosen on (model_v2_collect.py --quoted)
read -r first_held _ <<<"${HELD_OUT:-}"
[ -n "$first_held" ] && QUOTED=$(held_name "$first_held")
mkdir -p "$RUNS"
validate() {  # run split name extra...: score one run's EMA weights (CKPT: which checkpoint, default the newest;
  local run=$1 split=$2 name=$3 data=${VDATA:-$DATA} snapshot=$SNAPSHOT; shift 3  # VDATA: another packed copy)
  [ -n "${VDATA:-}" ] && snapshot=$VDATA/edit_pairs.snapshot.json
  python3 -m isa_model validate --ckpt "${CKPT:-$RUNS/$run/checkpoints}" --data "$data" --snapshot "$snapshot" \
      --split "$split" --out "$RUNS/$run/$PHASE-$name" "$@" >"$RUNS/$run/$PHASE-$name.log" 2>&1
}
# score: validate in the background once fewer than VALIDATE_JOBS (default 6) validations run. One after another,
# a run's six validations took 270 s of a 600 s quality call (H100, 2026-12-05); the card holds several at once.
score() {
  while [ "$(jobs -rp | wc -l)" -ge "${VALIDATE_JOBS:-6}" ]; do wait -n; done
  validate "$@" &
}
{
  date -u; nvidia-smi -L
  if [ "$PHASE" = quality ]; then  # the GPU tests, beside the training runs
    python3 -m pytest tests/test_isa_model_gpu.py -q -p no:cacheprovider >"$RUNS/gpu-tests.log" 2>&1 &
  fi
  declare -A RESUMED=()
  for vs in $VARIANTS; do
    v=${vs%:*}; s=${vs#*:}; run=$v-s$s
    if [ "$PHASE" = ablation ]; then steps=${STEPS:-600}; resume=""; else steps=${TOTAL:-4000}; resume=--resume
      RESUMED[$run]=$(ls -d "$RUNS/$run"/checkpoints/step_* 2>/dev/null | tail -1); fi  # empty: a new run
    python3 -m isa_model train --config "${CONFIG:-small}" ${FLAGS[$v]} --seed "$s" --data "$DATA" --snapshot "$SNAPSHOT" \
        --out "$RUNS/$run" --steps "$steps" $resume --time-limit "${TRAIN_S:-380}" ${TRAIN_ARGS:-} \
        >"$RUNS/$run.$PHASE.out" 2>"$RUNS/$run.$PHASE.err" &
  done
  wait
  date -u
  [ -f "$RUNS/gpu-tests.log" ] && [ "$PHASE" = quality ] && tail -3 "$RUNS/gpu-tests.log"
  for vs in $VARIANTS; do
    v=${vs%:*}; s=${vs#*:}; run=$v-s$s
    echo "== $run: $(tail -c 400 "$RUNS/$run.$PHASE.err" | tr '\r' '\n' | grep -av '^$' | tail -2)"
    if [ "$PHASE" = train ]; then continue; fi
    if [ "$PHASE" = ablation ]; then  # every validation its own process, VALIDATE_JOBS of them at once
      for th in ${THRESHOLDS:-0.5}; do for w in ${WEIGHTS:-ema}; do
        tag=${w/#ema/}; tag=${tag:+-$tag}  # EMA reports keep their names; raw weights' end in -model
        score "$run" test "test$tag-t$th" --guidance "${GUIDANCE[$v]}" --mask-threshold "$th" --weights "$w"
        for extra in ${EXTRA_VAL:-}; do VDATA=$extra score "$run" val "val-$(basename "$extra")$tag-t$th" \
            --guidance "${GUIDANCE[$v]}" --mask-threshold "$th" --weights "$w"; done; done; done
      [ "$v" = noise ] && score "$run" test test-sdedit --guidance 1.5 --start-t 0.6
    else
      cut=(--guidance "${GUIDANCE[$v]}" --mask-threshold "${MASK_THRESHOLD:-0.5}" --weights "${WEIGHTS:-ema}")
      for split in val test; do
        score "$run" $split $split "${cut[@]}"
        [ -n "${RESUMED[$run]}" ] && CKPT=${RESUMED[$run]} score "$run" $split $split-resumed "${cut[@]}"; done
      [ -n "${FP8:-}" ] && score "$run" val val-fp8 "${cut[@]}" --isa-fp8 on
      for extra in ${EXTRA_VAL:-}; do VDATA=$extra score "$run" val "val-$(basename "$extra")" "${cut[@]}"
        [ -n "${RESUMED[$run]}" ] && VDATA=$extra CKPT=${RESUMED[$run]} score "$run" val \
            "val-$(basename "$extra")-resumed" "${cut[@]}"; done
      for held in ${HELD_OUT:-}; do  # each val split is a quality table; each test split, a second unseen look
        for split in val test; do name=$(held_name "$held"); [ "$split" = test ] && name=$name-test
          VDATA=$held score "$run" $split "$name" "${cut[@]}"
          [ -n "${RESUMED[$run]}" ] && VDATA=$held CKPT=${RESUMED[$run]} score "$run" $split "$name-resumed" "${cut[@]}"
        done
      done
      for c in ${CUTS:-}; do [ "$c" = "${MASK_THRESHOLD:-0.5}" ] && continue
        at=(--guidance "${GUIDANCE[$v]}" --mask-threshold "$c" --weights "${WEIGHTS:-ema}")
        for split in val test; do score "$run" $split "$split-t$c" "${at[@]}"; done
        for extra in ${EXTRA_VAL:-}; do VDATA=$extra score "$run" val "val-$(basename "$extra")-t$c" "${at[@]}"; done
        for held in ${HELD_OUT:-}; do VDATA=$held score "$run" val "$(held_name "$held")-t$c" "${at[@]}"; done
      done
    fi
  done
  wait
  date -u
  for f in "$RUNS"/*/"$PHASE"-*.log; do [ -f "$f" ] && { echo "== $f"; tail -9 "$f"; }; done
  python3 benchmarks/model_v2_collect.py "$RUNS" "$PHASE" "$OUT/v2_$PHASE.json"
  if [ "$PHASE" = quality ]; then
    echo "chosen without the quoted pairs ($QUOTED; variant, cut, weights, checkpoint):" \
      "$(python3 benchmarks/model_v2_collect.py --choose "$RUNS" quality --quoted "$QUOTED")"
  fi
} 2>&1 | tee "$OUT/v2-$PHASE.log"
# the first val pairs' pictures, and those of the pairs whose kept region the run spoiled most, in one file (a call
# brings back at most 8 files): preview_<run>_<phase>.png, worst_kept_<run>_<phase>[-held-<folder>].png
pictures=$(mktemp -d)
for vs in $VARIANTS; do run=${vs%:*}-s${vs#*:}
  for png in preview worst_kept; do
    for name in val $(for held in ${HELD_OUT:-}; do held_name "$held"; done); do tag=${name#val}; tag=${tag:+-$tag}
      [ -f "$RUNS/$run/$PHASE-$name/$png.png" ] && cp "$RUNS/$run/$PHASE-$name/$png.png" \
        "$pictures/${png}_${run}_$PHASE$tag.png"
    done
  done
done
(cd "$pictures" && ls ./*.png >/dev/null 2>&1 && tar czf "$OUT/pictures_$PHASE.tgz" ./*.png)
rm -rf "$pictures"
[ -f "$RUNS/$QUALITY-s0/loss.png" ] && cp "$RUNS/$QUALITY-s0/loss.png" "$OUT/loss_$QUALITY-s0_$PHASE.png"
# every run's metrics.jsonl and this phase's validation reports in one file: a call brings back only a few files
(cd "$RUNS" && tar czf "$OUT/runs_$PHASE.tgz" $(ls -d */metrics.jsonl */"$PHASE"-*/validation.json 2>/dev/null))
ls -la "$OUT"
