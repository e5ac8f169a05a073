"""The training loop: plain PyTorch, one epoch at a time, a checkpoint after each.

Randomness is drawn from generators seeded by (seed, epoch), so a run killed after epoch e
and resumed reproduces the uninterrupted run.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from relunet.allocator import reuse_freed_memory
from relunet.atomic import write_csv
from relunet.config import RunConfig
from relunet.data.pairing import draw_partners
from relunet.data.streamed_set import StreamedSet
from relunet.data.training_set import TrainingSet
from relunet.device import autocast, prepare_model
from relunet.errors import InputError
from relunet.nets import RelationUNet
from relunet.rundir import FoldFolder
from relunet.training.augment import augment_batch
from relunet.training.checkpoint import load_checkpoint, save_checkpoint
from relunet.training.distributed import Distributed
from relunet.training.losses import SegmentationLoss, relation_loss


def fit(
    model: nn.Module,
    data: TrainingSet | StreamedSet,
    config: RunConfig,
    fold_dir: Path,
    fold: int,
    device: torch.device,
    resume: bool = False,
    ranks: Distributed | None = None,
) -> list[dict[str, float]]:
    """Train `model` on `data` as `config.train` says; write checkpoint and history to `fold_dir`.

    Under torchrun (`ranks` active) the model is wrapped in DistributedDataParallel, every rank
    draws the same epoch order and takes its own share of it, each step uses
    `batch_size / world_size` samples per rank, and rank 0 alone writes. Returns the history,
    one row per epoch. On the CPU it sets the process's malloc to reuse freed memory
    (`relunet.allocator`).
    """
    cfg = config.train
    if device.type == "cpu":
        reuse_freed_memory()
    ranks = ranks or Distributed()
    takes_pairs = isinstance(model, RelationUNet)
    model = prepare_model(model, device, cfg.channels_last)
    data = data.to(device)
    net = DistributedDataParallel(model) if ranks.active else model
    net = torch.compile(net) if cfg.compile else net
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    criterion = SegmentationLoss(cfg.loss, cfg.relation_loss, cfg.relation_weight)
    history: list[dict[str, float]] = []
    start = 0
    if resume and FoldFolder(fold_dir).is_trained():
        start, history = _restore(fold_dir, model, optimizer, scheduler)

    n_per_epoch = ranks.shard(np.arange(cfg.samples_per_epoch or len(data))).size
    batch_size = max(1, cfg.batch_size // ranks.world_size)
    steps = -(-n_per_epoch // batch_size)
    with _progress(ranks.is_main) as progress:
        task = progress.add_task("train", total=(cfg.epochs - start) * steps, loss=float("nan"), rate=0.0)
        for epoch in range(start, cfg.epochs):
            torch.manual_seed(cfg.seed * 100_003 + epoch)
            rng = np.random.default_rng([cfg.seed, epoch])
            first = _epoch_order(rng, len(data), cfg.samples_per_epoch or len(data))
            partners = draw_partners(cfg.pairing, rng, first, data.depth, cfg.same_fraction)
            corners = _patch_corners(data, rng, first, partners)
            first, partners = ranks.shard(first), ranks.shard(partners)
            corners = tuple(None if c is None else ranks.shard(c) for c in corners)
            net.train()
            sums: dict[str, float] = {}
            tic = time.perf_counter()
            for begin in range(0, n_per_epoch, batch_size):
                batch = slice(begin, begin + batch_size)
                with autocast(device, cfg.amp):
                    loss, parts = batch_loss(
                        net,
                        takes_pairs,
                        data,
                        first[batch],
                        partners[batch],
                        criterion,
                        cfg.flips,
                        cfg.augment,
                        not cfg.jitter_identical,
                        tuple(None if c is None else c[batch] for c in corners),
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                weight = len(first[batch]) / n_per_epoch
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + value * weight
                rate = (begin + len(first[batch])) / (time.perf_counter() - tic)
                progress.update(
                    task,
                    advance=1,
                    description=f"epoch {epoch + 1}/{cfg.epochs}",
                    loss=parts["loss"],
                    rate=rate,
                )
            seconds = time.perf_counter() - tic
            row = {
                "epoch": epoch + 1,
                **ranks.mean(sums),
                "lr": scheduler.get_last_lr()[0],
                "seconds": seconds,
                "samples_per_s": n_per_epoch * ranks.world_size / seconds,
            }
            scheduler.step()
            history.append(row)
            ranks.check_in_step(model, epoch + 1)
            if ranks.is_main:
                _save(fold_dir, model, optimizer, scheduler, epoch + 1, fold, config, history)
                progress.console.log(
                    f"epoch {epoch + 1}/{cfg.epochs}  loss {row['loss']:.4f}  "
                    f"{row['samples_per_s']:.0f} samples/s"
                )
            ranks.barrier()
    return history


def _restore(
    fold_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, list[dict[str, float]]]:
    """Load the fold's checkpoint into model, optimiser and scheduler; its epoch and history."""
    path = FoldFolder(fold_dir).checkpoint
    state = load_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (KeyError, ValueError, RuntimeError, TypeError) as err:
        raise InputError(
            f"{path}: this checkpoint does not fit the run's model and optimiser ({type(err).__name__}); "
            "retrain the fold with --overwrite instead of --resume"
        ) from err
    start = state["epoch"]
    history = state.get("history") or _read_history(FoldFolder(fold_dir).history)
    return start, history[:start]


def _save(
    fold_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    fold: int,
    config: RunConfig,
    history: list[dict[str, float]],
) -> None:
    """Checkpoint with the history inside (atomic), then `history.csv` from the same rows."""
    folder = FoldFolder(fold_dir)
    save_checkpoint(
        folder.checkpoint,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "fold": fold,
            "config": config.to_dict(),
            "history": history,
        },
    )
    write_csv(folder.history, history)


def batch_loss(
    model: nn.Module,
    takes_pairs: bool,
    data: TrainingSet | StreamedSet,
    first: np.ndarray,
    partners: np.ndarray,
    criterion: SegmentationLoss,
    flips: bool = False,
    affine: bool = False,
    keep_identical: bool = True,
    corners: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch (data already on the model's device).

    Four heads on pairs for the Relation U-Net, one head otherwise. Each input and its target
    are augmented (`augment.augment_batch` with `flips`, `affine`); with `keep_identical` an
    identical pair (`x2 = x1`) stays identical, the same augmented image on both inputs,
    otherwise its two inputs are augmented apart. `corners` are the patch corners of the first
    inputs and of the partners, where the set cuts patches (`(M, d)` each, else None).
    """
    if not takes_pairs:
        x1, s1 = augment_batch(*data.batch(first, corners[0]), flips, affine)
        loss = criterion(model(x1), s1)
        return loss, {"loss": loss.item()}
    index = np.concatenate([first, partners])
    both = None if corners[0] is None else np.concatenate(corners)
    images, targets = augment_batch(*data.batch(index, both), flips, affine)
    (x1, x2), (s1, s2) = images.chunk(2), targets.chunk(2)
    if keep_identical and (flips or affine):
        same = torch.from_numpy(first == partners).to(x1.device).view(-1, *[1] * (x1.ndim - 1))
        x2, s2 = torch.where(same, x1, x2), torch.where(same, s1, s2)
    loss, parts = relation_loss(model(x1, x2), s1, s2, criterion)
    return loss, {"loss": loss.item(), **parts}


def _patch_corners(
    data: TrainingSet | StreamedSet, rng: np.random.Generator, first: np.ndarray, partners: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Patch corners of the first inputs and of the partners; an identical pair shares its patch."""
    mine, theirs = data.draw_crops(rng, first), data.draw_crops(rng, partners)
    if mine is None or theirs is None:
        return None, None
    same = first == partners
    theirs[same] = mine[same]
    return mine, theirs


def _epoch_order(rng: np.random.Generator, n: int, n_per_epoch: int) -> np.ndarray:
    """First inputs of an epoch: shuffled passes over all samples, cut to `n_per_epoch`."""
    passes = -(-n_per_epoch // n)
    return np.concatenate([rng.permutation(n) for _ in range(passes)])[:n_per_epoch]


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[rate]:>7.1f} samples/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not enabled,
    )


def _read_history(path: Path) -> list[dict[str, float]]:
    """`history.csv` of a checkpoint written before the history travelled inside it."""
    if not path.is_file():
        return []
    try:
        with path.open(newline="") as handle:
            return [
                {k: int(v) if k == "epoch" else float(v) for k, v in row.items()}
                for row in csv.DictReader(handle)
            ]
    except (OSError, ValueError, TypeError) as err:
        raise InputError(f"{path}: damaged history ({type(err).__name__}); retrain with --overwrite") from err
