#!/usr/bin/env bash
# nnU-Net v2 on MSD Hippocampus on a lent GPU machine (docs/nnunet.md): nnUNetTrainerRelation and
# nnUNetTrainer on folds $FOLDS (default 0-4) and a deep ensemble of $ENSEMBLE plain trainers on
# fold 0 (seeds 0 .. ENSEMBLE-1, the same training cases), configuration $CONF, $EPOCHS x
# $ITERATIONS each, $JOBS trainings side by side; each fold's validation cases predicted by
# `relunet predict` (the ensemble with --member); and the time per iteration of both trainers
# (benchmarks/nnunet_step_time.py) on the GPU. All through benchmarks/nnunet_hippocampus.py.
#
# The machine's image lacks nnU-Net, MONAI, nibabel and SimpleITK, and one call carries at most
# 64 MiB, so the packages come in two calls, made one right after the other (a machine stays warm
# 30 s after a call); benchmarks/gpu_nnunet_prepare.sh makes the carried folders here:
#   1. carry [".whl-sitk"]:                      bash benchmarks/gpu_nnunet.sh install
#   2. carry [".whl", ".devdata/Task04_Hippocampus"]:  CONF=3d_fullres bash benchmarks/gpu_nnunet.sh
# Packages go to .nnunet-site/ and the work (converted, preprocessed, trained, predicted) to
# .nnunet-gpu/, both git-ignored, so a warm machine keeps them from one call to the next.
#
# Budget: nnU-Net's schedule is 1000 epochs x 250 iterations, hours per training; a session has 15
# minutes of device time and a call at most 10, so the default is EPOCHS=5 ITERATIONS=250 for all
# models side by side (with 14 trainings on 16 cores nnU-Net's augmentation on the CPU bounds the
# pace, one worker each). Everything stops after $BUDGET_S seconds (default 400, leaving the 10-minute
# call time for the install, conversion, preprocessing and timing). Resuming: call step 2 again on
# the still-warm machine with the same settings: finished trainings and predictions are kept, and a
# stopped training continues with --continue from nnU-Net's checkpoint_latest.pth, which nnU-Net
# writes every 50 epochs (one stopped before its first starts again). EPOCHS=1000 is the full
# schedule, which needs calls chained that way for hours: the checkpoints (about 40 MB each) do
# not come back through $OUT, so a session that ends loses them.
# Writes to $OUT:
#   nnunet.json, nnunet.md    the rows of this run (nnunet_hippocampus.py --json/--page)
#   nnunet_step_time.json     the time per iteration and peak GPU memory of both trainers (measured
#                             anew each call, kept in $WORK per configuration)
#   per_case.tar.gz           .nnunet-gpu/predictions/*/{per_case,cases}.csv (score and Dice per case)
#   log.txt                   the run's output
# Here: put nnunet.json and nnunet_step_time.json into docs/nnunet_gpu/, then
#   python benchmarks/nnunet_hippocampus.py --report --gpu-results docs/nnunet_gpu
# Without a GPU (to check the steps): DEVICE=cpu, small EPOCHS, ITERATIONS, FOLDS, ENSEMBLE.
set -uo pipefail
SITE=$PWD/.nnunet-site
for wheels in .whl-sitk .whl; do
    if [ -d "$wheels" ]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" "$wheels"/*.whl || exit 1
    fi
done
[ "${1:-}" = install ] && exit 0
export PYTHONPATH=$SITE:$PWD/src PYTHONUNBUFFERED=1 nnUNet_compile=${COMPILE:-f}
OUT=${OUT:?set OUT to the folder the results go to}
CONF=${CONF:-3d_fullres}
DEVICE=${DEVICE:-cuda}
WORK=${WORK:-.nnunet-gpu}
CORES=$(nproc)
JOBS=${JOBS:-$([ "$CONF" = 2d ] && echo 8 || echo 14)}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, nnunetv2, SimpleITK, monai; print('torch', torch.__version__)" || exit 1
STEP_ARGS=(--device "$DEVICE" --warmup "${STEP_WARMUP:-3}" --steps "${STEP_STEPS:-10}")
RUN_ARGS=(--work "$WORK" --data "${DATA:-.devdata/Task04_Hippocampus}" --configurations "$CONF"
    --folds ${FOLDS:-0 1 2 3 4} --ensemble "${ENSEMBLE:-5}" --epochs "${EPOCHS:-5}"
    --iterations "${ITERATIONS:-250}" --device "$DEVICE" --jobs "$JOBS" --processes "$CORES"
    --da-workers $(((CORES - 2) / JOBS > 0 ? (CORES - 2) / JOBS : 1)) --time-limit "${BUDGET_S:-400}"
    --json "$OUT/nnunet.json" --page "$OUT/nnunet.md" --step-time "$WORK/nnunet_step_time.json")
{
    # conversion and preprocessing first (the step time needs the plans), then the timing, then the rest
    python3 -W ignore benchmarks/nnunet_hippocampus.py "${RUN_ARGS[@]}" --prepare-only &&
        python3 -W ignore benchmarks/nnunet_step_time.py --preprocessed "$WORK/preprocessed" \
            --configurations "$CONF" "${STEP_ARGS[@]}" --out "$WORK/nnunet_step_time.json" &&
        python3 -W ignore benchmarks/nnunet_hippocampus.py "${RUN_ARGS[@]}"
} 2>&1 | grep --line-buffered -v -E "^\s*$|Please cite|Isensee|^#+$|Preprocessing cases" >"$OUT/log.txt"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv
grep -E "done|not finished|Error|error|ratio" "$OUT/log.txt" | tail -n 40
cp "$WORK/nnunet_step_time.json" "$OUT/" 2>/dev/null
tables=$(cd "$WORK" && ls predictions/*/per_case.csv predictions/*/cases.csv 2>/dev/null)
[ -n "$tables" ] && tar czf "$OUT/per_case.tar.gz" -C "$WORK" $tables
ls -la "$OUT"
