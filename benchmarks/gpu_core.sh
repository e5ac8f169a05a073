#!/usr/bin/env bash
# The core results on a lent GPU machine, in one call (see benchmarks/core_results.py).
# Expects, carried beside the checkout: .whl/ (monai, nibabel wheels for Python 3.12) and
# .devdata/ (copies of Task04_Hippocampus and ISIC2017_Task1_256). Writes $OUT/results.tar.gz.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__)"
timeout "${BUDGET_S:-450}" python3 -W ignore benchmarks/core_results.py \
    --hippocampus .devdata/Task04_Hippocampus --isic .devdata/ISIC2017_Task1_256 \
    --device cuda --only "$@"
tar czf "$OUT/results.tar.gz" docs/results docs/single_fold.md
