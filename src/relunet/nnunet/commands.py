"""`relunet nnunet ...`: the nnU-Net verbs of the command line (nnunetv2 is imported inside each)."""

from __future__ import annotations

from typing import Annotated

import typer

from relunet.errors import guarded

Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]

nnunet_app = typer.Typer(no_args_is_help=True, help="nnU-Net v2: the relation heads as an nnU-Net trainer.")


@nnunet_app.command("env")
def nnunet_env() -> None:
    """Print the line that lets nnU-Net's own commands find nnUNetTrainerRelation."""

    def call() -> None:
        from relunet.nnunet.installed import ext_trainer_line, require_nnunet

        require_nnunet()
        typer.echo(ext_trainer_line())

    guarded(call)


@nnunet_app.command("train")
def nnunet_train(
    dataset: Annotated[str, typer.Argument(help="Dataset id or name, planned and preprocessed.")],
    configuration: Annotated[str, typer.Argument(help="2d, 3d_fullres, ... (a configuration of its plans).")],
    fold: Annotated[int, typer.Argument(help="Fold of nnU-Net's splits_final.json.")],
    trainer: Annotated[str, typer.Option("--trainer", "-tr", help="Trainer class.")] = (
        "nnUNetTrainerRelation"
    ),
    plans: Annotated[str, typer.Option("--plans", "-p", help="Plans identifier.")] = "nnUNetPlans",
    epochs: Annotated[int | None, typer.Option(help="Override the trainer's epochs.")] = None,
    iterations: Annotated[int | None, typer.Option(help="Override its iterations per epoch.")] = None,
    resume: Annotated[bool, typer.Option("--continue", help="Continue from the fold's checkpoint.")] = False,
    validation: Annotated[
        bool, typer.Option(help="Run nnU-Net's final validation (every validation case) after training.")
    ] = True,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed the generators; S > 0 trains `<trainer>_seedS`, a deep-ensemble member."),
    ] = None,
    device: Device = "auto",
) -> None:
    """Train one fold as `nnUNetv2_train` does (needs nnUNet_preprocessed and nnUNet_results).

    Deep ensemble of the plain trainer: train the same fold with `-tr nnUNetTrainer` and
    --seed 1, 2, ...; then `relunet predict MODEL IMAGES --member MODEL_seed1 ...`.
    """

    def call() -> None:
        from relunet.device import resolve_device
        from relunet.nnunet.installed import require_nnunet

        require_nnunet()
        from relunet.nnunet.launch import train as run_train

        where = run_train(
            dataset,
            configuration,
            fold,
            trainer,
            plans,
            str(resolve_device(device)),
            epochs,
            iterations,
            resume,
            validation,
            seed,
        )
        typer.echo(f"trained fold {fold}: {where}")

    guarded(call)
