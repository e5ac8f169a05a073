#!/usr/bin/env bash
# A cross-validation of every method on a lent GPU machine (DATASET=isic by default; NAME names
# the results, e.g. DATASET=hippocampus NAME=hippocampus_gpu): 5 folds at once (one process
# each; the small network leaves the GPU mostly idle in one process), stopped after $BUDGET_S
# seconds, resumed by calling it again on the same warm machine. Expects, carried beside the
# checkout: .whl/ (monai and nibabel wheels for the machine's Python) and .devdata/<dataset folder>.
# Writes to $OUT:
#   docs.tar.gz   docs/crossval/$NAME (tables, figures, per-fold tables) and docs/results.md
#   runs.tar.gz   runs/crossval/$NAME without checkpoints: per-case tables, summaries, training
#                 histories, splits, and the Relation U-Net's saved masks (for the report)
# Unpack both at the repository root here; `python benchmarks/crossval_results.py $DATASET
# --name $NAME --publish-only` then rebuilds the report locally.
set -uo pipefail
DATASET=${DATASET:-isic}
NAME=${NAME:-$DATASET}
case $DATASET in isic) FOLDER=ISIC2017_Task1_256 ;; *) FOLDER=Task04_Hippocampus ;; esac
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -W ignore benchmarks/crossval_results.py "$DATASET" --name "$NAME" --methods all --jobs "${JOBS:-5}" \
    --time-limit "${BUDGET_S:-480}" --device "${DEVICE:-cuda}" --data ".devdata/$FOLDER" \
    2>&1 | grep -v "samples/s" | tail -n 60
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv
tar czf "$OUT/docs.tar.gz" "docs/crossval/$NAME" docs/results.md
tar czf "$OUT/runs.tar.gz" --exclude='*.pt' --exclude="runs/crossval/$NAME/methods/[!r]*/fold_*/predictions" \
    --exclude="runs/crossval/$NAME/methods/relation_anchors*/fold_*/predictions" "runs/crossval/$NAME"
ls -la "$OUT"
