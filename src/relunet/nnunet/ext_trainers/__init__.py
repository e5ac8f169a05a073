"""The folder `nnUNet_extTrainer` points at (`relunet nnunet env`): relunet's trainers, by name."""
