"""The `relunet` command line: typer verbs, each a thin call into one library function.

Heavy libraries are imported inside each command, so `--help` is instant. A command first checks
its paths (and `train` its options) with the library's light checks, so that a mistake is answered
before torch and MONAI load.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from relunet.errors import guarded
from relunet.nnunet.commands import nnunet_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Relation U-Net: segmentation that says how much to trust each result.",
)
app.add_typer(nnunet_app, name="nnunet")

OutDir = Annotated[Path, typer.Option("--out", help="Folder to write to.")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Fold = Annotated[int | None, typer.Option(help="Fold whose model to use (default: the only one).")]
Features = Annotated[
    str | None,
    typer.Option(help="The backbone's widths, e.g. '32,32,64,128,256,32' (default: its own)."),
]
Tta = Annotated[
    str | None,
    typer.Option(
        help="flip: also run the image's flips and score their agreement (a run trained with --flips)."
    ),
]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace the results already in --out (whole, at the end).")
]
Mirroring = Annotated[
    bool, typer.Option(help="nnU-Net model folders: average the mirrored inputs, as nnU-Net predicts.")
]
Members = Annotated[
    list[Path] | None,
    typer.Option(
        "--member",
        help="nnU-Net model folders: another plain model of the fold (--seed S); repeat for a deep ensemble.",
    ),
]


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="Dataset: MSD folder or images/ + masks/.")],
    out: OutDir,
    model: Annotated[str, typer.Option(help="relation, unet or mcdropout.")] = "relation",
    backbone: Annotated[
        str, typer.Option(help="Network inside: basicunet, unet, segresnet, dynunet or swinunetr.")
    ] = "basicunet",
    segmentation: Annotated[
        str, typer.Option(help="What a self-pair delivers: seg_a, or s1s2 (the mean of the two heads).")
    ] = "seg_a",
    features: Features = None,
    dims: Annotated[int, typer.Option(help="2: images or slices of volumes; 3: volumes.")] = 2,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default 100).")] = None,
    fold: Annotated[int, typer.Option(help="Fold to train.")] = 0,
    folds: Annotated[int, typer.Option(help="Number of folds of the split.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of weights and pairing.")] = 0,
    pairing: Annotated[str | None, typer.Option(help="independent, mixed or depth.")] = None,
    same_fraction: Annotated[float | None, typer.Option(help="Share of x1 = x2 pairs.")] = None,
    loss: Annotated[str | None, typer.Option(help="bce_dice or bce.")] = None,
    relation_loss: Annotated[
        str | None, typer.Option(help="Loss of the union and intersection heads (default: --loss).")
    ] = None,
    relation_weight: Annotated[
        float | None, typer.Option(help="Weight of the union and intersection heads' loss (default 1).")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Pairs per step.")] = None,
    samples_per_epoch: Annotated[int | None, typer.Option(help="Pairs per epoch.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Resize 2D images to this side.")] = None,
    labels: Annotated[
        str | None, typer.Option(help="Classes as label sets, e.g. '1;2' or '1,2,4;1,4;4'.")
    ] = None,
    slice_axis: Annotated[int, typer.Option(help="Volume axis cut into 2D slices.")] = 2,
    window: Annotated[str | None, typer.Option(help="Intensity window, e.g. '-100,400' (CT).")] = None,
    patch_size: Annotated[
        str | None, typer.Option(help="Train on patches of this size, e.g. '128,128,64'; predict by windows.")
    ] = None,
    overlap: Annotated[float | None, typer.Option(help="Sliding-window overlap (default 0.5).")] = None,
    spacing: Annotated[
        str | None, typer.Option(help="Resample volumes to this voxel size, 'x,y,z' or 'auto' (median).")
    ] = None,
    cache: Annotated[
        str | None, typer.Option(help="Training samples in memory, on disk, or auto (default).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue a killed run from its checkpoint.")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Retrain this fold from scratch, replacing its checkpoint.")
    ] = False,
    amp: Annotated[
        bool | None, typer.Option("--amp/--no-amp", help="bf16 autocast (default: on GPU).")
    ] = None,
    compile_model: Annotated[bool, typer.Option("--compile", help="Use torch.compile.")] = False,
    flips: Annotated[bool, typer.Option("--flips", help="Random flips of the training inputs.")] = False,
    augment: Annotated[
        bool | None,
        typer.Option("--augment/--no-augment", help="Random rotation, zoom, intensity and noise."),
    ] = None,
    jitter_identical: Annotated[
        bool, typer.Option("--jitter-identical", help="Augment the two inputs of an x1 = x2 pair apart.")
    ] = False,
    device: Device = "auto",
) -> None:
    """Train one fold of a Relation U-Net (or a baseline) on a dataset folder."""

    def call() -> None:
        from relunet.config import DataConfig, ModelConfig, RunConfig, TrainConfig, check_ranges
        from relunet.data.layouts import index_dataset
        from relunet.data.preprocess import parse_label_sets, parse_patch_size, parse_spacing, parse_window
        from relunet.rundir import RunFolder

        train_cfg = _given(
            epochs=epochs,
            seed=seed,
            pairing=pairing,
            same_fraction=same_fraction,
            loss=loss,
            relation_loss=relation_loss,
            relation_weight=relation_weight,
            lr=lr,
            batch_size=batch_size,
            samples_per_epoch=samples_per_epoch,
            amp=amp,
            compile=compile_model or None,
            flips=flips or None,
            augment=augment,
            jitter_identical=jitter_identical or None,
            cache=cache,
        )
        data_cfg = _given(
            dims=dims,
            folds=folds,
            image_size=image_size,
            slice_axis=slice_axis,
            label_sets=parse_label_sets(labels) if labels else None,
            window=parse_window(window) if window else None,
            patch_size=parse_patch_size(patch_size) if patch_size else None,
            overlap=overlap,
            spacing=parse_spacing(spacing) if spacing else None,
        )
        config = RunConfig(
            ModelConfig(kind=model, backbone=backbone, segmentation=segmentation, features=_widths(features)),
            DataConfig(**data_cfg),
            TrainConfig(**train_cfg),
        )
        index_dataset(data)  # a missing dataset or a bad option answers before torch and MONAI load
        check_ranges(config)
        from relunet.training.train_workflow import train_fold

        train_fold(
            data,
            out,
            fold=fold,
            resume=resume,
            overwrite=overwrite,
            device=device,
            model=config.model,
            data_cfg=config.data,
            train=config.train,
        )
        typer.echo(f"trained fold {fold}: {RunFolder(out).fold(fold).checkpoint}")

    guarded(call)


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder written by `relunet train`.")],
    source: Annotated[Path, typer.Argument(help="Image file, folder of images, or dataset.")],
    out: OutDir,
    fold: Fold = None,
    anchors: Annotated[int, typer.Option(help="Anchors per case (0: self-pair).")] = 0,
    anchor_source: Annotated[str, typer.Option(help="train or test.")] = "train",
    mc_samples: Annotated[int, typer.Option(help="Draws for an MC-dropout run.")] = 20,
    num_parts: Annotated[int, typer.Option(help="Split the cases into this many parts.")] = 1,
    part_id: Annotated[int, typer.Option(help="The part this process does (0-based).")] = 0,
    target_dice: Annotated[float, typer.Option(help="Review flag: a case is bad below this Dice.")] = 0.8,
    risk: Annotated[float, typer.Option(help="Review flag: most bad cases among those not flagged.")] = 0.1,
    delta: Annotated[float, typer.Option(help="Review flag: chance the promise may fail.")] = 0.1,
    guarantee: Annotated[
        str, typer.Option(help="Review flag: expected (on average) or high-probability (with 1 - delta).")
    ] = "expected",
    coverage: Annotated[float, typer.Option(help="Dice interval: chance it holds the true Dice.")] = 0.9,
    engine: Annotated[str, typer.Option(help="torch, or onnxruntime (CPU; not MC dropout).")] = "torch",
    onnx: Annotated[
        Path | None, typer.Option(help="With --engine onnxruntime: this run's `relunet export` file.")
    ] = None,
    tta: Tta = None,
    mirroring: Mirroring = True,
    member: Members = None,
    patch_size: Annotated[
        str | None, typer.Option(help="3D: sliding windows of this size (default: the run's patch size).")
    ] = None,
    overlap: Annotated[float | None, typer.Option(help="Sliding-window overlap (default: run's).")] = None,
    overwrite: Overwrite = False,
    device: Device = "auto",
) -> None:
    """Segment images and rank them by confidence, most doubtful first (no ground truth).

    On a calibrated run (`relunet calibrate`) each case also gets an estimated Dice with an
    interval and a review flag whose error rate is promised (--target-dice, --risk; --guarantee
    expected: on average over calibrations, high-probability: with probability 1 - --delta).
    With --num-parts P --part-id I, any number of machines each do a share of the cases
    without coordination; `relunet merge OUT` then joins their tables. --engine onnxruntime runs
    the network in ONNX Runtime: the --onnx file, else the model exported on the fly.
    RUN may also be an nnU-Net model folder (nnUNet_results/DatasetXXX/Trainer__Plans__Config,
    --fold default 0) and SOURCE a folder in nnU-Net's layout (CASE_0000.nii.gz, ...); with
    --member, RUN and its members run as a deep ensemble (score: mean pairwise Dice).
    """

    def call() -> None:
        from relunet.data.layouts import index_input
        from relunet.nnunet.model_folder import is_model_folder
        from relunet.rundir import trained_fold

        if not is_model_folder(run):  # a missing run or input answers before torch loads
            trained_fold(run, fold)
            index_input(source)
        from rich.console import Console

        from relunet.data.preprocess import parse_patch_size
        from relunet.evaluation.decision import Promise
        from relunet.inference.workflows import predict_folder
        from relunet.reporting.console import cases_table, prediction_lines

        rows = predict_folder(
            run,
            source,
            out,
            fold=fold,
            anchors=anchors,
            anchor_source=anchor_source,
            mc_samples=mc_samples,
            device=device,
            num_parts=num_parts,
            part_id=part_id,
            overwrite=overwrite,
            promise=Promise(target_dice, risk, delta, coverage, guarantee),
            engine=engine,
            onnx=onnx,
            tta=tta,
            mirroring=mirroring,
            windows=_given(patch_size=parse_patch_size(patch_size) if patch_size else None, overlap=overlap),
            members=member or [],
        )
        Console().print(cases_table(rows, "most doubtful first", limit=20))
        typer.echo(prediction_lines(out if num_parts == 1 else out / f"part{part_id}of{num_parts}"))

    guarded(call)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder written by `relunet train`.")],
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write, e.g. model.onnx.")],
    fold: Fold = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out file.")] = False,
) -> None:
    """Export a fold's network to ONNX, with the run config and size rule in its metadata."""

    def call() -> None:
        from relunet.rundir import trained_fold

        trained_fold(run, fold)  # a missing run answers before torch loads
        from relunet.inference.workflows import export_run

        typer.echo(f"written: {export_run(run, out, fold=fold, overwrite=overwrite)}")

    guarded(call)


@app.command()
def calibrate(
    run: Annotated[Path, typer.Argument(help="Run folder (`relunet train`) or cross-validation folder.")],
    data: Annotated[
        Path, typer.Argument(help="Labelled dataset; only cases the model never trained on count.")
    ],
    fold: Fold = None,
    method: Annotated[str, typer.Option(help="Cross-validation folder: the method's scores.")] = (
        "relation_self_pair"
    ),
    tta: Tta = None,
    mirroring: Mirroring = True,
    member: Members = None,
    device: Device = "auto",
) -> None:
    """Store (score, Dice) pairs of held-out labelled cases in the run, for `predict` to decide with.

    RUN may also be an nnU-Net model folder: DATA is then its raw dataset (imagesTr/, labelsTr/),
    and the fold's validation cases of nnU-Net's splits_final.json are used (with --member: the
    deep ensemble's calibration, kept in RUN's fold).
    """

    def call() -> None:
        from relunet.data.layouts import index_dataset
        from relunet.nnunet.model_folder import is_model_folder
        from relunet.rundir import CrossvalFolder, trained_fold

        if not is_model_folder(run):  # a missing run or dataset answers before torch loads
            if not CrossvalFolder(run).is_crossval():
                trained_fold(run, fold)
            index_dataset(data)
        from relunet.inference.calibrate import calibrate as run_calibrate

        for path in run_calibrate(
            run,
            data,
            fold=fold,
            method=method,
            device=device,
            tta=tta,
            mirroring=mirroring,
            members=member or [],
        ):
            typer.echo(f"calibrated: {path}")

    guarded(call)


@app.command()
def review(
    folder: Annotated[Path, typer.Argument(help="Folder written by `relunet predict` on a calibrated run.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Page to write (default FOLDER/review.html).")
    ] = None,
) -> None:
    """One offline worklist page: most doubtful first, flagged cases marked, marks exported as CSV."""

    def call() -> None:
        from relunet.reporting.review_page import write_review_page

        typer.echo(f"written: {write_review_page(folder, out)}")

    guarded(call)


@app.command()
def merge(
    out: Annotated[Path, typer.Argument(help="Folder the parts of a sharded prediction wrote to.")],
) -> None:
    """Join the per-part case tables of a sharded prediction into cases.csv."""

    def call() -> None:
        from relunet.inference.sharding import merge_parts

        rows = merge_parts(out)
        typer.echo(f"{len(rows)} cases: {out / 'cases.csv'}")

    guarded(call)


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder written by `relunet train`.")],
    data: Annotated[Path, typer.Argument(help="Dataset with ground truth.")],
    out: OutDir,
    fold: Fold = None,
    all_cases: Annotated[bool, typer.Option("--all", help="Every case, not the test fold.")] = False,
    mc_samples: Annotated[int, typer.Option(help="Draws for an MC-dropout run.")] = 20,
    tta: Tta = None,
    overwrite: Overwrite = False,
    device: Device = "auto",
) -> None:
    """Evaluate a fold on its test cases: per_case.csv and summary.json."""

    def call() -> None:
        from relunet.data.layouts import index_dataset
        from relunet.rundir import trained_fold

        trained_fold(run, fold)  # a missing run or dataset answers before torch loads
        index_dataset(data)
        from rich.console import Console

        from relunet.inference.workflows import evaluate_folder
        from relunet.reporting.console import summary_table

        summary = evaluate_folder(
            run,
            data,
            out,
            fold=fold,
            all_cases=all_cases,
            mc_samples=mc_samples,
            device=device,
            overwrite=overwrite,
            tta=tta,
        )
        Console().print(summary_table(summary))
        typer.echo(f"written: {out / 'per_case.csv'}, {out / 'summary.json'}")

    guarded(call)


@app.command()
def crossval(
    data: Annotated[Path, typer.Argument(help="Dataset: MSD folder or images/ + masks/.")],
    out: OutDir,
    folds: Annotated[int, typer.Option(help="Number of folds.")] = 5,
    fold: Annotated[int | None, typer.Option(help="Do only this fold (one process per fold).")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated methods (default: all).")] = None,
    anchors: Annotated[str, typer.Option(help="Anchor counts, e.g. '10,200'.")] = "10,200",
    mc_samples: Annotated[str, typer.Option(help="MC-dropout draws, e.g. '20,200'.")] = "20,200",
    backbone: Annotated[
        str, typer.Option(help="Network inside: basicunet, unet, segresnet, dynunet or swinunetr.")
    ] = "basicunet",
    features: Features = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per model (default 100).")] = None,
    samples_per_epoch: Annotated[int | None, typer.Option(help="Pairs per epoch.")] = None,
    dims: Annotated[int, typer.Option(help="2 or 3.")] = 2,
    image_size: Annotated[int | None, typer.Option(help="Resize 2D images to this side.")] = None,
    labels: Annotated[str | None, typer.Option(help="Classes as label sets, e.g. '1;2'.")] = None,
    window: Annotated[str | None, typer.Option(help="Intensity window, e.g. '-100,400' (CT).")] = None,
    failure_threshold: Annotated[
        float, typer.Option(help="Dice below which a test case is a failure to detect.")
    ] = 0.7,
    device: Device = "auto",
) -> None:
    """Cross-validate every method: train, predict each test fold, evaluate, aggregate (resumable)."""

    def call() -> None:
        from relunet.data.layouts import index_dataset

        index_dataset(data)  # a missing dataset answers before torch loads
        from rich.console import Console

        from relunet.config import DataConfig, TrainConfig
        from relunet.crossval import crossval as run_crossval
        from relunet.crossval import select_methods
        from relunet.data.preprocess import parse_label_sets, parse_window

        chosen = select_methods(
            methods, _ints(anchors, "--anchors", "10,200"), _ints(mc_samples, "--mc-samples", "20,200")
        )
        data_cfg = _given(
            dims=dims,
            image_size=image_size,
            label_sets=parse_label_sets(labels) if labels else None,
            window=parse_window(window) if window else None,
        )
        train_cfg = _given(epochs=epochs, samples_per_epoch=samples_per_epoch)
        console = Console()
        summary = run_crossval(
            data,
            out,
            folds=folds,
            fold=fold,
            methods=chosen,
            data_cfg=DataConfig(**data_cfg),
            train=TrainConfig(**train_cfg),
            device=device,
            log=console.log,
            failure_threshold=failure_threshold,
            backbone=backbone,
            features=_widths(features),
        )
        for name, entry in summary.items():
            console.print(
                f"{name:28s} Dice {entry['dice_seg_a_mean_mean']:.3f}  "
                f"Pearson {entry.get('pearson_mean') or float('nan'):.3f}  folds {entry['n_folds']}"
            )
        typer.echo(f"written: {out / 'summary.json'}; next: relunet report {out}")

    guarded(call)


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(help="Folder written by `relunet crossval`.")],
    data: Annotated[
        Path | None, typer.Option(help="The dataset, if it moved since training (for the example figures).")
    ] = None,
) -> None:
    """Tables, figures and one self-contained HTML page for a cross-validation folder."""

    def call() -> None:
        from relunet.reporting.page import build_report

        typer.echo(f"written: {build_report(folder, data)}")

    guarded(call)


@app.command()
def demo(
    out: OutDir = Path("runs/demo"),
    cases: Annotated[int, typer.Option(help="Synthetic images to generate.")] = 200,
    device: Device = "auto",
) -> None:
    """Synthetic data -> train -> evaluate -> calibrate -> predict (both guarantees) -> review pages."""

    def call() -> None:
        from rich.console import Console

        from relunet.demo import run_demo
        from relunet.reporting.console import cases_table, prediction_lines, summary_table

        summary, rows, pages = run_demo(out, n_cases=cases, device=device)
        console = Console()
        console.print(cases_table(rows, "test cases, most doubtful first"))
        console.print(summary_table(summary, "Relation U-Net, self-pair confidence C"))
        for guarantee, page in pages.items():
            typer.echo(f"--guarantee {guarantee}: {prediction_lines(page.parent)}")
            typer.echo(f"review page: {page}")

    guarded(call)


def _widths(text: str | None) -> tuple[int, ...] | None:
    return None if text is None else _ints(text, "--features", "32,32,64,128,256,32")


def _ints(text: str, option: str, example: str) -> tuple[int, ...]:
    from relunet.errors import InputError

    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(
            f"{option} {text!r}: give whole numbers separated by commas, e.g. '{example}'"
        ) from None


def _given(**values: Any) -> dict[str, Any]:
    """The options the user set (None means: keep the default)."""
    return {k: v for k, v in values.items() if v is not None}


def main() -> None:
    """Entry point of the `relunet` script."""
    app(prog_name="relunet")


if __name__ == "__main__":
    sys.exit(main())
