"""Where nnU-Net's trainer search (`nnUNet_extTrainer`) finds relunet's relation and seeded trainers."""

from relunet.nnunet.seeded_trainers import (  # noqa: F401 (found by name, as above)
    nnUNetTrainer_seed1,
    nnUNetTrainer_seed2,
    nnUNetTrainer_seed3,
    nnUNetTrainer_seed4,
)
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
