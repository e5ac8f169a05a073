"""Training-time augmentation on batches already on the device.

Every transform draws from torch's global generator, which the training loop seeds per epoch,
so a resumed run draws what the uninterrupted run drew. Spatial transforms move an image and its
target together; intensity transforms touch the image only.
"""

from __future__ import annotations

import math

import torch
from monai.networks.layers import AffineTransform

#: largest rotation about each axis, radians (±15°)
MAX_ROTATION = math.pi / 12
#: zoom factors are drawn from [1 - ZOOM, 1 + ZOOM]
ZOOM = 0.15
#: intensities (z-scored per image) are scaled by [1 - GAIN, 1 + GAIN] and shifted by ±SHIFT
GAIN, SHIFT = 0.1, 0.1
#: largest standard deviation of the added Gaussian noise
NOISE = 0.1
#: chance that a sample gets each of the affine, intensity and noise transforms
CHANCE = 0.5


def augment_batch(
    images: torch.Tensor, targets: torch.Tensor, flips: bool, affine: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(B, C, *S)` float images and `(B, K, *S)` 0/1 targets, randomly flipped and/or transformed.

    Targets come back as the images' dtype once `affine` has resampled them. `flips`: along
    each spatial axis with probability 1/2. `affine`: with chance `CHANCE` each,
    a rotation and zoom about the centre (MONAI's `AffineTransform`, bilinear for images and
    nearest for targets), an intensity gain and shift, and Gaussian noise.
    """
    if flips:
        images, targets = random_flips(images, targets)
    if affine:
        images, targets = random_affine(images, targets)
        images = random_intensity(images)
    return images, targets


def random_flips(images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each sample of `(B, C, *S)` images and `(B, K, *S)` targets at random.

    Along each spatial axis with probability 1/2, the same flips for a sample's image and target.
    """
    for dim in range(2, images.ndim):
        flip = _chosen(len(images), 0.5, images).view(-1, *[1] * (images.ndim - 1))
        images = torch.where(flip, images.flip(dim), images)
        targets = torch.where(flip, targets.flip(dim), targets)
    return images, targets


def random_affine(images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate and zoom a random `CHANCE` share of the samples about the image centre.

    The matrices are `(B, D+1, D+1)` in voxel coordinates (identity for untouched samples);
    each chosen sample gets a rotation of up to `MAX_ROTATION` about each axis and one zoom.
    """
    batch, dims = len(images), images.ndim - 2
    rotation = _rotations(batch, dims, images)
    zoom = 1 + (2 * torch.rand(batch, device=images.device) - 1) * ZOOM
    linear = rotation / zoom.view(-1, 1, 1)  # pull direction: output voxel -> input voxel
    chosen = _chosen(batch, CHANCE, images).view(-1, 1, 1)
    eye = torch.eye(dims, device=images.device).expand(batch, dims, dims)
    theta = torch.eye(dims + 1, device=images.device).repeat(batch, 1, 1)
    theta[:, :dims, :dims] = torch.where(chosen, linear, eye)
    warp = {"normalized": False, "zero_centered": True, "align_corners": True}
    images = AffineTransform(mode="bilinear", padding_mode="border", **warp)(images, theta.to(images.dtype))
    targets = AffineTransform(mode="nearest", padding_mode="zeros", **warp)(
        targets.to(images.dtype), theta.to(images.dtype)
    )
    return images, targets


def random_intensity(images: torch.Tensor) -> torch.Tensor:
    """Gain and shift (one pair per sample, all channels), then Gaussian noise.

    Each on a random `CHANCE` share of the `(B, C, *S)` samples.
    """
    shape = (-1, *[1] * (images.ndim - 1))
    batch, device = len(images), images.device
    gain = torch.where(
        _chosen(batch, CHANCE, images), 1 + (2 * torch.rand(batch, device=device) - 1) * GAIN, 1.0
    )
    shift = torch.where(
        _chosen(batch, CHANCE, images), (2 * torch.rand(batch, device=device) - 1) * SHIFT, 0.0
    )
    sigma = torch.where(_chosen(batch, CHANCE, images), torch.rand(batch, device=device) * NOISE, 0.0)
    noise = torch.randn_like(images) * sigma.view(shape).to(images.dtype)
    return images * gain.view(shape).to(images.dtype) + shift.view(shape).to(images.dtype) + noise


def _rotations(batch: int, dims: int, like: torch.Tensor) -> torch.Tensor:
    """`(B, D, D)` rotation matrices: about the one axis in 2D, about each of the three in 3D."""
    angles = (2 * torch.rand(batch, 1 if dims == 2 else 3, device=like.device) - 1) * MAX_ROTATION
    cos, sin = angles.cos(), angles.sin()
    if dims == 2:
        c, s = cos[:, 0], sin[:, 0]
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    result = torch.eye(3, device=like.device).repeat(batch, 1, 1)
    for axis in range(3):
        i, j = [a for a in range(3) if a != axis]
        turn = torch.eye(3, device=like.device).repeat(batch, 1, 1)
        turn[:, i, i], turn[:, i, j] = cos[:, axis], -sin[:, axis]
        turn[:, j, i], turn[:, j, j] = sin[:, axis], cos[:, axis]
        result = turn @ result
    return result


def _chosen(batch: int, chance: float, like: torch.Tensor) -> torch.Tensor:
    """`(B,)` booleans, each True with probability `chance`."""
    return torch.rand(batch, device=like.device) < chance
