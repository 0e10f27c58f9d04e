#!/usr/bin/env bash
# A lent GPU's half hour as one detached job, so that the calls watching it only wait and copy
# (docs/gpu-session.md: what to carry first, and when to call what):
#
#   setsid nohup bash scripts/gpu_session.sh start MINUTES > runs/gpu/session.log 2>&1 < /dev/null &
#   bash scripts/gpu_session.sh poll SECONDS
#
# `start` runs these stages, each bounded so that all of them end within MINUTES:
#   1. training speed of a few set-ups (scripts/train_speed.py, at most SPEED_S seconds); the
#      fastest that trains becomes runs/gpu/best.yaml (without it, configs/gpu.yaml alone);
#   2. training from scratch for the time left less EVAL_S seconds;
#   3. the decoder exported from last.ckpt in fp32 and in fp16, the log thinned (scripts/training_log.py);
#   4. scripts/evaluate.py on the validation split: the losses, then the Gatys rows and the grid;
#   5. issue 15's benchmark (random decoder), one report per set-up, while time is left.
# `poll` waits until that job has ended or SECONDS have passed, then copies to $OUT what exists: the
# decoders, and results.tar.gz (runs/gpu/out: reports, the progress, the latest sample grid; the
# training's metrics.csv and the job's log).
# Environment (defaults for the H100; docs/gpu-session.md gives the shrunk CPU check): PYTHON,
# DEVICE, SETUPS, SPEED_S, EVAL_S, SPEED_ARGS, TRAIN_ARGS, EVAL_ARGS, GATYS_ARGS, BENCH_ARGS.
set -uo pipefail
cd "$(dirname "$0")/.." || exit
shopt -s nullglob
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
run=runs/gpu
out=$run/out
content="$run/shards/content-{000000..000001}.tar"
style="$run/shards/style-{000000..000001}.tar"

say() { echo "$(date +%T) $*" | tee -a "$out/progress.txt"; }
left() { echo $((deadline - $(date +%s))); }  # seconds to the deadline
bounded() {  # COMMAND… stopped at the deadline (less $margin seconds); not started after it
  local s=$(($(left) - ${margin:-0}))
  if [ "$s" -gt 0 ]; then timeout "$s" "$@"; else false; fi
}

start() {
  deadline=$(($(date +%s) + $1 * 60))
  rm -rf "$out" "$run/best.yaml"
  mkdir -p "$out"

  say "1. training speed (at most ${SPEED_S:-240} s)"
  # shellcheck disable=SC2086  # the lists are meant to split
  timeout "${SPEED_S:-240}" "$py" scripts/train_speed.py --content-shards "$content" --style-shards "$style" \
    --setups ${SETUPS:-fp32 bf16,nhwc,memory bf16,nhwc,memory,compile bf16,nhwc,memory,compile,b16} \
    --warmup 20 --steps 150 --scratch "$run/speed" --out "$out/speed.md" --best-config "$run/best.yaml" ${SPEED_ARGS:-}
  best=()
  if [ -f "$run/best.yaml" ]; then best=(--config "$run/best.yaml"); cp "$run/best.yaml" "$out/"; fi

  train_s=$(($(left) - ${EVAL_S:-240}))
  if [ "$train_s" -lt 60 ]; then train_s=60; fi
  say "2. training for $train_s s with ${best[*]:-configs/gpu.yaml alone}"
  # shellcheck disable=SC2086
  "$py" -m adain.training.cli fit --config configs/adain.yaml --config configs/gpu.yaml "${best[@]}" \
    --data.content_shards "$content" --data.style_shards "$style" --data.load_size 0 \
    --trainer.default_root_dir "$run" --trainer.max_time "$(printf '00:00:%02d:%02d' $((train_s / 60)) $((train_s % 60)))" \
    --model.on_nonfinite skip --ckpt_path last ${TRAIN_ARGS:-}
  say "   training ended with status $?"

  say "3. export and log"  # from last.ckpt, as the run's own export at its end, or as far as a failed run got
  "$py" train.py export "$run/checkpoints/last.ckpt" "$out/decoder.safetensors"
  "$py" train.py export "$run/checkpoints/last.ckpt" "$out/decoder-fp16.safetensors" --fp16
  "$py" scripts/training_log.py "$run"/lightning_logs/version_*/metrics.csv --every 500 --out "$out/log.csv"

  say "4. evaluation"
  validation=(--content "$run/val/content" --style "$run/val/style" --decoder "$out/decoder.safetensors" --device "${DEVICE:-cuda}")
  # shellcheck disable=SC2086
  "$py" scripts/evaluate.py "${validation[@]}" --methods identity style adain adain@0.5 --out "$out/evaluation" \
    --quiet ${EVAL_ARGS:-}
  # shellcheck disable=SC2086
  bounded "$py" scripts/evaluate.py "${validation[@]}" --methods adain gatys@500 adain+gatys@50 adain+gatys@100 \
    --grid-methods adain adain+gatys@100 gatys@500 --pairs 6 --out "$out/evaluation-gatys" --quiet ${GATYS_ARGS:-}

  say "5. inference speed while time is left"
  for setup in fp32: "bf16:--precision bf16" "bf16-autotune:--precision bf16 --compile max-autotune-no-cudagraphs" \
    "bf16-graphs:--precision bf16 --compile reduce-overhead"; do
    [ "$(left)" -gt 60 ] || break
    name=bench-${setup%%:*} flags=${setup#*:}
    # shellcheck disable=SC2086
    margin=30 bounded "$py" scripts/benchmark.py --content examples/content --style examples/style \
      --decoder random --device "${DEVICE:-cuda}" --sizes 512 1024 --batch 16 --gatys-steps 500 --pairs 2 $flags \
      --out "$out/$name" --quiet ${BENCH_ARGS:-} || say "   $name did not finish"
  done
  say "done"
  touch "$out/done"
}

poll() {
  local end=$(($(date +%s) + $1))
  while [ ! -f "$out/done" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 5; done
  : "${OUT:?poll copies to \$OUT}"
  local samples=("$run"/lightning_logs/version_*/images/*.png)  # step_0001000.png …: the last is the latest
  if [ ${#samples[@]} -gt 0 ]; then cp "${samples[-1]}" "$out/latest-sample.png"; fi
  if [ ! -f "$out/decoder.safetensors" ] && [ -f "$run/checkpoints/last.ckpt" ]; then  # training: its decoder so far
    "$py" train.py export "$run/checkpoints/last.ckpt" "$OUT/decoder-so-far.safetensors" --fp16
  fi
  cp "$out"/*.safetensors "$OUT/" 2>/dev/null
  (cd "$run" && tar -czf "$OUT/results.tar.gz" --exclude='*.safetensors' out session.log lightning_logs/version_*/metrics.csv)
  tail -n 4 "$out/progress.txt" "$run/session.log"
}

if [[ $# -ne 2 || ! $1 =~ ^(start|poll)$ || ! $2 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 start MINUTES | poll SECONDS (see its head)" >&2
  exit 2
fi
"$1" "$2"
