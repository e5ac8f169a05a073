#!/usr/bin/env bash
# The Relation U-Net with flip TTA (relation_flip_tta) on the published ISIC and Hippocampus
# cross-validations, one fold per call, on the CPU: Hippocampus folds 0-4 first (a fold takes
# minutes), then ISIC folds 0-4 (fold 0 is where its score is chosen; a fold takes hours here). Each finished fold is published into
# docs/crossval/<name>/ by benchmarks/crossval_results.py and committed at once.
#
#     nohup env OMP_NUM_THREADS=1 bash benchmarks/flip_tta_queue.sh > queue.log 2>&1 &
#
# Resumable: a fold already published is skipped, and a fold cut short resumes from its per-epoch
# training checkpoint and its last evaluated case (runs/crossval/<name>/). A failed call is tried
# again after a pause, up to TRIES times.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/work/main/.venv/bin/python}
DATA=${DATA:-/work/shared/data}
METHOD=relation_flip_tta
TRIES=${TRIES:-5}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

run_fold() {  # dataset, data folder, fold
    local name=$1 folder=$2 fold=$3 try
    local done_file="docs/crossval/$name/methods/$METHOD/fold_$fold/summary.json"
    for ((try = 1; try <= TRIES; try++)); do
        if [[ -f $done_file ]]; then
            echo "$(date -u +%FT%TZ) $name fold $fold: published"
            return 0
        fi
        echo "$(date -u +%FT%TZ) $name fold $fold: run (try $try)"
        if "$PYTHON" benchmarks/crossval_results.py "$name" --fold "$fold" --methods "$METHOD" \
            --device cpu --data "$DATA/$folder"; then
            git add docs/crossval/"$name" docs/results.md README.md
            for _ in {1..30}; do  # another commit may hold the index for a moment
                git commit -q -m "$name fold $fold: $METHOD (the Relation U-Net with flip TTA), CPU" \
                    -- docs/crossval/"$name" docs/results.md README.md && break
                sleep 10
            done
        else
            sleep 60
        fi
    done
    [[ -f $done_file ]]
}

for fold in 0 1 2 3 4; do run_fold hippocampus Task04_Hippocampus "$fold"; done
for fold in 0 1 2 3 4; do run_fold isic ISIC2017_Task1_256 "$fold"; done
echo "$(date -u +%FT%TZ) queue finished"
