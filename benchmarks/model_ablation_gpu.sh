#!/usr/bin/env bash
# One device call: train LIVEditor `small` variants side by side on one GPU (same data, seed and step count),
# then validate each on the held-out split; what each variant costs in quality at equal training.
# Variants: isa (`small` as shipped: every context block kept, a quarter of the query blocks sharp), cache (the
# same in context K/V cache mode), dense (dense attention), f50 (half of the query blocks sharp), f25ph (a quarter,
# shared among heads by pooled sharpness), s50 / paper (half / the paper's 12.5 % of the context blocks kept and
# half of the query blocks sharp: benchmarks/configs/model_small_alpha_s_*.json).
# Run from a copy of the repository that holds .whl/ (see model_gpu_run.sh) or on a machine where an earlier call
# put PyAV and open_clip on PYTHONPATH (then the data fits in the call), with deltalake importable (the
# device image lacks it and its wheel does not fit beside .whl/ in one call: install it into a folder in an
# earlier call on the same warm machine and put that folder on PYTHONPATH).
#   VARIANTS (default "isa cache"), STEPS (default 1200), TRAIN_S (time guard per run, default 360),
#   DATA (a curated dataset root; default: the config's synthetic pairs).
# Writes $OUT/<variant>/{validation.json,metrics.jsonl,loss.png,preview.png} and $OUT/ablation.log.
set -uo pipefail
export PYTHONUNBUFFERED=1
declare -A FLAGS=([isa]="" [cache]="--context-cache" [dense]="--attention dense"
                  [s50]="--config benchmarks/configs/model_small_alpha_s_0.5.json"
                  [paper]="--config benchmarks/configs/model_small_alpha_s_0.125.json"
                  [f50]="--config benchmarks/configs/model_small_alpha_f_0.5.json"
                  [f25ph]="--config benchmarks/configs/model_small_alpha_f_0.25_per_head.json")
for v in ${VARIANTS:-isa cache}; do
  [[ -n ${FLAGS[$v]+set} ]] || { echo "error: unknown variant '$v' (known: ${!FLAGS[*]})" >&2; exit 2; }
done
if ! python3 -c "import av, open_clip" 2>/dev/null; then  # a warm machine may have them from an earlier call
  SITE=$(mktemp -d)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl || exit 1
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
ROOT=$(mktemp -d)
python3 -c "import deltalake" 2>/dev/null || { echo "error: deltalake is not importable (see the header)" >&2; exit 2; }
{
  date -u; nvidia-smi -L
  for v in ${VARIANTS:-isa cache}; do
    python3 -m isa_model train --config small ${FLAGS[$v]} ${DATA:+--data "$DATA"} --out "$ROOT/$v" \
        --steps "${STEPS:-1200}" --time-limit "${TRAIN_S:-360}" >"$ROOT/$v.out" 2>"$ROOT/$v.err" &
  done
  wait
  date -u
  for v in ${VARIANTS:-isa cache}; do
    echo "== $v: $(tail -c 300 "$ROOT/$v.err" | tr '\r' '\n' | tail -2)"
    python3 -m isa_model validate --ckpt "$ROOT/$v/checkpoints" ${DATA:+--data "$DATA"} --out "$ROOT/$v/val" \
        >"$ROOT/$v.val" 2>&1 &
  done
  wait
  for v in ${VARIANTS:-isa cache}; do
    echo "== $v validation"; tail -14 "$ROOT/$v.val"
    mkdir -p "$OUT/$v"
    cp "$ROOT/$v/val/validation.json" "$ROOT/$v/val/preview.png" "$ROOT/$v/metrics.jsonl" "$ROOT/$v/loss.png" \
        "$OUT/$v/" 2>/dev/null
  done
  date -u
} 2>&1 | tee "$OUT/ablation.log"
