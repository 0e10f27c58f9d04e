#!/usr/bin/env bash
# A lent GPU's 15 minutes as one command (docs/gpu-session.md says what to prepare and carry):
#
#   bash scripts/gpu_session.sh SECONDS      # on the device, with $OUT set; SECONDS: the command's limit
#
# Every stage is bounded so that all of them end SECONDS after the start, less MARGIN_S:
#   1. the carried wheels (runs/wheels: what the device's Python lacks) installed into /tmp/site;
#   2. training continued from checkpoints/decoder.safetensors (the shipped decoder) with
#      configs/adain.yaml + configs/gpu.yaml (bf16-mixed, channels-last, decoded data in memory) at
#      256-px crops of the carried images enlarged to a shorter side of 512 (the scale the decoder
#      is judged at), the paper's λ and learning rate, for the time left less EXPORT_S + BENCH_S;
#   3. the decoder exported from last.ckpt in fp32 and fp16 to $OUT, and its training log
#      (scripts/training_log.py, the stage's rows);
#   4. in the time left (BENCH_S): scripts/benchmark.py at 512² on the continued decoder, each
#      report with the plain fp32 reference of its own run: fp32 with Gatys 500 L-BFGS steps, bf16,
#      and bf16 compiled; AdaIN batch 1 and BATCH, style cached and included.
# $OUT gets decoder.safetensors, decoder-fp16.safetensors and results.tar.gz (the progress, the log,
# the reports, metrics.csv and the last sample grid): three files, under the device's limit of eight.
# Environment, to shrink it for the CPU check (docs/gpu-session.md): PYTHON, DEVICE (cuda), BATCH (16),
# MARGIN_S (20), EXPORT_S (40), BENCH_S (150), TRAIN_ARGS, BENCH_ARGS, SHARDS (runs/gpu/shards).
set -uo pipefail
cd "$(dirname "$0")/.." || exit
: "${OUT:?set OUT: the folder whose files come back}"
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
shards=${SHARDS:-runs/gpu/shards}
run=runs/gpu/run
results=runs/gpu/results

if [[ $# -ne 1 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 SECONDS (see its head)" >&2
  exit 2
fi
deadline=$(($(date +%s) + $1 - ${MARGIN_S:-20}))
left() { echo $((deadline - $(date +%s))); }
say() { echo "$(date +%T) [$(left) s left] $*" | tee -a "$results/progress.txt"; }
bounded() {  # COMMAND… stopped at the deadline; not started after it
  local s
  s=$(left)
  if [ "$s" -gt 5 ]; then timeout "$s" "$@"; else say "   no time left for: $*"; false; fi
}
pack() {  # whatever exists, into the one archive that comes back
  local samples=("$run"/lightning_logs/version_*/images/*.png)
  if [ -e "${samples[-1]:-}" ]; then cp "${samples[-1]}" "$results/latest-sample.png"; fi
  cp "$run"/lightning_logs/version_*/metrics.csv "$results/" 2>/dev/null
  tar -czf "$OUT/results.tar.gz" -C "$(dirname "$results")" "$(basename "$results")"
}
trap pack EXIT

rm -rf "$run" "$results"
mkdir -p "$results"
say "1. wheels"
if [ -d runs/wheels ]; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site runs/wheels/*.whl
fi
"$py" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" \
  | tee -a "$results/progress.txt"

shopt -s nullglob
content=("$shards"/content-*.tar) style=("$shards"/style-*.tar)
if [ ${#content[@]} -eq 0 ] || [ ${#style[@]} -eq 0 ]; then say "no shards under $shards"; exit 1; fi
join() { local IFS=::; echo "$*"; }  # webdataset takes several shard files separated by ::
train_s=$(($(left) - ${EXPORT_S:-40} - ${BENCH_S:-150}))
if [ "$train_s" -lt 30 ]; then say "too little time to train ($train_s s)"; exit 1; fi
say "2. training for $train_s s from checkpoints/decoder.safetensors"
# shellcheck disable=SC2086  # TRAIN_ARGS is meant to split
"$py" train.py fit --config configs/adain.yaml --config configs/gpu.yaml \
  --data.content_shards "$(join "${content[@]}")" --data.style_shards "$(join "${style[@]}")" \
  --model.init_decoder checkpoints/decoder.safetensors --model.recon_steps 0 --model.on_nonfinite skip \
  --trainer.accelerator "$([ "$device" = cpu ] && echo cpu || echo gpu)" --trainer.default_root_dir "$run" \
  --trainer.max_time "$(printf '00:00:%02d:%02d' $((train_s / 60)) $((train_s % 60)))" ${TRAIN_ARGS:-} \
  > "$results/train.log" 2>&1
say "   training ended with status $?: $(grep -c . "$run"/lightning_logs/version_*/metrics.csv 2>/dev/null) log rows"

say "3. export and log"
"$py" train.py export "$run/checkpoints/last.ckpt" "$OUT/decoder.safetensors" >> "$results/progress.txt" 2>&1 || exit 1
"$py" train.py export "$run/checkpoints/last.ckpt" "$OUT/decoder-fp16.safetensors" --fp16 >> "$results/progress.txt" 2>&1
"$py" scripts/training_log.py "$run"/lightning_logs/version_*/metrics.csv --decoder "$OUT/decoder.safetensors" \
  --out "$results/log.csv" >> "$results/progress.txt" 2>&1

say "4. speed at 512² while time is left"
for setup in "fp32:--methods adain gatys" "bf16:--precision bf16 --methods adain" \
  "bf16-compiled:--precision bf16 --compile default --methods adain"; do
  name=${setup%%:*} flags=${setup#*:}
  # shellcheck disable=SC2086  # the flags are meant to split
  bounded "$py" scripts/benchmark.py --content examples/content --style examples/style --decoder "$OUT/decoder.safetensors" \
    --device "$device" --sizes 512 --batch "${BATCH:-16}" --gatys-steps 500 --pairs 2 $flags --out "$results/bench-$name" \
    --quiet ${BENCH_ARGS:-} >> "$results/progress.txt" 2>&1 || say "   bench-$name did not finish"
done
say "done"
