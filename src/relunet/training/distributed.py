"""Data-parallel training across processes started by `torchrun` (gloo on CPU, NCCL on GPU).

Without torchrun's environment (`WORLD_SIZE` unset or 1) everything here is a no-op, so the
single-process path is the same code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    """This process's place among `world_size` training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "gloo"

    @property
    def active(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, history and logs."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """Each process drives its own GPU (`cuda:LOCAL_RANK`); CPU stays CPU."""
        if device.type == "cuda" and self.active:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This rank's share of an epoch's sample order, the same length on every rank.

        The order is cut to a multiple of the world size, then dealt round-robin, so no two
        ranks see the same position and all ranks run the same number of steps.
        """
        usable = len(indices) - len(indices) % self.world_size
        return indices[:usable][self.rank :: self.world_size]

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            dist.barrier()

    def main_first(self, fn: Callable[[], T]) -> T:
        """Run `fn` on rank 0, then on the others (e.g. create a file, then read it)."""
        result = fn() if self.is_main else None
        self.barrier()
        return result if self.is_main else fn()

    def check_in_step(self, model: torch.nn.Module, epoch: int) -> None:
        """Raise if the ranks' weights have drifted apart (they must stay identical under DDP)."""
        if not self.active:
            return
        checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum()
        values = self._gather(checksum.reshape(1))
        if not torch.allclose(values, values[0].expand_as(values), rtol=0, atol=1e-6):
            raise RuntimeError(f"ranks out of step after epoch {epoch}: weight sums {values.tolist()}")

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        where = torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")
        tensor = tensor.to(where)
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor)
        return torch.cat(parts).cpu()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average a dict of floats over the ranks."""
        if not self.active:
            return values
        where = torch.device("cuda", self.local_rank) if self.backend == "nccl" else None
        tensor = torch.tensor(list(values.values()), dtype=torch.float64, device=where)
        dist.all_reduce(tensor)
        return dict(zip(values, (tensor / self.world_size).tolist(), strict=True))


@contextlib.contextmanager
def distributed(device: torch.device) -> Iterator[Distributed]:
    """Join the process group torchrun describes in the environment, if any; leave it at the end."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield Distributed()
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    try:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        yield Distributed(dist.get_rank(), world_size, local_rank, backend)
    finally:
        dist.destroy_process_group()
