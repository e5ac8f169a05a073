#!/usr/bin/env bash
# Prepares, here, what benchmarks/gpu_nnunet.sh expects beside the checkout on a lent GPU machine,
# all git-ignored, to be named in the device calls' carry:
#   .whl-sitk/   SimpleITK alone (53 MB: with the rest it would pass the 64 MiB one call may carry)
#   .whl/        nnU-Net v2 and the other packages the machine's image lacks (nnunetv2,
#                dynamic-network-architectures, batchgenerators(v2), acvl-utils, blosc2, ndindex,
#                connected-components-3d, graphviz, yacs, monai, nibabel, mapie: 20 MB), at the
#                versions installed in .venv, for the image's Python 3.12
#   .devdata/Task04_Hippocampus   imagesTr/, labelsTr/ and dataset.json (18 MB; from $SHARED,
#                default ../shared/data)
# Run after `make test` (it reads the versions from .venv, where the nnunet extra is installed).
# acvl-utils comes as a source archive only; it is pure Python, so a wheel is built here. Prints
# the sizes: each call's carried paths and the checkout together must stay under 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/data}
PY=${PY:-.venv/bin/python}
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
download() {  # folder package
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$1" "$2==$(version "$2")"
}
rm -rf .whl .whl-sitk && mkdir -p .whl .whl-sitk
download .whl-sitk SimpleITK
for package in nnunetv2 dynamic_network_architectures batchgenerators batchgeneratorsv2 blosc2 ndindex \
    connected-components-3d graphviz yacs monai nibabel mapie; do
    download .whl "$package"
done
python3 -m pip wheel -q --no-deps -w .whl "acvl_utils==$(version acvl_utils)"
target=.devdata/Task04_Hippocampus
if [ ! -d "$target" ]; then
    mkdir -p "$target"
    cp -r "$SHARED/Task04_Hippocampus/imagesTr" "$SHARED/Task04_Hippocampus/labelsTr" \
        "$SHARED/Task04_Hippocampus/dataset.json" "$target/"
fi
du -sh .whl-sitk .whl "$target"
