#!/usr/bin/env bash
# Two `relunet train` commands into one --out, 20 ms apart, with different settings, N times
# (the repro of the concurrent-training defect): exactly one may win, and the checkpoint must be its.
#   bash benchmarks/race_check.sh [N]
set -u
cd "$(dirname "$0")/.."
R=.venv/bin/relunet
PY=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$PY -c "from pathlib import Path; from relunet.data.synthetic import write_synthetic_dataset as w; w(Path('$work/syn'), n_cases=20, size=32)"
one=0
for i in $(seq 1 "${1:-10}"); do
  rm -rf "$work/k"
  $R train "$work/syn" --out "$work/k" --epochs 3 --seed 0 --samples-per-epoch 16 --device cpu >/dev/null 2>"$work/a.err" &
  first=$!
  sleep 0.02
  $R train "$work/syn" --out "$work/k" --epochs 4 --seed 1 --samples-per-epoch 16 --device cpu >/dev/null 2>"$work/b.err"
  rb=$?
  wait $first
  ra=$?
  seed=$($PY -c "import torch; print(torch.load('$work/k/fold_0/checkpoint.pt', weights_only=True)['config']['train']['seed'])")
  winner=$([ $ra -eq 0 ] && echo 0 || echo 1)
  ok=$([ $(( (ra == 0) + (rb == 0) )) -eq 1 ] && [ "$seed" = "$winner" ] && echo yes || echo no)
  echo "try $i: exit codes $ra $rb, checkpoint seed $seed, one winner owning the checkpoint: $ok"
  [ "$ok" = yes ] && one=$((one + 1))
done
echo "one winner owning the checkpoint in $one of ${1:-10} tries"
