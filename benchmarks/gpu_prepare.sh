#!/usr/bin/env bash
# Prepares, here, what the GPU scripts (gpu_check.sh, gpu_core.sh, gpu_crossval.sh) expect beside
# the checkout on a lent GPU machine, both git-ignored, to be named in the device call's carry:
#   .whl/      the wheels of the pure-Python packages its image lacks (monai, nibabel, mapie), at
#              the versions installed in .venv, for the image's Python 3.12
#   .devdata/  copies of Task04_Hippocampus and ISIC2017_Task1_256 (from $SHARED, default
#              ../shared/data)
# Run after `make test` (it reads the versions from .venv). Prints the sizes: all carried paths
# together must stay under 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/data}
rm -rf .whl && mkdir -p .whl .devdata
for package in monai nibabel mapie; do
    version=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$package'))")
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl "$package==$version"
done
for dataset in Task04_Hippocampus ISIC2017_Task1_256; do
    [ -d ".devdata/$dataset" ] || cp -r "$SHARED/$dataset" .devdata/
done
du -sh .whl .devdata/*
