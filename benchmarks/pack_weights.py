"""Pack the models that the cross-validation still needs, to move them to another machine.

    python benchmarks/pack_weights.py runs/crossval/isic DEST [--max-mib 15] [--total-mib 45]

For every (method, fold) without results, the models it needs are written into DEST/weights_<i>.tar
files: finished ones as weights only (they need no more training), unfinished ones whole (their
optimiser state lets training resume where it stopped). The files hold at
most `--max-mib` each (the first `--total-mib` in all, in the cross-validation's order of
work), with paths from the working directory. Unpacked there (`tar xf`), a later
`crossval_results.py` call finishes their training and evaluates them. This is how models
trained on a lent GPU machine come back when its time ran out.
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

import torch

from relunet.crossval import all_methods, evaluated, work_order
from relunet.errors import guarded
from relunet.rundir import CrossvalFolder
from relunet.training.checkpoint import load_checkpoint


def needed_checkpoints(out: Path, folds: int) -> list[Path]:
    """Checkpoints of the models of every method and fold that has no results yet."""
    paths = []
    for method in sorted(all_methods(), key=work_order):
        for fold in range(folds):
            if evaluated(out, method, fold):
                continue
            for seed in method.seeds:
                path = CrossvalFolder(out).model_run(method.model_folder(seed)).fold(fold).checkpoint
                if path not in paths and path.is_file():
                    paths.append(path)
    return paths


def pack(paths: list[Path], dest: Path, max_bytes: int, total_bytes: int) -> list[Path]:
    """`paths` (finished ones weights only) in tar files of at most `max_bytes`, `total_bytes` in all.

    Returns the paths packed.
    """
    dest.mkdir(parents=True, exist_ok=True)
    packed: list[Path] = []
    size, total, archive, archives = max_bytes, 0, None, 0
    for path in paths:
        state = load_checkpoint(path)
        buffer = io.BytesIO()
        if state["epoch"] >= state["config"]["train"]["epochs"]:
            state = {k: v for k, v in state.items() if k not in ("optimizer", "scheduler")}
        torch.save(state, buffer)
        total += buffer.tell() + 1024
        if total > total_bytes:
            break
        if size + buffer.tell() > max_bytes:
            if archive:
                archive.close()
            archive, size = tarfile.open(dest / f"weights_{archives}.tar", "w"), 0
            archives += 1
        info = tarfile.TarInfo(str(path))
        info.size = buffer.tell()
        buffer.seek(0)
        archive.addfile(info, buffer)
        size += info.size + 1024
        packed.append(path)
    if archive:
        archive.close()
    return packed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-mib", type=float, default=15)
    parser.add_argument("--total-mib", type=float, default=45)
    args = parser.parse_args()
    paths = needed_checkpoints(args.out, args.folds)
    packed = pack(paths, args.dest, int(args.max_mib * 2**20), int(args.total_mib * 2**20))
    print(f"{len(packed)} of {len(paths)} needed models packed; left out: {paths[len(packed) :]}")


if __name__ == "__main__":
    guarded(main)
