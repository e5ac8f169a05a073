"""`nnUNetTrainerRelation`: nnU-Net v2's own planned network and batches, trained as a Relation U-Net.

The network is the plans' architecture (PlainConvUNet, ResEnc, ...) built with 2·C input
channels and 4·K sigmoid outputs, `[seg_a, seg_b, union, inter]` with K channels each (K
foreground classes), deep supervision kept. Each sample's partner is another sample of the same
augmented batch, a share `same_fraction` of the pairs x1 = x2 (as relunet's `mixed` pairing).
Every head gets nnU-Net's region loss, soft Dice + binary cross-entropy per channel: the union and
intersection of two label maps overlap across classes, which a softmax over classes cannot
express, and sigmoid heads give the same C as relunet's own (`relunet.confidence`).

Region-based datasets and ignore labels are refused before training starts.
"""

from __future__ import annotations

import numpy as np
import torch
from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss, get_tp_fp_fn_tn
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.helpers import dummy_context
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn

from relunet.errors import InputError

HEADS = ("seg_a", "seg_b", "union", "inter")


def batch_partners(rng: np.random.Generator, n: int, same_fraction: float) -> np.ndarray:
    """`(n,)` partner of each sample of a batch: another one (a random roll), or itself for a share.

    `same_fraction` of the pairs are x1 = x2, as in relunet's `mixed` pairing.
    """
    own = np.arange(n)
    partners = (own + (rng.integers(1, n) if n > 1 else 0)) % n
    return np.where(rng.random(n) < same_fraction, own, partners)


def relation_targets(seg: torch.Tensor, partner: torch.Tensor, labels: list[int]) -> torch.Tensor:
    """`(B, 4K, *S)` float targets of the four heads from a `(B, 1, *S)` batch of label maps.

    Class k of sample i: seg_a = its own mask, seg_b = its partner's, union and intersection of both.
    """
    own = torch.cat([seg == value for value in labels], 1)
    other = own[partner]
    return torch.cat([own, other, own | other, own & other], 1).float()


class SelfPairLabelLogits(nn.Module):
    """A relation network seen as a plain nnU-Net segmenter: `(B, C, *P)` -> `(B, K + 1, *P)` logits.

    The self-pair's seg_a logits behind a constant 0 for the background, so a softmax and argmax
    give a class exactly where its seg_a probability is above 0.5 and highest (else background):
    nnU-Net's predictor and export then write seg_a unchanged.
    """

    def __init__(self, network: nn.Module, classes: int) -> None:
        super().__init__()
        self.network = network
        self.classes = classes

    @property
    def decoder(self) -> nn.Module:
        """The wrapped network's decoder (nnU-Net switches deep supervision there)."""
        return self.network.decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Label logits of the self-pair (x, x)."""
        seg_a = self.network(torch.cat([x, x], 1))[:, : self.classes]
        return torch.cat([torch.zeros_like(seg_a[:, :1]), seg_a], 1)


class nnUNetTrainerRelation(nnUNetTrainer):  # noqa: N801 (nnU-Net's naming, which its search expects)
    """nnU-Net's trainer with two inputs and four heads per class; see the module docstring."""

    #: share of identical pairs (x1 = x2), as relunet's `TrainConfig.same_fraction`
    same_fraction = 0.25

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),  # noqa: B008 (nnU-Net's signature)
    ) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        if self.label_manager.has_regions or self.label_manager.has_ignore_label:
            what = "region-based labels" if self.label_manager.has_regions else "an ignore label"
            raise InputError(
                f"{type(self).__name__}: the dataset has {what}, which the relation heads do not support; "
                "train it with nnUNetTrainer"
            )
        self.pairing_rng = np.random.default_rng(fold if isinstance(fold, int) else 0)

    @staticmethod
    def build_network_architecture(
        plans_manager: PlansManager,
        configuration_manager: ConfigurationManager,
        num_input_channels: int,
        num_output_channels: int,
        enable_deep_supervision: bool = True,
    ) -> nn.Module:
        """The planned network with 2·C inputs and 4·K outputs (C image channels, K + 1 labels)."""
        return nnUNetTrainer.build_network_architecture(
            plans_manager,
            configuration_manager,
            2 * num_input_channels,
            len(HEADS) * (num_output_channels - 1),
            enable_deep_supervision,
        )

    @property
    def classes(self) -> int:
        """K, the foreground classes."""
        return len(self.label_manager.foreground_labels)

    def relation_batch(self, batch: dict) -> dict:
        """nnU-Net's batch as pairs: data `(B, 2C, *P)`, targets `(B, 4K, *P')` at every scale."""
        data = batch["data"]
        partner = torch.from_numpy(batch_partners(self.pairing_rng, len(data), self.same_fraction))
        labels = list(self.label_manager.foreground_labels)
        target = batch["target"]
        if isinstance(target, list):
            heads = [relation_targets(t, partner, labels) for t in target]
        else:
            heads = relation_targets(target, partner, labels)
        return {**batch, "data": torch.cat([data, data[partner]], 1), "target": heads}

    def _build_loss(self) -> nn.Module:
        """nnU-Net's region loss (soft Dice + BCE per channel) on the 4·K heads, deep supervision kept."""
        heads = DC_and_BCE_loss(
            {},
            {
                "batch_dice": self.configuration_manager.batch_dice,
                "do_bg": True,
                "smooth": 1e-5,
                "ddp": self.is_ddp,
            },
            use_ignore_label=False,
            dice_class=MemoryEfficientSoftDiceLoss,
        )
        loss = super()._build_loss()
        if isinstance(loss, DeepSupervisionWrapper):
            loss.loss = heads
            return loss
        return heads

    def train_step(self, batch: dict) -> dict:
        """One optimiser step on the batch's pairs."""
        return super().train_step(self.relation_batch(batch))

    def validation_step(self, batch: dict) -> dict:
        """Loss of the pairs, and the true/false positives of seg_a for nnU-Net's pseudo Dice."""
        batch = self.relation_batch(batch)
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        target = [t.to(self.device) for t in target] if isinstance(target, list) else target.to(self.device)
        on_cuda = self.device.type == "cuda"
        with torch.autocast(self.device.type, enabled=True) if on_cuda else dummy_context():
            output = self.network(data)
            loss = self.loss(output, target)
        if self.enable_deep_supervision:
            output, target = output[0], target[0]
        predicted = (output[:, : self.classes] > 0).float()
        axes = [0, *range(2, output.ndim)]
        tp, fp, fn, _ = get_tp_fp_fn_tn(predicted, target[:, : self.classes], axes=axes)
        return {
            "loss": loss.detach().cpu().numpy(),
            "tp_hard": tp.detach().cpu().numpy(),
            "fp_hard": fp.detach().cpu().numpy(),
            "fn_hard": fn.detach().cpu().numpy(),
        }

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        """nnU-Net's own final validation, of the self-pair's seg_a (`SelfPairLabelLogits`)."""
        self.set_deep_supervision_enabled(False)
        network = self.network
        self.network = SelfPairLabelLogits(network, self.classes)
        try:
            super().perform_actual_validation(save_probabilities)
        finally:
            self.network = network


def _length_variant(name: str, epochs: int, iterations: int | None = None) -> type[nnUNetTrainerRelation]:
    """A subclass of `nnUNetTrainerRelation` with `epochs` epochs (of `iterations` steps, if given)."""

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),  # noqa: B008 (nnU-Net's signature)
    ) -> None:
        nnUNetTrainerRelation.__init__(self, plans, configuration, fold, dataset_json, device)
        self.num_epochs = epochs
        if iterations is not None:
            self.num_iterations_per_epoch = iterations
            self.num_val_iterations_per_epoch = max(1, iterations // 2)

    steps = f" of {iterations} iterations" if iterations else ""
    doc = f"`nnUNetTrainerRelation` for {epochs} epochs{steps}."
    return type(
        name, (nnUNetTrainerRelation,), {"__init__": __init__, "__doc__": doc, "__module__": __name__}
    )


# Training lengths named as nnU-Net names its own (`nnUNetTrainer_5epochs`, ...).
nnUNetTrainerRelation_1epoch = _length_variant("nnUNetTrainerRelation_1epoch", 1)
nnUNetTrainerRelation_5epochs = _length_variant("nnUNetTrainerRelation_5epochs", 5)
nnUNetTrainerRelation_10epochs = _length_variant("nnUNetTrainerRelation_10epochs", 10)
nnUNetTrainerRelation_20epochs = _length_variant("nnUNetTrainerRelation_20epochs", 20)
nnUNetTrainerRelation_50epochs = _length_variant("nnUNetTrainerRelation_50epochs", 50)
nnUNetTrainerRelation_100epochs = _length_variant("nnUNetTrainerRelation_100epochs", 100)
nnUNetTrainerRelation_250epochs = _length_variant("nnUNetTrainerRelation_250epochs", 250)
#: tests and smoke runs on a CPU: 2 epochs of 4 iterations
nnUNetTrainerRelation_tiny = _length_variant("nnUNetTrainerRelation_tiny", 2, iterations=4)

TRAINERS = {
    cls.__name__: cls
    for cls in (
        nnUNetTrainerRelation,
        nnUNetTrainerRelation_1epoch,
        nnUNetTrainerRelation_5epochs,
        nnUNetTrainerRelation_10epochs,
        nnUNetTrainerRelation_20epochs,
        nnUNetTrainerRelation_50epochs,
        nnUNetTrainerRelation_100epochs,
        nnUNetTrainerRelation_250epochs,
        nnUNetTrainerRelation_tiny,
    )
}
