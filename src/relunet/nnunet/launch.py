"""`relunet nnunet train`: one nnU-Net fold trained by class, without nnU-Net's trainer search.

`nnUNetv2_train D CONF FOLD -tr nnUNetTrainerRelation` (with `nnUNet_extTrainer` set) does the
same where nnU-Net's search works. Its search imports every trainer module of nnunetv2, the
Primus ones included, which import timm and so torchvision; with relunet's CPU build of PyTorch
the registry's torchvision does not import, so relunet finds the few trainers it needs itself.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

from relunet.errors import InputError, first_line
from relunet.nnunet.installed import env_folder
from relunet.nnunet.seeded_trainers import SEEDED_NAME, seed_everything, seeded
from relunet.nnunet.trainer import TRAINERS

#: nnU-Net's modules relunet looks in before its trainer search (the plain trainer, its lengths)
PLAIN_MODULES = (
    "nnunetv2.training.nnUNetTrainer.nnUNetTrainer",
    "nnunetv2.training.nnUNetTrainer.variants.training_length.nnUNetTrainer_Xepochs",
)


def trainer_class(name: str) -> type[nnUNetTrainer]:
    """The trainer class called `name`: relunet's, nnU-Net's plain ones, else nnU-Net's search.

    `<trainer>_seed<S>` is the seeded variant of `<trainer>` (`seeded_trainers`).
    """
    if name in TRAINERS:
        return TRAINERS[name]
    variant = SEEDED_NAME.fullmatch(name)
    if variant:
        return seeded(trainer_class(variant["base"]), int(variant["seed"]))
    for module in PLAIN_MODULES:
        found = getattr(importlib.import_module(module), name, None)
        if isinstance(found, type) and issubclass(found, nnUNetTrainer):
            return found
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    try:
        return recursive_find_trainer_class_by_name(name)
    except (RuntimeError, ImportError) as err:
        raise InputError(
            f"--trainer {name}: nnU-Net's trainer search failed ({first_line(err, 80)}); use "
            f"{', '.join(sorted(TRAINERS)[:2])}, ... or nnUNetTrainer with --epochs/--iterations"
        ) from None


def preprocessed_folder(dataset: str) -> Path:
    """`nnUNet_preprocessed/DatasetXXX_Name` of a dataset given by id or name."""
    root = env_folder("nnUNet_preprocessed", "the folder nnUNetv2_plan_and_preprocess wrote")
    try:
        name = maybe_convert_to_dataset_name(dataset)
    except RuntimeError as err:
        raise InputError(f"dataset {dataset}: {first_line(err, 80)}; plan and preprocess it first") from None
    return root / name


def train(
    dataset: str,
    configuration: str,
    fold: int,
    trainer: str = "nnUNetTrainerRelation",
    plans: str = "nnUNetPlans",
    device: str = "cpu",
    epochs: int | None = None,
    iterations: int | None = None,
    resume: bool = False,
    validate: bool = True,
    seed: int | None = None,
) -> Path:
    """Train one fold as `nnUNetv2_train` does, then run nnU-Net's final validation; the model folder.

    `epochs` and `iterations` (per epoch; validation iterations are half of them) override the
    trainer's schedule, so a plain `nnUNetTrainer` can run the same budget as a relation one.
    `resume` continues from the fold's latest checkpoint, as `nnUNetv2_train --c`; without
    `validate`, nnU-Net's final validation (every validation case, mirrored) is skipped.
    `seed` S > 0 trains the seeded variant `<trainer>_seedS` into its own model folder (a
    deep-ensemble member); 0 seeds the trainer itself; None leaves nnU-Net's generators unseeded.
    """
    from nnunetv2.run.run_training import maybe_load_checkpoint

    env_folder("nnUNet_results", "where nnU-Net writes trained models")
    if seed is not None and seed < 0:
        raise InputError(f"--seed {seed}: give a whole number >= 0")
    cls = trainer_class(trainer)
    if seed:
        cls = seeded(cls, seed)
    elif seed == 0:
        seed_everything(0)
    folder = preprocessed_folder(dataset)
    plans_file = folder / f"{plans}.json"
    if not plans_file.is_file():
        raise InputError(f"{plans_file}: not found; run nnUNetv2_plan_and_preprocess -d {dataset} first")
    plans_json = load_json(str(plans_file))
    plans_json["continue_training"] = resume
    if configuration not in plans_json["configurations"]:
        known = ", ".join(plans_json["configurations"])
        raise InputError(f"configuration {configuration}: not in {plans_file}; choose one of {known}")
    if (epochs is not None and epochs < 1) or (iterations is not None and iterations < 1):
        raise InputError(f"--epochs {epochs} --iterations {iterations}: give whole numbers >= 1")
    model = cls(
        plans=plans_json,
        configuration=configuration,
        fold=fold,
        dataset_json=load_json(str(folder / "dataset.json")),
        device=torch.device(device),
    )
    if epochs is not None:
        model.num_epochs = epochs
    if iterations is not None:
        model.num_iterations_per_epoch = iterations
        model.num_val_iterations_per_epoch = max(1, iterations // 2)
    maybe_load_checkpoint(model, resume, False)
    model.run_training()
    if validate:
        model.perform_actual_validation(False)
    return Path(model.output_folder_base)
