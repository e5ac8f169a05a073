import numpy as np
import pytest
import torch
from monai.losses import DiceLoss
from torch import nn

from relunet.confidence import (
    SampleAgreement,
    band_agreement,
    mean_foreground_probability,
    relation_confidence,
    relation_scores,
    soft_dice,
)
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
    weighted, same_parts = relation_loss(out, s1, s2, SegmentationLoss("bce", relation_weight=0.25))
    assert same_parts == parts  # the history keeps each head's own value
    expected = parts["seg_a"] + parts["seg_b"] + 0.25 * (parts["union"] + parts["inter"])
    assert weighted.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kind", ["bce", "bce_dice"])
@pytest.mark.parametrize("shape", [(3, 2, 5, 4), (2, 1, 3, 4, 5)])
def test_relation_loss_in_one_call_equals_four_head_losses(kind, shape):
    torch.manual_seed(0)
    criterion = SegmentationLoss(kind)
    out = RelationOutput(*(torch.randn(shape) for _ in range(4)))
    s1, s2 = (torch.rand(shape) > 0.5).to(torch.uint8), (torch.rand(shape) > 0.7).to(torch.uint8)
    total, parts = relation_loss(out, s1, s2, criterion)
    union, inter = relation_targets(s1, s2)
    reference = {
        "seg_a": nn.BCEWithLogitsLoss()(out.seg_a, s1.float()),
        "seg_b": nn.BCEWithLogitsLoss()(out.seg_b, s2.float()),
        "union": nn.BCEWithLogitsLoss()(out.union, union.float()),
        "inter": nn.BCEWithLogitsLoss()(out.inter, inter.float()),
    }
    if kind == "bce_dice":
        dice = DiceLoss(sigmoid=True, batch=True)
        targets = {"seg_a": s1, "seg_b": s2, "union": union, "inter": inter}
        reference = {h: v + dice(getattr(out, h), targets[h].float()) for h, v in reference.items()}
    assert parts == pytest.approx({h: v.item() for h, v in reference.items()}, rel=1e-5)
    assert total.item() == pytest.approx(sum(v.item() for v in reference.values()), rel=1e-5)
    assert criterion(out.seg_a, s1).item() == pytest.approx(reference["seg_a"].item(), rel=1e-5)


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


def test_soft_dice_on_probabilities():
    a = np.array([[1.0, 0.5, 0.0]])
    b = np.array([[1.0, 0.5, 0.5]])
    assert soft_dice(a, b) == pytest.approx(2 * (1 + 0.25) / (1.5 + 2.0))
    assert soft_dice(np.zeros((2, 3)), np.zeros((2, 3))) == 1.0
    # classes are averaged, not pooled
    two = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert soft_dice(two, np.array([[1.0, 1.0], [1.0, 0.0]])) == pytest.approx(0.5)


def test_band_agreement_counts_undecided_voxels():
    assert band_agreement(np.array([[0.99, 0.95, 0.02, 0.0]])) == 1.0
    # loose mask 3 voxels, sure mask 1: Dice 2 * 1 / 4
    assert band_agreement(np.array([[0.95, 0.5, 0.2, 0.0]])) == pytest.approx(0.5)


def test_relation_scores_of_one_pass():
    maps = {
        "seg_a": np.array([[0.95, 0.8, 0.2, 0.0]]),
        "seg_b": np.array([[0.95, 0.3, 0.2, 0.0]]),
        "union": np.array([[0.95, 0.8, 0.6, 0.0]]),
        "inter": np.array([[0.95, 0.2, 0.1, 0.0]]),
    }
    scores = relation_scores(maps)
    # binarised: seg_a {0,1}, seg_b {0}, union {0,1,2}, inter {0}
    pairwise = [2 / 3, 4 / 5, 2 / 3, 2 / 4, 1.0, 2 / 4]
    assert scores["heads"] == pytest.approx(np.mean(pairwise))
    assert scores["ab"] == pytest.approx(2 / 3)
    assert scores["fg"] == pytest.approx((0.95 + 0.8) / 2)
    assert scores["soft"] == pytest.approx(soft_dice(maps["union"], maps["inter"]))
    assert scores["band"] == pytest.approx(2 * 1 / 4)
    assert relation_confidence(maps["union"], maps["inter"]) == pytest.approx(2 / 4)


def test_relation_heads_can_take_their_own_loss():
    torch.manual_seed(0)
    out = RelationOutput(*(torch.randn(2, 1, 6, 5) for _ in range(4)))
    s1, s2 = (torch.rand(2, 1, 6, 5) > 0.5).float(), (torch.rand(2, 1, 6, 5) > 0.5).float()
    _, mixed = relation_loss(out, s1, s2, SegmentationLoss("bce_dice", relation_kind="bce"))
    _, with_dice = relation_loss(out, s1, s2, SegmentationLoss("bce_dice"))
    _, without = relation_loss(out, s1, s2, SegmentationLoss("bce"))
    assert [mixed[h] for h in ("seg_a", "seg_b")] == pytest.approx([with_dice[h] for h in ("seg_a", "seg_b")])
    assert [mixed[h] for h in ("union", "inter")] == pytest.approx([without[h] for h in ("union", "inter")])
    with pytest.raises(ValueError, match="unknown loss"):
        SegmentationLoss("bce", relation_kind="dice")
