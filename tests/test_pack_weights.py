"""benchmarks/pack_weights.py: models trained on one machine are finished and evaluated on another."""

import shutil
import tarfile
from pathlib import Path

import torch
from conftest import crossval_self_pair_and_unet, load_benchmark, write_pictures

from relunet.training.checkpoint import load_checkpoint

pack_weights = load_benchmark("pack_weights")


def test_packed_models_are_evaluated_elsewhere_without_retraining(tmp_path, monkeypatch):
    data = write_pictures(tmp_path / "pics", n_cases=6)
    monkeypatch.chdir(tmp_path)
    crossval_self_pair_and_unet(data, Path("cv"), [], epochs=2)
    # the machine stopped before the evaluations, with the U-Net at its end and the Relation
    # U-Net one epoch short
    shutil.rmtree("cv/methods")
    relation = Path("cv/models/relation_seed0/fold_0/checkpoint.pt")
    state = load_checkpoint(relation)
    torch.save({**state, "epoch": 1}, relation)

    paths = pack_weights.needed_checkpoints(Path("cv"), folds=2)
    assert paths == [relation, Path("cv/models/unet_seed0/fold_0/checkpoint.pt")]
    # about 6 MiB with its optimiser state, the finished U-Net's weights about 2 MiB
    assert pack_weights.pack(paths, tmp_path / "capped", 7 * 2**20, 7 * 2**20) == paths[:1]
    assert pack_weights.pack(paths, tmp_path / "moved", 7 * 2**20, 2**30) == paths
    assert len(list((tmp_path / "moved").glob("weights_*.tar"))) == 2

    shutil.move("cv", "cv_on_the_gpu_machine")
    shutil.copytree("cv_on_the_gpu_machine", "cv", ignore=shutil.ignore_patterns("*.pt"))
    for archive in (tmp_path / "moved").glob("weights_*.tar"):
        with tarfile.open(archive) as tar:
            tar.extractall(filter="data")
    assert "optimizer" in load_checkpoint(relation)  # unfinished: resumable
    assert "optimizer" not in load_checkpoint(Path("cv/models/unet_seed0/fold_0/checkpoint.pt"))
    log = []
    crossval_self_pair_and_unet(data, Path("cv"), log, epochs=2)
    assert log == [
        "fold 0: train relation_seed0",
        "fold 0: evaluate relation_self_pair",
        "fold 0: evaluate unet",
    ]
    assert len(list(Path("cv/models/relation_seed0/fold_0").glob("history.csv"))) == 1
