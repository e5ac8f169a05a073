#!/usr/bin/env bash
# One prepared run for a lent GPU machine (issue: speed and scale). Expects, carried beside the
# checkout: .whl/ (monai and nibabel wheels for the machine's Python) and .devdata/ (copies of
# Task04_Hippocampus and ISIC2017_Task1_256); benchmarks/gpu_prepare.sh makes both. Writes everything under $OUT:
#   performance.md / performance.json   benchmarks/speed.py on the GPU
#   amp.json                            a short real-data training with and without bf16 autocast
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
timeout 300 python3 -W ignore benchmarks/speed.py --device cuda --repeats 10 \
    --hippocampus .devdata/Task04_Hippocampus --isic .devdata/ISIC2017_Task1_256 --out "$OUT"
timeout 200 python3 -W ignore - <<'PY'
import json, os, time
from relunet.config import TrainConfig
from relunet.training.train_workflow import train_fold
results = {}
for amp in (False, True):
    tic = time.perf_counter()
    history = train_fold(".devdata/Task04_Hippocampus", f"/tmp/amp_{amp}", device="cuda",
                         train=TrainConfig(epochs=5, amp=amp))
    results[f"amp={amp}"] = {"seconds": time.perf_counter() - tic, "last_loss": history[-1]["loss"],
                             "samples_per_s": history[-1]["samples_per_s"]}
json.dump(results, open(os.path.join(os.environ["OUT"], "amp.json"), "w"), indent=2)
print(results)
PY
