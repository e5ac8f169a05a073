"""The paper's experiments on the real data: run (or continue) `relunet crossval`, build the report,
copy its small outputs to docs/crossval/<name>/ and regenerate docs/results.md.

    python benchmarks/crossval_results.py hippocampus [--methods relation_self_pair,unet|all] \
        [--fold K] [--jobs N] [--time-limit S] [--device auto] [--data PATH] [--name NAME] [--publish-only]

Resumable: finished folds and methods are kept (runs/crossval/<name>/; the name defaults to the
dataset's), and a checkout without that folder starts from the folds published in
docs/crossval/<name>/ (a model's checkpoint is not published: a fold half-trained elsewhere
starts over). `--jobs N` runs N worker processes that divide the models and evaluations between
them (on a GPU, whose small-batch steps leave it mostly idle), stops them after `--time-limit`
seconds, and publishes what finished. Each call's command, wall time, settings and hardware go
to docs/crossval/<name>/runs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from relunet.atomic import write_bytes, write_json, write_text
from relunet.config import DataConfig, TrainConfig
from relunet.crossval import aggregate, all_methods, crossval, evaluated, select_methods
from relunet.device import describe, resolve_device
from relunet.errors import guarded
from relunet.reporting.page import FIGURES, build_report
from relunet.reporting.paper import published, render_beside_paper
from relunet.reporting.recipes import render_recipes
from relunet.reporting.score_targets import render_score_targets
from relunet.reporting.tables import read_summary, render_tables
from relunet.rundir import CrossvalFolder, MethodFold

ROOT = Path(__file__).resolve().parents[1]
#: the default schedule (lr 1e-3 halved 4 times) in 40 epochs of 2000 pairs instead of 100, so that
#: 5 folds of Relation U-Net + U-Net on Hippocampus take under 3 hours on 2 CPU cores
SCHEDULE = {"epochs": 40, "lr_step": 8}
#: dataset -> (folder under ../shared/data, data settings, training settings over the defaults)
DATASETS = {
    "hippocampus": ("Task04_Hippocampus", {"dims": 2}, SCHEDULE),
    "hippocampus_2class": ("Task04_Hippocampus", {"dims": 2, "label_sets": ((1,), (2,))}, SCHEDULE),
    # every model trained with augmentation (rotation, zoom, intensity, noise)
    "hippocampus_augmented": ("Task04_Hippocampus", {"dims": 2}, {**SCHEDULE, "augment": True}),
    # the recipe fold 0 of the ablation liked best for ranking the (s1+s2)/2 segmentation
    # (docs/head_average/), checked on 5 folds: independent pairs, no augmentation
    "hippocampus_independent": ("Task04_Hippocampus", {"dims": 2}, {**SCHEDULE, "pairing": "independent"}),
    # the same on the full schedule (100 epochs, lr halved every 20): on fold 0, 100 epochs raised
    # independent pairs' Dice of seg_a from 0.852 to 0.877; does the (s1+s2)/2 reach the ensemble's?
    "hippocampus_independent_100_epochs": ("Task04_Hippocampus", {"dims": 2}, {"pairing": "independent"}),
    # every model on twice the default widths, augmented: on fold 0 (docs/single_fold.md) the
    # Relation U-Net's Dice reached the augmented U-Net's, and augmentation kept its C ranking cases
    # (without it, the wider network's heads agree on almost every case)
    "hippocampus_wide_augmented": ("Task04_Hippocampus", {"dims": 2}, {**SCHEDULE, "augment": True}),
    # the `relunet train` defaults as they are (100 epochs, no augmentation for the Relation U-Net,
    # the baselines augmented by `default_augment`): the like-for-like partner of the next entry
    "hippocampus_100_epochs": ("Task04_Hippocampus", {"dims": 2}, {}),
    # augmentation on the full schedule (100 epochs, lr halved every 20): on fold 0
    # (docs/single_fold.md) the Relation U-Net's Dice of seg_a rose to 0.895 beside the U-Net's 0.897
    "hippocampus_augmented_100_epochs": ("Task04_Hippocampus", {"dims": 2}, {"augment": True}),
    "isic_augmented": ("ISIC2017_Task1_256", {"image_size": 128}, {**SCHEDULE, "augment": True}),
    "isic": ("ISIC2017_Task1_256", {"image_size": 128}, SCHEDULE),
    # the paper's schedule length (100 epochs, lr halved every 20), for a GPU: does the
    # Relation U-Net's Dice gap to the U-Net on ISIC close with longer training?
    "isic_100_epochs": ("ISIC2017_Task1_256", {"image_size": 128}, {"epochs": 100, "lr_step": 20}),
}
#: the backbone's widths where a cross-validation does not use its default (16, 16, 32, 64, 128, 16)
WIDTHS = {"hippocampus_wide_augmented": (32, 32, 64, 128, 256, 32)}
#: which of the paper's datasets each of ours stands beside
PAPER_DATASETS = {
    "hippocampus": "Hippocampus",
    "hippocampus_augmented": "Hippocampus",
    "hippocampus_wide_augmented": "Hippocampus",
    "hippocampus_100_epochs": "Hippocampus",
    "hippocampus_augmented_100_epochs": "Hippocampus",
    "isic": "ISIC (2018)",
    "isic_augmented": "ISIC (2018)",
    "isic_100_epochs": "ISIC (2018)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=list(DATASETS))
    parser.add_argument("--methods", default="relation_self_pair,unet", help="comma-separated, or 'all'")
    parser.add_argument("--anchors", default="10,200")
    parser.add_argument("--mc-samples", default="20,200")
    parser.add_argument("--fold", type=int, default=None)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes sharing the work")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds before --jobs children stop")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--name", default=None, help="results name (default: the dataset's)")
    parser.add_argument("--out", type=Path, default=None, help="default runs/crossval/<name>")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where results.md and crossval/ go")
    parser.add_argument("--epochs", type=int, default=None, help="override (smoke tests)")
    parser.add_argument("--samples-per-epoch", type=int, default=None, help="override (smoke tests)")
    parser.add_argument(
        "--publish-only",
        action="store_true",
        help="rebuild report and docs, run nothing (without the run folder: the published tables.md)",
    )
    parser.add_argument("--no-publish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    folder, data_cfg, train_cfg = DATASETS[args.dataset]
    data = args.data or ROOT.parent / "shared" / "data" / folder
    name = args.name or args.dataset
    out = args.out or ROOT / "runs" / "crossval" / name
    overrides = {"epochs": args.epochs, "samples_per_epoch": args.samples_per_epoch}
    train_cfg = {**train_cfg, **{k: v for k, v in overrides.items() if v is not None}}
    docs = args.docs / "crossval"
    names = None if args.methods == "all" else args.methods
    methods = select_methods(names, _ints(args.anchors), _ints(args.mc_samples))
    tic = time.perf_counter()
    if not args.publish_only:
        _restore_published(docs / name, out)
        if args.jobs > 1 or args.time_limit:
            _run_children(args)
        else:
            crossval(
                data,
                out,
                args.folds,
                args.fold,
                methods,
                DataConfig(**data_cfg),
                TrainConfig(**train_cfg),
                args.device,
                features=WIDTHS.get(args.dataset),
            )
    if args.no_publish:
        return
    seconds = time.perf_counter() - tic
    finished = [
        m
        for m in all_methods(_ints(args.anchors), _ints(args.mc_samples))
        if any(evaluated(out, m, k) for k in range(args.folds))
    ]
    if not args.publish_only:
        runs = _runs(docs / name)
        runs.append(
            {
                "command": "python benchmarks/crossval_results.py " + " ".join(sys.argv[1:]),
                "methods": args.methods,
                "fold": args.fold,
                "folds": args.folds,
                "seconds": seconds,
                "hardware": describe(resolve_device(args.device))
                + (f", {args.jobs} worker processes" if args.jobs > 1 else ""),
                "settings": {**data_cfg, **train_cfg, **_widths(args.dataset)},
            }
        )
        write_json(docs / name / "runs.json", runs)
    if finished:
        write_json(out / "summary.json", aggregate(out, finished))
        build_report(out, data, _runs(docs / name))
        _publish(out, docs / name)
    elif args.publish_only and (docs / name / "summary.json").is_file():
        _retable(docs / name, args.dataset)
    else:
        print(f"{out}: no method has finished a fold yet; nothing to report")
    write_text(args.docs / "results.md", render_results(docs))


def _widths(dataset: str) -> dict:
    """The `features` setting of `dataset` for runs.json, where it is not the backbone's default."""
    return {"features": list(WIDTHS[dataset])} if dataset in WIDTHS else {}


def _run_children(args: argparse.Namespace) -> None:
    """`args.jobs` worker processes sharing the output folder, all stopped at `args.time_limit`.

    Each worker runs the whole cross-validation (or `--fold`); the file locks of
    `relunet.crossval` make them divide the models and evaluations between them.
    """
    deadline = time.monotonic() + (args.time_limit or float("inf"))
    command = [sys.executable, __file__, *_without(sys.argv[1:], ("--jobs", "--time-limit")), "--no-publish"]
    # each worker's CPU work (loading, resampling, metrics) gets its share of the cores: N workers
    # with a thread per core each would spin N times too many threads
    threads = str(max(1, (os.cpu_count() or 1) // args.jobs))
    env = {"OMP_NUM_THREADS": threads, **os.environ}
    workers = [subprocess.Popen(command, env=env) for _ in range(args.jobs)]
    while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
        time.sleep(1)
    for worker in workers:
        worker.terminate()
        worker.wait()


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """`argv` without the given options and their values."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif arg.split("=")[0] not in options:
            kept.append(arg)
    return kept


def _method_folds(out: Path) -> list[MethodFold]:
    """Every method's fold folders in the cross-validation folder `out`."""
    crossval = CrossvalFolder(out)
    return [f for m in sorted(crossval.methods.glob("*/")) for f in crossval.method_folds(m.name, None)]


def _publish(out: Path, dest: Path) -> None:
    """Copy the small outputs (tables, figures, per-fold tables) into the docs.

    Never a hidden file: a process killed mid-write leaves its temporary `.<name>.*.tmp*` file.
    """
    for path in [
        out / "summary.json",
        CrossvalFolder(out).config_path,
        out / "report" / "tables.md",
        *(out / "report" / "figures" / f"{figure}.png" for figure in FIGURES),
        *(path for fold in _method_folds(out) for path in sorted(fold.path.glob("*.csv"))),
        *(path for fold in _method_folds(out) for path in sorted(fold.path.glob("*.json"))),
    ]:
        if path.is_file() and not path.name.startswith("."):
            target = dest / path.relative_to(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)


def _restore_published(published: Path, out: Path) -> None:
    """Put the published method folds back into the run folder `out` where it lacks them.

    The run folder stays on the machine that ran it; what reaches the next machine is the published
    per-fold tables (per_case.csv, summary.json) and the settings (crossval.yaml). Restored, those
    folds count as done, so a call on a fresh checkout trains only what is left, and the settings
    check refuses a call made with other settings. Each fold's summary.json is copied last: it is
    what marks the fold done.
    """
    if not published.is_dir():
        return
    config, saved = CrossvalFolder(out).config_path, CrossvalFolder(published).config_path
    if saved.is_file() and not config.exists():
        write_bytes(config, saved.read_bytes())
    for summary in sorted(published.glob("methods/*/fold_*/summary.json")):
        target = out / summary.parent.relative_to(published)
        if (target / summary.name).exists():
            continue
        for path in [*sorted(summary.parent.glob("*.csv")), summary]:
            write_bytes(target / path.name, path.read_bytes())  # byte for byte: CSVs end lines in CRLF
        print(f"{target}: restored from {summary.parent} (published)")


def _retable(dest: Path, dataset: str) -> None:
    """Render a published tables.md again from the published summary.json and runs.json.

    For when the run folder is not on this machine; the dataset is named as `DATASETS` names it.
    """
    folder, data_cfg, _ = DATASETS[dataset]
    classes = len(data_cfg.get("label_sets", ())) or 1
    tables = render_tables(read_summary(dest / "summary.json"), folder, classes, _runs(dest))
    write_text(dest / "report" / "tables.md", tables)


def render_results(docs: Path) -> str:
    """docs/results.md from `docs` (docs/crossval): per dataset, how it ran, its tables and figures."""
    lines = [
        "# Results: the paper's experiments on real data",
        "",
        "Generated by `benchmarks/crossval_results.py` from `docs/crossval/<dataset>/`; do not edit.",
        "5-fold cross-validation by case (seeded split, the same for every method); each method",
        "trains its own models per fold, predicts the held-out fold and scores every test case.",
        "Tables: mean ± std over the folds. Per-fold tables, per-case CSVs and figures are in",
        "`docs/crossval/<dataset>/`; `runs/crossval/<dataset>/report/report.html` has the sortable",
        "per-case tables after a run. Single-fold ablations (pairing, loss) are in",
        "[single_fold.md](single_fold.md).",
        "",
        *_at_a_glance(docs),
        *render_score_targets(docs),
        *render_recipes(docs, {name: _dataset_label(name) for name in DATASETS}),
        _beside_paper(docs),
    ]
    for folder in sorted(p for p in docs.iterdir() if p.is_dir()):
        runs = _runs(folder)
        lines += [f"## {folder.name}", "", "How it was run (each call resumes the previous ones):", ""]
        for run in runs:
            lines.append(
                f"- `{run.get('command') or _command(folder.name, run)}`: {run['seconds'] / 60:.1f} min "
                f"on {run['hardware']}; settings {json.dumps(run['settings'])}"
            )
        lines += [f"- total: {sum(r['seconds'] for r in runs) / 60:.1f} min", ""]
        notes = folder / "notes.md"  # remarks on the runs, written by hand; never numbers
        if notes.is_file():
            lines += [notes.read_text().strip(), ""]
        tables = folder / "report" / "tables.md"
        if tables.is_file():
            lines += _demoted(tables.read_text().splitlines()[1:])
        # benchmarks/paired_dice.py, threshold_check.py and score_check.py
        analyses = ("threshold_check.md", "scores.md")
        for analysis in [
            *sorted(folder.glob("paired_*.md")),
            *(folder / a for a in analyses if (folder / a).is_file()),
        ]:
            lines += ["", *_demoted(analysis.read_text().splitlines())]
        for figure in sorted(FIGURES):  # only the report's figures, never a file left beside them
            if (folder / "report" / "figures" / f"{figure}.png").is_file():
                lines += ["", f"![{figure}](crossval/{folder.name}/report/figures/{figure}.png)"]
        lines.append("")
    return "\n".join(lines) + "\n"


def _dataset_label(name: str) -> str:
    """The data a cross-validation ran on, in words: its folder, and its classes where several."""
    folder, data_cfg, _ = DATASETS[name]
    classes = len(data_cfg.get("label_sets", ()))
    return folder + (f", {classes} classes" if classes > 1 else "")


def _beside_paper(docs: Path) -> str:
    """The paper's Tables 1 and 2 beside the cross-validations that stand for its datasets."""
    ours = {
        name: (dataset, json.loads((docs / name / "summary.json").read_text()))
        for name, dataset in PAPER_DATASETS.items()
        if (docs / name / "summary.json").is_file()
    }
    return render_beside_paper(published(), ours)


#: the baselines whose confidence the Relation U-Net's self-pair score is held against, in order
RIVALS = {"unet": "U-Net", "mcdropout_n200": "MC dropout n = 200", "ensemble_5": "ensemble of 5"}


def _at_a_glance(docs: Path) -> list[str]:
    """The headline table: per cross-validation, the self-pair's Dice against the U-Net's fold
    spread, and its Pearson against each rival's (mean over folds; folds where it is higher)."""
    header = (
        "| results | epochs | Dice: self-pair | Dice: U-Net | self-pair in the U-Net's spread | "
        "Pearson: self-pair | " + " | ".join(f"Pearson: {label}" for label in RIVALS.values()) + " |"
    )
    rows = []
    for folder in sorted(p for p in docs.iterdir() if (p / "summary.json").is_file()):
        summary = json.loads((folder / "summary.json").read_text())
        mine, unet = summary.get("relation_self_pair"), summary.get("unet")
        if mine is None or unet is None:
            continue
        runs = _runs(folder)
        epochs = runs[-1]["settings"].get("epochs", TrainConfig().epochs) if runs else "—"
        rivals = [_pearson_against(mine, summary.get(name)) for name in RIVALS]
        rows.append(
            f"| [{folder.name}](#{folder.name}) | {epochs} | {_mean_std(mine, 'dice_seg_a_mean')} | "
            f"{_mean_std(unet, 'dice_seg_a_mean')} | {_against_spread(mine, unet)} | "
            f"{_mean_std(mine, 'pearson')} | " + " | ".join(rivals) + " |"
        )
    if not rows:
        return []
    return [
        "## At a glance",
        "",
        "The Relation U-Net fed each test image twice (self-pair) against the U-Net: Dice of `seg_a`, and",
        "whether it lies within one fold-to-fold standard deviation of the U-Net's; Pearson of each",
        "method's confidence with Dice, with the folds on which the self-pair's Pearson is the higher",
        "(U-Net: its mean foreground probability; MC dropout: Dice of the union and intersection of",
        "its samples; ensemble: mean pairwise Dice of its members). Mean ± std over folds.",
        "",
        header,
        "| --- | ---: | ---: | ---: | --- | ---: | " + " | ".join("---:" for _ in RIVALS) + " |",
        *rows,
        "",
    ]


def _runs(folder: Path) -> list[dict]:
    """The calls recorded in a published cross-validation's runs.json (none if it has none)."""
    log = folder / "runs.json"
    return json.loads(log.read_text()) if log.is_file() else []


def _against_spread(mine: dict, unet: dict) -> str:
    """Whether the self-pair's mean Dice is above the U-Net's, within its one std, or short of it."""
    dice, reference = mine["dice_seg_a_mean_mean"], unet["dice_seg_a_mean_mean"]
    floor = reference - unet["dice_seg_a_mean_std"]
    if dice >= reference:
        return "above"
    return "within" if dice >= floor else f"no, short by {floor - dice:.4f}"


def _pearson_against(mine: dict, rival: dict | None) -> str:
    """A rival's Pearson, and on how many of the common folds the self-pair's is higher."""
    if rival is None:
        return "—"
    folds = sorted(set(mine["pearson_by_fold"]) & set(rival["pearson_by_fold"]))
    wins = sum(mine["pearson_by_fold"][k] > rival["pearson_by_fold"][k] for k in folds)
    return f"{_mean_std(rival, 'pearson')} (self-pair higher on {wins}/{len(folds)})"


def _mean_std(summary: dict, metric: str) -> str:
    return f"{summary[metric + '_mean']:.3f} ± {summary[metric + '_std']:.3f}"


def _demoted(lines: list[str]) -> list[str]:
    """Markdown lines with each heading put two levels under a dataset's section."""
    return [line.replace("# ", "### ", 1) if line.startswith("#") else line for line in lines]


def _command(dataset: str, run: dict) -> str:
    """The command of a runs.json entry written before commands were recorded."""
    fold = "" if run["fold"] is None else f" --fold {run['fold']}"
    device = "cpu" if "CPU" in run["hardware"] else "cuda"
    return (
        f"python benchmarks/crossval_results.py {dataset}{fold} --methods {run['methods']} --device {device}"
    )


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


if __name__ == "__main__":
    guarded(main)
