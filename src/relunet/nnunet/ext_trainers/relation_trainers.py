"""Where nnU-Net's trainer search finds `nnUNetTrainerRelation` and its variants (`nnUNet_extTrainer`)."""

from relunet.nnunet.trainer import (  # noqa: F401 (found by name: nnunetv2.utilities.find_objects)
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
