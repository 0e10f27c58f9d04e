#!/usr/bin/env bash
# Train the AdaIN decoder on a SLURM cluster: DDP over every GPU of every node, bf16.
#
#   CONTENT_SHARDS='/data/shards/coco-{000000..000082}.tar' \
#   STYLE_SHARDS='/data/shards/wikiart-{000000..000080}.tar' \
#   sbatch --nodes=2 scripts/slurm_train.sh [more train.py options]
#
# Run it from the repository root (with its .venv, or set PYTHON). One task per GPU: Lightning
# reads the rank layout from SLURM. Two minutes before the time limit SLURM sends SIGTERM;
# train.py then saves last.ckpt and exits with status 143, and this script requeues the job,
# which resumes from last.ckpt (--ckpt_path last; the first run starts from scratch). A job
# preempted with SIGTERM does the same; one killed outright resumes from the last periodic
# checkpoint (every checkpoint.every_n_train_steps steps).
#
#SBATCH --job-name=adain
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --signal=TERM@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out
set -uo pipefail

: "${CONTENT_SHARDS:?set CONTENT_SHARDS to the content shard pattern}"
: "${STYLE_SHARDS:?set STYLE_SHARDS to the style shard pattern}"
PYTHON=${PYTHON:-.venv/bin/python}
RUN_DIR=${RUN_DIR:-runs/adain}

srun "$PYTHON" train.py fit --config configs/adain.yaml \
    --trainer.default_root_dir "$RUN_DIR" \
    --trainer.num_nodes "$SLURM_JOB_NUM_NODES" \
    --trainer.devices "$SLURM_NTASKS_PER_NODE" \
    --trainer.strategy ddp \
    --trainer.precision bf16-mixed \
    --data.content_shards "$CONTENT_SHARDS" \
    --data.style_shards "$STYLE_SHARDS" \
    --data.num_workers $((SLURM_CPUS_PER_TASK - 1)) \
    --ckpt_path last \
    "$@"
status=$?

if [ "$status" -eq 143 ]; then
    echo "stopped by SIGTERM with last.ckpt saved; requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
