#!/usr/bin/env bash
# A cross-validation of every method on a lent GPU machine (DATASET=isic by default; NAME names
# the results, e.g. DATASET=hippocampus NAME=hippocampus_gpu): $JOBS worker processes dividing
# the models and evaluations between them (one small-batch process leaves the GPU mostly idle),
# stopped after $BUDGET_S seconds, resumed by calling it again on the same warm machine.
# Expects, carried beside the checkout: .whl/ (monai and nibabel wheels for the machine's Python)
# and .devdata/<dataset folder> (or DATA=path); benchmarks/gpu_prepare.sh makes both. METHODS (default all) is crossval_results.py's
# --methods; further arguments go to it too.
# A cross-validation begun elsewhere continues from its state, carried as .carry/$NAME.tar, made
# here with: tar cf .carry/$NAME.tar --exclude=predictions --exclude=report runs/crossval/$NAME
# Writes to $OUT:
#   docs.tar.gz     docs/crossval/$NAME (tables, figures, per-fold tables, the paired Dice of the
#                   Relation U-Net and the U-Net) and docs/results.md
#   runs.tar.gz     runs/crossval/$NAME without checkpoints and saved masks: per-case tables,
#                   summaries, training histories, splits
#   panels.tar.gz   the Relation U-Net's saved masks of the cases the report's figures show
#   weights_*.tar   the models whose methods have not been evaluated yet (benchmarks/pack_weights.py:
#                   finished ones as weights, unfinished ones resumable), to be finished elsewhere
#   log.txt         the workers' output
# Unpack all at the repository root here (tar xzf / tar xf); `python benchmarks/crossval_results.py
# $DATASET --name $NAME --publish-only` then rebuilds the report locally.
set -uo pipefail
DATASET=${DATASET:-isic}
NAME=${NAME:-$DATASET}
case $DATASET in isic*) FOLDER=ISIC2017_Task1_256 ;; *) FOLDER=Task04_Hippocampus ;; esac
DATA=${DATA:-.devdata/$FOLDER}
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
[ -f ".carry/$NAME.tar" ] && tar xf ".carry/$NAME.tar"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
# The workers' kernels run side by side under CUDA MPS instead of taking turns on the GPU; kept
# only if a CUDA program still starts under it (MPS=0 skips it)
if [ "${MPS:-1}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d; then
    if timeout 60 python3 -c "import torch; torch.ones(1, device='cuda').sum().item()"; then
        echo "CUDA MPS on"
    else
        echo quit | nvidia-cuda-mps-control; echo "CUDA MPS failed; off"
    fi
fi
python3 -W ignore benchmarks/crossval_results.py "$DATASET" --name "$NAME" --methods "${METHODS:-all}" --jobs "${JOBS:-14}" \
    --time-limit "${BUDGET_S:-450}" --device "${DEVICE:-cuda}" --data "$DATA" "$@" \
    2>&1 | grep -v "samples/s" > "$OUT/log.txt"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv
grep -E "train|evaluate|Error|error" "$OUT/log.txt" | tail -n 40
# the Relation U-Net's Dice against the U-Net's, case by case, on the folds both have finished
python3 benchmarks/paired_dice.py "runs/crossval/$NAME" relation_self_pair unet --data "$DATA" \
    >/dev/null && python3 benchmarks/crossval_results.py "$DATASET" --name "$NAME" --publish-only \
    --data "$DATA" >/dev/null
tar czf "$OUT/docs.tar.gz" "docs/crossval/$NAME" docs/results.md
tar czf "$OUT/runs.tar.gz" --exclude='*.pt' --exclude='*.lock' --exclude=predictions --exclude=report "runs/crossval/$NAME"
panels=$(mktemp)  # two calls side by side must not share it
python3 - "runs/crossval/$NAME" >"$panels" <<'PY'
import sys
from pathlib import Path

from relunet.evaluation.summary import read_per_case
from relunet.reporting.page import panel_cases, prediction_path
from relunet.reporting.tables import RELATION

rows = read_per_case(Path(sys.argv[1]), RELATION)
print("\n".join(str(prediction_path(Path(sys.argv[1]), row)) for row in panel_cases(rows)))
PY
[ -s "$panels" ] && tar czf "$OUT/panels.tar.gz" -T "$panels"
python3 benchmarks/pack_weights.py "runs/crossval/$NAME" "$OUT" --total-mib "${WEIGHTS_MIB:-40}"
ls -la "$OUT"
