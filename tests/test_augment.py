import numpy as np
import pytest
import torch

from relunet.data.training_set import TrainingSet
from relunet.training.augment import _rotations, augment_batch, random_affine, random_intensity
from relunet.training.loop import batch_loss
from relunet.training.losses import SegmentationLoss
from relunet.types import RelationOutput


def _discs(batch: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose foreground is a ball off the centre: `(B, 1, *S)` and its `(B, 1, *S)` mask."""
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij")
    centre = [n * 0.4 for n in shape]
    radius = min(shape) * 0.25
    distance = torch.sqrt(sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)))
    image = (radius - distance).clamp(-4, 4)  # smooth edge, positive inside
    images = image.expand(batch, 1, *shape).clone()
    return images, (images > 0).to(torch.uint8)


@pytest.mark.parametrize("shape", [(40, 33), (20, 17, 23)])
def test_affine_moves_image_and_target_together(shape):
    torch.manual_seed(0)
    images, targets = _discs(32, shape)
    moved, moved_targets = random_affine(images, targets)
    assert moved.shape == images.shape and moved_targets.shape == targets.shape
    assert set(moved_targets.unique().tolist()) <= {0.0, 1.0}
    agree = ((moved > 0).float() == moved_targets).float().mean()
    assert agree > 0.98  # only voxels on the edge may differ (bilinear against nearest)
    changed = ~(moved_targets == targets.float()).flatten(1).all(1)
    assert 4 < changed.sum() < 28  # about half the samples are transformed


def test_rotations_are_proper():
    torch.manual_seed(0)
    for dims in (2, 3):
        turns = _rotations(16, dims, torch.zeros(1))
        eye = torch.eye(dims).expand(16, dims, dims)
        torch.testing.assert_close(turns @ turns.transpose(1, 2), eye, atol=1e-5, rtol=0)
        torch.testing.assert_close(torch.linalg.det(turns), torch.ones(16), atol=1e-5, rtol=0)


def test_intensity_changes_images_only_a_little_and_not_all():
    torch.manual_seed(0)
    images = torch.randn(64, 3, 16, 16)
    out = random_intensity(images)
    untouched = (out == images).flatten(1).all(1)
    assert 0 < untouched.sum() < 64
    assert (out - images).abs().mean() < 0.2


def test_augmentation_is_reproducible_from_the_seed():
    images, targets = _discs(8, (24, 24))
    torch.manual_seed(3)
    first = augment_batch(images.clone(), targets.clone(), flips=True, affine=True)
    torch.manual_seed(3)
    second = augment_batch(images.clone(), targets.clone(), flips=True, affine=True)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    plain = augment_batch(images, targets, flips=False, affine=False)
    assert plain[0] is images and plain[1] is targets


class _Recorder(torch.nn.Module):
    """A stand-in Relation U-Net that keeps its inputs; predicts zeros."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(()))
        self.inputs: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> RelationOutput:
        self.inputs = (x1, x2)
        return RelationOutput(*(torch.zeros_like(x1[:, :1]) + self.bias for _ in range(4)))


def test_identical_pairs_stay_identical_under_augmentation():
    torch.manual_seed(0)
    images, targets = _discs(6, (24, 20))
    images = images + torch.randn_like(images)  # every sample different
    data = TrainingSet(images, targets, np.full(6, 0.5))
    first, partners = np.arange(6), np.array([0, 2, 2, 5, 4, 5])
    model = _Recorder()
    batch_loss(model, True, data, first, partners, SegmentationLoss(), flips=True, affine=True)
    x1, x2 = model.inputs
    same = first == partners
    assert torch.equal(x1[same], x2[same])
    assert not torch.equal(x1[~same], x2[~same])


def test_identical_pairs_can_be_augmented_apart():
    torch.manual_seed(0)
    images, targets = _discs(6, (24, 20))
    data = TrainingSet(images + torch.randn_like(images), targets, np.full(6, 0.5))
    first = np.arange(6)
    model = _Recorder()
    batch_loss(model, True, data, first, first, SegmentationLoss(), affine=True, keep_identical=False)
    x1, x2 = model.inputs
    differs = ~(x1 == x2).flatten(1).all(1)
    assert differs.sum() >= 3  # each input is transformed with chance 1/2 per transform
