"""Training-time augmentation on batches already on the device."""

from __future__ import annotations

import torch


def random_flips(images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each sample of `(B, C, *S)` images and `(B, K, *S)` targets at random.

    Along each spatial axis with probability 1/2, the same flips for a sample's image and target.
    Draws from torch's global generator, which the training loop seeds per epoch.
    """
    for dim in range(2, images.ndim):
        flip = (torch.rand(len(images), device=images.device) < 0.5).view(-1, *[1] * (images.ndim - 1))
        images = torch.where(flip, images.flip(dim), images)
        targets = torch.where(flip, targets.flip(dim), targets)
    return images, targets
