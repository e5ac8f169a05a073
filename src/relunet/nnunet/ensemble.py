"""Plain nnU-Net models of one fold, trained with different seeds, run as a deep ensemble.

The baseline an nnU-Net user compares the relation trainer's one-pass C with: n networks, n
passes. The segmentation is the argmax of the members' mean softmax probabilities (as nnU-Net
ensembles); the score is the mean pairwise Dice of the members' label maps (relunet's `ensemble`
score). Members must be plain models of the same plans, configuration and labels, trained on the
same cases (the same fold): the five fold models of a cross-validation are not a deep ensemble.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from relunet.confidence import mean_pairwise_dice
from relunet.errors import InputError
from relunet.inference.methods import method
from relunet.nnunet.inference import CaseResult, NnunetModel


class NnunetEnsemble:
    """Several `NnunetModel`s of kind "unet", run as one model of kind "ensemble"."""

    kind = "ensemble"

    def __init__(self, members: list[NnunetModel], folders: list[Path], checksums: list[str]) -> None:
        """`members` with their model `folders` and checkpoint `checksums`, checked to belong together."""
        lead = members[0]
        for member, folder, checksum in zip(members, folders, checksums, strict=True):
            if member.kind != "unet":
                raise InputError(
                    f"{folder}: a {member.trainer_name} model cannot be an ensemble member; give plain "
                    "nnUNetTrainer model folders (relunet nnunet train ... -tr nnUNetTrainer --seed S)"
                )
            if (member.configuration.configuration, member.dataset_json["labels"]) != (
                lead.configuration.configuration,
                lead.dataset_json["labels"],
            ):
                raise InputError(
                    f"{folder}: its plans or labels differ from {folders[0]}'s; ensemble members are trained "
                    "from the same plans and configuration"
                )
            if checksums.count(checksum) > 1:
                raise InputError(
                    f"{folder}: the same checkpoint is given twice; give members trained with other seeds"
                )
        if len(members) < 2:
            raise InputError(f"{folders[0]}: an ensemble needs 2 or more members; add --member MODEL_FOLDER")
        self.members = members
        self.checksums = checksums

    @property
    def lead(self) -> NnunetModel:
        """The first member: its reader, writer and labels are the ensemble's."""
        return self.members[0]

    @property
    def file_ending(self) -> str:
        """The image files' ending, e.g. ".nii.gz"."""
        return self.lead.file_ending

    @property
    def foreground_labels(self) -> list[int]:
        """The label value of each foreground class, in class order."""
        return self.lead.foreground_labels

    @property
    def plans_manager(self):  # -> PlansManager
        """The members' plans (the same for all)."""
        return self.lead.plans_manager

    @property
    def score_id(self) -> str:
        """The `ensemble` method's score of these members' checkpoints (a calibration holds for them only)."""
        members = ",".join(checksum[:12] for checksum in self.checksums)
        return f"{method('ensemble', len(self.members)).score_id} of {members}"

    def predict(self, image_files: list[Path]) -> CaseResult:
        """Preprocess one case once, run every member, and join them (module docstring)."""
        case = self.lead.preprocess(image_files)
        total, masks = None, []
        for member in self.members:
            result = member.predict_preprocessed(case)
            total = result.maps["seg_a"] if total is None else total + result.maps["seg_a"]
            masks.append(np.stack([result.labels == value for value in self.foreground_labels]))
        mean = (total / len(self.members)).astype(np.float32)
        with_background = np.concatenate([1 - mean.sum(0, keepdims=True), mean])
        labels = self.lead.label_manager.convert_probabilities_to_segmentation(with_background)
        return CaseResult(
            np.asarray(labels, dtype=np.uint8),
            {"seg_a": mean},
            case.properties,
            case.image,
            mean_pairwise_dice(masks),
        )

    def write(self, labels: np.ndarray, path: Path, properties: dict) -> Path:
        """Write a label map with nnU-Net's writer, in the input's geometry; returns the file."""
        return self.lead.write(labels, path, properties)
