import numpy as np
import pytest
import torch

from relunet.confidence import SampleAgreement, mean_foreground_probability, relation_confidence
from relunet.training.losses import SegmentationLoss, relation_loss, relation_targets
from relunet.types import RelationOutput


def test_relation_targets_are_max_and_min_per_class():
    s1 = torch.tensor([[[1, 1, 0, 0]], [[0, 1, 1, 0]]], dtype=torch.float32)
    s2 = torch.tensor([[[1, 0, 1, 0]], [[0, 0, 0, 0]]], dtype=torch.float32)
    union, inter = relation_targets(s1, s2)
    assert union.tolist() == [[[1, 1, 1, 0]], [[0, 1, 1, 0]]]
    assert inter.tolist() == [[[1, 0, 0, 0]], [[0, 0, 0, 0]]]


def test_relation_loss_sums_four_heads():
    torch.manual_seed(0)
    out = RelationOutput(*(torch.randn(2, 1, 4, 4) for _ in range(4)))
    s1 = (torch.rand(2, 1, 4, 4) > 0.5).float()
    s2 = (torch.rand(2, 1, 4, 4) > 0.5).float()
    total, parts = relation_loss(out, s1, s2, SegmentationLoss("bce"))
    assert set(parts) == {"seg_a", "seg_b", "union", "inter"}
    assert total.item() == pytest.approx(sum(parts.values()), rel=1e-6)


def test_relation_confidence_is_dice_of_union_and_inter():
    union = np.array([[0.9, 0.9, 0.9, 0.1]])
    inter = np.array([[0.9, 0.2, 0.1, 0.1]])
    assert relation_confidence(union, inter) == pytest.approx(2 * 1 / 4)
    assert relation_confidence(np.zeros((1, 3)), np.zeros((1, 3))) == 1.0


def test_sample_agreement_of_identical_and_disjoint_draws():
    same = SampleAgreement()
    for _ in range(3):
        same.add(np.array([[0.9, 0.1]]))
    assert same.agreement == 1.0
    assert same.count == 3
    apart = SampleAgreement()
    apart.add(np.array([[0.9, 0.1]]))
    apart.add(np.array([[0.1, 0.9]]))
    assert apart.agreement == 0.0
    np.testing.assert_allclose(apart.mean, [[0.5, 0.5]])


def test_mean_foreground_probability():
    assert mean_foreground_probability(np.array([0.2, 0.6, 1.0])) == pytest.approx(0.8)
    assert mean_foreground_probability(np.array([0.2])) == 1.0


def test_pairwise_dice_of_samples():
    draws = SampleAgreement(pairwise=True)
    draws.add(np.array([[0.9, 0.9, 0.1]]))
    draws.add(np.array([[0.9, 0.1, 0.1]]))
    draws.add(np.array([[0.9, 0.9, 0.1]]))
    # pairs: (a,b) 2/3, (a,c) 1, (b,c) 2/3
    assert draws.pairwise == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    with pytest.raises(ValueError):
        _ = SampleAgreement().pairwise
