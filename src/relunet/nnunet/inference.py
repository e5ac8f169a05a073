"""One case through an nnU-Net model: nnU-Net's preprocessing, sliding window and export geometry.

A relation model runs its self-pair (x, x) patch by patch in nnU-Net's Gaussian-weighted
sliding window (mirroring as nnU-Net's own option); its 4·K head logits are resampled back,
uncropped and transposed as nnU-Net's export does, then C is computed on the whole volume. A
plain `nnUNetTrainer` model gives its softmax probabilities the same way, scored by the mean
foreground probability (relunet's `unet` score).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from torch import nn

from relunet.confidence import mean_foreground_probability, relation_confidence
from relunet.errors import InputError
from relunet.inference.methods import own_method
from relunet.nnunet.launch import trainer_class
from relunet.nnunet.model_folder import ModelFolder
from relunet.nnunet.trainer import HEADS, nnUNetTrainerRelation


class SelfPair(nn.Module):
    """A relation network fed its self-pair: `(B, C, *P)` -> `(B, 4K, *P)` head logits."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Head logits of (x, x)."""
        return self.network(torch.cat([x, x], 1))


@dataclass(frozen=True)
class OutputChannels:
    """What nnU-Net's sliding window asks its label manager: how many channels the network gives."""

    num_segmentation_heads: int


@dataclass
class CaseResult:
    """A predicted case in its input's geometry (array order of nnU-Net's reader).

    Attributes:
        labels: `(*S)` label map (the mask nnU-Net exports).
        maps: probability maps `(K, *S)` by head: seg_a (and seg_b, union, inter for a relation model).
        properties: nnU-Net's properties of the case (spacing, geometry), for its writer.
        image: the raw `(C, *S)` image as read.
        score: the model's confidence in the case (C for a relation model).
    """

    labels: np.ndarray
    maps: dict[str, np.ndarray]
    properties: dict
    image: np.ndarray
    score: float


@dataclass
class PreprocessedCase:
    """A case as nnU-Net's preprocessing leaves it, for any model of the same plans.

    Attributes:
        data: `(C, *P)` cropped, resampled, normalised image.
        properties: nnU-Net's properties of the case (spacing, crop, geometry).
        image: the raw `(C, *S)` image as read.
    """

    data: np.ndarray
    properties: dict
    image: np.ndarray


class NnunetModel:
    """A fold of an nnU-Net model folder, ready to predict cases; `kind` is "relation" or "unet"."""

    def __init__(self, folder: ModelFolder, device: str = "cpu", mirroring: bool = True) -> None:
        folder.check()
        checkpoint = torch.load(folder.checkpoint, map_location="cpu", weights_only=False)
        self.trainer_name = checkpoint["trainer_name"]
        trainer = trainer_class(self.trainer_name)
        self.kind = "relation" if issubclass(trainer, nnUNetTrainerRelation) else "unet"
        self.dataset_json = folder.json("dataset.json")
        self.plans_manager = PlansManager(folder.json("plans.json"))
        self.configuration = self.plans_manager.get_configuration(checkpoint["init_args"]["configuration"])
        self.label_manager = self.plans_manager.get_label_manager(self.dataset_json)
        if self.label_manager.has_regions:
            raise InputError(
                f"{folder.path}: region-based nnU-Net models are not supported by relunet predict"
            )
        channels = determine_num_input_channels(self.plans_manager, self.configuration, self.dataset_json)
        network = trainer.build_network_architecture(
            self.plans_manager, self.configuration, channels, self.label_manager.num_segmentation_heads, False
        )
        network.load_state_dict(checkpoint["network_weights"])
        self.predictor = nnUNetPredictor(
            use_gaussian=True, use_mirroring=mirroring, device=torch.device(device), allow_tqdm=False
        )
        runs = SelfPair(network) if self.kind == "relation" else network
        self.predictor.manual_initialization(
            runs,
            self.plans_manager,
            self.configuration,
            [runs.state_dict()],
            self.dataset_json,
            self.trainer_name,
            checkpoint.get("inference_allowed_mirroring_axes"),
        )
        if self.kind == "relation":
            classes = len(self.label_manager.foreground_labels)
            self.predictor.label_manager = OutputChannels(len(HEADS) * classes)

    @property
    def file_ending(self) -> str:
        """The image files' ending, e.g. ".nii.gz"."""
        return self.dataset_json["file_ending"]

    @property
    def foreground_labels(self) -> list[int]:
        """The label value of each foreground class, in class order."""
        return [int(v) for v in self.label_manager.foreground_labels]

    @property
    def score_id(self) -> str:
        """What its score is: relunet's own method for a model of its kind (e.g. "self_pair C")."""
        return own_method(self.kind).score_id

    def preprocess(self, image_files: list[Path]) -> PreprocessedCase:
        """Read one case given by its channel files and preprocess it as the plans say."""
        reader = self.plans_manager.image_reader_writer_class()
        image, _ = reader.read_images([str(p) for p in image_files])
        preprocessor = self.configuration.preprocessor_class(verbose=False)
        data, _, properties = preprocessor.run_case(
            [str(p) for p in image_files], None, self.plans_manager, self.configuration, self.dataset_json
        )
        return PreprocessedCase(data, properties, image)

    def predict(self, image_files: list[Path]) -> CaseResult:
        """Preprocess, predict and map back one case given by its channel files."""
        return self.predict_preprocessed(self.preprocess(image_files))

    def predict_preprocessed(self, case: PreprocessedCase) -> CaseResult:
        """Predict a preprocessed case and map it back to the input's geometry."""
        logits = self.predictor.predict_logits_from_preprocessed_data(torch.from_numpy(case.data)).float()
        if self.kind == "unet":
            labels, probabilities = convert_predicted_logits_to_segmentation_with_correct_shape(
                logits, self.plans_manager, self.configuration, self.label_manager, case.properties, True
            )
            maps = {"seg_a": probabilities[1:]}
            return CaseResult(np.asarray(labels), maps, case.properties, case.image, self.score(maps))
        heads = self._in_input_geometry(logits, case.properties)
        k = len(self.foreground_labels)
        maps = {head: heads[i * k : (i + 1) * k] for i, head in enumerate(HEADS)}
        return CaseResult(self.label_map(maps["seg_a"]), maps, case.properties, case.image, self.score(maps))

    def score(self, maps: dict[str, np.ndarray]) -> float:
        """C of a relation model's self-pair, the mean foreground probability of a plain one."""
        if self.kind == "relation":
            return relation_confidence(maps["union"], maps["inter"])
        return mean_foreground_probability(maps["seg_a"])

    def label_map(self, masks: np.ndarray) -> np.ndarray:
        """`(*S)` labels of `(K, *S)` probabilities or masks: the highest class above 0.5, else 0."""
        values = np.asarray(self.foreground_labels, dtype=np.uint8)
        masks = masks.astype(np.float32)
        return np.where(masks.max(0) > 0.5, values[masks.argmax(0)], 0).astype(np.uint8)

    def write(self, labels: np.ndarray, path: Path, properties: dict) -> Path:
        """Write a label map with nnU-Net's writer, in the input's geometry; returns the file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.plans_manager.image_reader_writer_class().write_seg(labels, str(path), properties)
        return path

    def _in_input_geometry(self, logits: torch.Tensor, properties: dict) -> np.ndarray:
        """`(4K, *S)` sigmoid probabilities of the head logits, back in the input's grid.

        The steps of nnU-Net's export (`convert_predicted_logits_to_segmentation_with_correct_shape`)
        for independent sigmoid channels: resample the logits, sigmoid, undo the crop (0 outside),
        undo the transpose.
        """
        forward = self.plans_manager.transpose_forward
        spacing = [properties["spacing"][i] for i in forward]
        shape = properties["shape_after_cropping_and_before_resampling"]
        current = (
            self.configuration.spacing
            if len(self.configuration.spacing) == len(shape)
            else [
                spacing[0],
                *self.configuration.spacing,
            ]
        )
        resampled = self.configuration.resampling_fn_probabilities(logits, shape, current, spacing)
        probabilities = torch.sigmoid(torch.as_tensor(resampled).float()).numpy()
        full = np.zeros((len(probabilities), *properties["shape_before_cropping"]), dtype=np.float32)
        full = insert_crop_into_image(full, probabilities, properties["bbox_used_for_cropping"])
        return full.transpose([0, *(i + 1 for i in self.plans_manager.transpose_backward)])
