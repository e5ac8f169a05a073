#!/usr/bin/env bash
# Rows of the core results on a lent GPU machine, in one call (see benchmarks/core_results.py):
#   bash benchmarks/gpu_core.sh NAME [NAME ...]
# Every row named trains in its own process, side by side on the GPU (small-batch steps leave it
# mostly idle), each stopped after $BUDGET_S seconds (a stopped row resumes from its checkpoint
# next call if runs/core/ is carried back). Expects, carried beside the checkout: .whl/ (monai,
# nibabel wheels for the machine's Python) and .devdata/ (copies of Task04_Hippocampus and
# ISIC2017_Task1_256; benchmarks/gpu_prepare.sh makes both). Writes $OUT/results.tar.gz (docs/results, docs/single_fold.md) and
# $OUT/log.txt.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__)"
for name in "$@"; do
    timeout "${BUDGET_S:-450}" python3 -W ignore benchmarks/core_results.py \
        --hippocampus .devdata/Task04_Hippocampus --isic .devdata/ISIC2017_Task1_256 \
        --device cuda --only "$name" 2>&1 | grep -v "samples/s" >>"$OUT/log.txt" &
done
wait
python3 benchmarks/core_results.py --only  # single_fold.md from every row that finished
grep -E "Dice|Error|error" "$OUT/log.txt" | tail -n 40
tar czf "$OUT/results.tar.gz" docs/results docs/single_fold.md
