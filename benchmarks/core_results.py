"""Reproduce the core results: Relation U-Net vs U-Net on Hippocampus (2D) and ISIC, fold 0 of 5.

Each run trains with `relunet.training.train_workflow.train_fold` (the `relunet train` defaults unless the
run says otherwise), evaluates the test fold, and stores per_case.csv, summary.json and
result.json (settings, wall times, hardware) under docs/results/<run>/. Finished runs are skipped,
so the script resumes. docs/single_fold.md is regenerated from every result.json present (also
those of `benchmarks/backbones.py`).

    python benchmarks/core_results.py --hippocampus ../shared/data/Task04_Hippocampus \
        --isic ../shared/data/ISIC2017_Task1_256 [--only NAME ...] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from relunet.analysis.one_pass_scores import LEARNED, compare, inner_folds
from relunet.atomic import write_json, write_text
from relunet.config import DataConfig, ModelConfig, TrainConfig
from relunet.device import describe, resolve_device
from relunet.errors import guarded
from relunet.evaluation.summary import read_case_table
from relunet.inference.workflows import evaluate_folder
from relunet.rundir import CONFIG_NAME, HISTORY_NAME, RunFolder
from relunet.training.train_workflow import train_fold

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"

#: the cross-validation's schedule (benchmarks/crossval_results.py): lr 1e-3 halved every 8 of 40 epochs
SCHEDULE_40 = {"epochs": 40, "lr_step": 8}
#: the `relunet train` default schedule: lr 1e-3 halved every 20 of 100 epochs
SCHEDULE_100 = {"epochs": 100, "lr_step": 20}
#: ISIC as the cross-validation reads it
ISIC_128 = {"image_size": 128}
#: twice the default BasicUNet widths (16, 16, 32, 64, 128, 16): about 4x the parameters, still fewer
#: than the ensemble of 5 default U-Nets it is compared with
WIDE = {"features": (32, 32, 64, 128, 256, 32)}
#: the recipe ablation on fold 0: (name, model overrides, train overrides, what it shows)
RECIPE = (
    ("relation", {}, {}, "Relation U-Net, defaults"),
    ("relation_augment", {}, {"augment": True}, "Relation U-Net, augmented"),
    ("relation_augment_flips", {}, {"augment": True, "flips": True}, "Relation U-Net, augmented and flipped"),
    ("unet", {"kind": "unet"}, {"augment": False}, "U-Net"),
    ("unet_augment", {"kind": "unet"}, {"augment": True}, "U-Net, augmented"),
    ("relation_paper", {}, {"pairing": "independent", "loss": "bce"}, "paper's protocol"),
    ("relation_bce", {}, {"loss": "bce"}, "mixed pairs, cross-entropy"),
    ("relation_same50", {}, {"same_fraction": 0.5}, "half the pairs identical"),
    ("relation_independent", {}, {"pairing": "independent"}, "independent pairs"),
    (
        "relation_augment_jitter",
        {},
        {"augment": True, "jitter_identical": True},
        "augmented, identical pairs augmented apart",
    ),
    (
        "relation_same10_augment",
        {},
        {"same_fraction": 0.1, "augment": True},
        "a tenth of the pairs identical, augmented",
    ),
    (
        "relation_independent_split",
        {},
        {"pairing": "independent", "relation_loss": "bce"},
        "independent pairs, union and intersection heads on cross-entropy",
    ),
    (
        "relation_independent_augment",
        {},
        {"pairing": "independent", "augment": True},
        "independent pairs, augmented",
    ),
    ("relation_weight_half", {}, {"relation_weight": 0.5}, "union and intersection heads weighted 1/2"),
    ("relation_weight_double", {}, {"relation_weight": 2.0}, "union and intersection heads weighted 2"),
    (
        "relation_independent_weight_half",
        {},
        {"pairing": "independent", "relation_weight": 0.5},
        "independent pairs, union and intersection heads weighted 1/2",
    ),
    (
        "relation_independent_split_augment",
        {},
        {"pairing": "independent", "relation_loss": "bce", "augment": True},
        "independent pairs, union and intersection heads on cross-entropy, augmented",
    ),
    ("relation_wide", WIDE, {}, "Relation U-Net, twice the widths"),
    ("relation_wide_augment", WIDE, {"augment": True}, "Relation U-Net, twice the widths, augmented"),
    ("relation_wide_independent", WIDE, {"pairing": "independent"}, "twice the widths, independent pairs"),
    (
        "relation_wide_independent_augment",
        WIDE,
        {"pairing": "independent", "augment": True},
        "twice the widths, independent pairs, augmented",
    ),
)
#: the recipe rows also run on the default schedule's 100 epochs (lr halved every 20) on Hippocampus:
#: does the longer schedule close the Relation U-Net's Dice gap to the augmented U-Net?
LONG_RECIPE = ("relation_independent", "relation_augment", "unet_augment")
#: the recipe rows also run on ISIC (twice the widths: does the capacity that closed most of
#: Hippocampus's Dice gap close ISIC's, where augmentation did not move the Relation U-Net's Dice?
#: flips: dermoscopy has no up or down, and a U-Net trained with flips has ISIC's best Dice)
ISIC_RECIPE = (
    "relation",
    "relation_augment",
    "relation_augment_flips",
    "unet",
    "unet_augment",
    "relation_paper",
    "relation_independent",
    "relation_wide_augment",
)


def _recipe_rows(dataset: str, data: dict, variants: tuple, schedule: dict = SCHEDULE_40) -> dict[str, tuple]:
    """`RUNS` entries `<dataset>_<E>ep_<name>`: each variant on a schedule of E epochs (default the
    cross-validation's 40)."""
    epochs = schedule["epochs"]
    return {
        f"{dataset}_{epochs}ep_{name}": (
            dataset,
            model,
            data,
            {**schedule, **train},
            f"{epochs} epochs: {what}",
        )
        for name, model, train, what in variants
    }


#: name -> (dataset, model overrides, data overrides, train overrides, what it shows)
RUNS = {
    "hippocampus_relation": ("hippocampus", {}, {}, {}, "Relation U-Net, defaults"),
    "hippocampus_unet": ("hippocampus", {"kind": "unet"}, {}, {}, "U-Net baseline, defaults"),
    "hippocampus_relation_paper": (
        "hippocampus",
        {},
        {},
        {"pairing": "independent", "loss": "bce"},
        "paper's protocol: independent pairs, cross-entropy",
    ),
    "hippocampus_relation_independent": (
        "hippocampus",
        {},
        {},
        {"pairing": "independent"},
        "independent pairs, BCE + Dice",
    ),
    "hippocampus_relation_lr1e-4": (
        "hippocampus",
        {},
        {},
        {"lr": 1e-4},
        "defaults but the paper's learning rate 1e-4",
    ),
    "hippocampus_relation_depth": (
        "hippocampus",
        {},
        {},
        {"pairing": "depth"},
        "partners at the same relative depth",
    ),
    "hippocampus_relation_3d": (
        "hippocampus",
        {},
        {"dims": 3},
        {"samples_per_epoch": 200},
        "3D volumes, 200 pairs/epoch",
    ),
    **_recipe_rows("hippocampus", {}, RECIPE),
    **_recipe_rows("hippocampus", {}, tuple(v for v in RECIPE if v[0] in LONG_RECIPE), SCHEDULE_100),
    **_recipe_rows("isic", ISIC_128, tuple(v for v in RECIPE if v[0] in ISIC_RECIPE)),
    "isic_relation": ("isic", {}, {"image_size": 128}, {}, "Relation U-Net, defaults, 128 px"),
    "isic_unet": ("isic", {"kind": "unet"}, {"image_size": 128}, {}, "U-Net baseline, 128 px"),
}
FORTY_EPOCH_NOTE = (
    "The `hippocampus_40ep_` and `isic_40ep_` rows (the recipe ablation) ran several at a time (up to seven "
    "processes, with other trainings), one thread each, on the 2 cores, so their train minutes are not "
    "comparable with each other or with the other rows."
)
PAPER_NOTE = (
    "The paper reports a U-Net Dice of 82.76 on MSD Hippocampus (its Table 2, 5-fold); "
    "its other numbers are for LiTS, BraTS 2018 and ISIC 2018."
)


def run_one(name: str, data: Path, work: Path, device: str) -> None:
    out = RESULTS / name
    if (out / "result.json").is_file():
        print(f"{name}: done already")
        return
    summary = measure(name, RUNS[name], data, work / name, out, device)["summary"]
    print(f"{name}: Dice {summary['dice_seg_a_mean']:.3f}, Pearson {summary['pearson']}")


def measure(name: str, spec: tuple, data: Path, run: Path, out: Path, device: str) -> dict:
    """Train fold 0 of 5 into `run` as `spec` (a `RUNS` value) says, evaluate it into `out`.

    Writes and returns `out/result.json`.
    """
    dataset, model, data_cfg, train, what = spec
    tic = time.perf_counter()
    history = train_fold(
        data,
        run,
        fold=0,
        resume=True,
        device=device,
        model=ModelConfig(**model),
        data_cfg=DataConfig(folds=5, **data_cfg),
        train=TrainConfig(**train),
    )
    train_s = time.perf_counter() - tic
    tic = time.perf_counter()
    summary = evaluate_folder(run, data, out, fold=0, device=device)
    eval_s = time.perf_counter() - tic
    shutil.copy(RunFolder(run).config_path, out / CONFIG_NAME)
    shutil.copy(RunFolder(run).fold(0).history, out / HISTORY_NAME)
    result = {
        "name": name,
        "dataset": dataset,
        "what": what,
        "fold": 0,
        "folds": 5,
        "epochs": len(history),
        "train_seconds": train_s,
        "evaluate_seconds": eval_s,
        "hardware": describe(resolve_device(device)),
        "summary": summary,
    }
    write_json(out / "result.json", result)
    return result


def render(results: Path = RESULTS) -> str:
    """docs/single_fold.md from every `results/*/result.json`."""
    rows = [json.loads(p.read_text()) for p in sorted(results.glob("*/result.json"))]
    lines = [
        "# Single-fold results: ablations on fold 0",
        "",
        "Generated by `benchmarks/core_results.py` (and the backbone rows by `benchmarks/backbones.py`) "
        "from `docs/results/*/result.json`; do not edit.",
        "",
        "Fold 0 of a seeded 5-fold split by case; self-pair confidence C for the Relation U-Net,",
        "mean foreground probability for the U-Net. Dice of `seg_a` against the expert mask, per",
        "case (3D volumes reassembled from 2D slices), mean ± std over the test cases. AURC with",
        "risk = 1 − Dice (lower is better).",
        "",
        "| run | what | cases | Dice seg_a | Dice inter | C | Pearson(C, Dice) | Spearman | AURC "
        "| epochs | train | hardware |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        s = r["summary"]
        inter = s.get("dice_inter_mean")
        lines.append(
            f"| {r['name']} | {r['what']} | {s['n_cases']} "
            f"| {s['dice_seg_a_mean']:.3f} ± {s['dice_seg_a_std']:.3f} "
            f"| {'—' if inter is None else f'{inter:.3f}'} "
            f"| {s['C_mean']:.3f} ± {s['C_std']:.3f} | {_num(s['pearson'])} | {_num(s['spearman'])} "
            f"| {s['aurc']:.3f} | {r['epochs']} | {r['train_seconds'] / 60:.1f} min | {r['hardware']} |"
        )
    lines += ["", PAPER_NOTE, ""]
    if any("_40ep_" in r["name"] for r in rows):
        lines += [FORTY_EPOCH_NOTE, ""]
    for page in sorted((ROOT / "docs" / "head_average").glob("*.md")):
        lines += [
            f"The same Relation U-Nets delivering the mean of their heads instead of `seg_a` (the "
            f"paper's (s1+s2)/2): [head_average/{page.name}](head_average/{page.name}) "
            "(`benchmarks/head_average.py`).",
            "",
        ]
    lines += [
        "Mean Dice of the most confident d % of test cases:",
        "",
        "| run | " + " | ".join(f"{d}%" for d in range(10, 101, 10)) + " |",
        "| --- |" + " ---: |" * 10,
    ]
    for r in rows:
        s = r["summary"]
        lines.append(
            f"| {r['name']} | "
            + " | ".join(f"{s[f'dice_at_coverage_{d}']:.3f}" for d in range(10, 101, 10))
            + " |"
        )
    lines += _score_tables(results, rows)
    return "\n".join(lines) + "\n"


#: the one-pass scores of the score tables, in column order
SCORES = ("C", "C_soft", "C_heads", "C_ab", "C_fg", "C_band", LEARNED)


def _score_tables(results: Path, rows: list[dict]) -> list[str]:
    """Spearman and e-AURC of every one-pass score, for the runs whose per_case.csv has them."""
    entries = {}
    for r in rows:
        cases = read_case_table(results / r["name"] / "per_case.csv", f"run it again: --only {r['name']}")
        if "C_band" in cases[0]:
            found = compare({r["name"]: cases}, {r["name"]: inner_folds(len(cases))})
            entries[r["name"]] = {e["score"]: e for e in found}
    if not entries:
        return []
    lines = [
        "",
        "One-pass scores of the runs whose per-case table has them (`relunet.confidence`): `C` (the "
        "paper's; the U-Net's mean foreground probability), `C_soft` (C on probabilities), `C_heads` "
        "(mean Dice of the six pairs of binarised heads), `C_ab` (Dice of `seg_a` and `seg_b`), `C_fg` "
        "(mean foreground probability of `seg_a`), `C_band` (Dice of `p > 0.1` and `p > 0.9`), and "
        "`learned` (`relunet.evaluation.quality`: a ridge regression from the run's own scores and "
        "predicted foreground fraction to Dice, cross-fitted over 5 seeded groups of the test cases: "
        "each group is scored by a fit on the other four).",
    ]
    for metric, label in (
        ("spearman", "Spearman with Dice (higher is better)"),
        ("eaurc", "e-AURC (lower is better)"),
    ):
        lines += [
            "",
            f"{label}:",
            "",
            "| run | " + " | ".join(SCORES) + " |",
            "| --- |" + " ---: |" * len(SCORES),
        ]
        for name, found in entries.items():
            digits = 4 if metric == "eaurc" else 3
            cells = [f"{found[c][metric]:.{digits}f}" if c in found else "—" for c in SCORES]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _num(value: float | None) -> str:
    return "n/a (C constant)" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hippocampus", type=Path, default=ROOT.parent / "shared/data/Task04_Hippocampus")
    parser.add_argument("--isic", type=Path, default=ROOT.parent / "shared/data/ISIC2017_Task1_256")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "core")
    parser.add_argument("--only", nargs="*", default=list(RUNS))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    paths = {"hippocampus": args.hippocampus, "isic": args.isic}
    for name in args.only:
        run_one(name, paths[RUNS[name][0]], args.work, args.device)
        write_text(ROOT / "docs" / "single_fold.md", render())
    write_text(ROOT / "docs" / "single_fold.md", render())


if __name__ == "__main__":
    guarded(main)
