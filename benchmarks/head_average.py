"""Which self-pair output to deliver as the segmentation: `seg_a`, or the mean of the heads.

    python benchmarks/head_average.py NAME=RUN[:FOLDS] [...] --data PATH [--out docs/head_average.json]

RUN is a run folder (`relunet train`) or a cross-validation folder (its Relation U-Net); FOLDS
the folds whose test cases to segment (comma-separated, default 0). For every test case, one
self-pair forward pass gives the four heads; each candidate segmentation (`seg_a`; the paper's
(s1+s2)/2, the mean of the `seg_a` and `seg_b` probabilities; the mean of all four heads) is
thresholded at 0.5 and scored: its Dice, and how well the paper's C ranks it (Spearman, e-AURC).
Writes the JSON and the markdown table beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from relunet.atomic import write_json, write_text
from relunet.data.layouts import index_dataset
from relunet.data.preprocess import label_targets
from relunet.data.training_set import load_cases
from relunet.errors import InputError, guarded
from relunet.evaluation.metrics import dice_per_class, excess_aurc, spearman
from relunet.inference.methods import predict_case
from relunet.inference.workflows import open_predictor
from relunet.rundir import CrossvalFolder, RunFolder

ROOT = Path(__file__).resolve().parents[1]
HEADER = """# Which self-pair output to deliver: `seg_a` or the mean of the heads

One self-pair forward pass per test case; each candidate segmentation is the mean of the named
heads' probabilities, thresholded at 0.5. Dice is the candidate's; Spearman and e-AURC say how
well the paper's C (Dice of the union and intersection heads) ranks that candidate's Dice.
(s1+s2)/2 is the paper's self-pair segmentation (its Tables 1 and 2). Made by:
"""
#: candidate segmentation -> the heads whose probabilities it averages
CANDIDATES = {
    "seg_a": ("seg_a",),
    "(s1+s2)/2": ("seg_a", "seg_b"),
    "four heads": ("seg_a", "seg_b", "union", "inter"),
}


def model_run(path: Path) -> Path:
    """The Relation U-Net run inside a cross-validation folder, or `path` itself."""
    inside = CrossvalFolder(path).model_run("relation_seed0").path
    return inside if inside.is_dir() else path


def case_results(run: Path, fold: int, data: Path) -> list[dict]:
    """Per test case of `fold`: C and the Dice of every candidate (mean over classes)."""
    predictor, _ = open_predictor(run, fold, "cpu")
    split = RunFolder(run).fold_split(fold)
    rows = []
    for case in load_cases(index_dataset(data).subset(split["test"])):
        prediction = predict_case(predictor, case)  # the self-pair: four maps and C
        maps = prediction.maps
        truth = label_targets(case.label, predictor.config.data.label_sets).astype(bool)
        row = {"case_id": case.case_id, "fold": fold, "C": prediction.confidence}
        for name, heads in CANDIDATES.items():
            mean = np.mean([maps[h] for h in heads], axis=0)
            row[name] = float(dice_per_class(mean > 0.5, truth).mean())
        rows.append(row)
    return rows


def summary(rows: list[dict]) -> dict:
    """Per candidate: mean Dice over the cases, per-fold mean Dice, Spearman(C, Dice), e-AURC(C)."""
    confidence = np.array([r["C"] for r in rows])
    folds = sorted({r["fold"] for r in rows})
    out = {"n_cases": len(rows), "folds": folds}
    for name in CANDIDATES:
        dice = np.array([r[name] for r in rows])
        out[name] = {
            "dice": float(dice.mean()),
            "dice_per_fold": [float(np.mean([r[name] for r in rows if r["fold"] == k])) for k in folds],
            "spearman_C": spearman(confidence, dice),
            "eaurc_C": excess_aurc(confidence, 1 - dice),
        }
    return out


def render(results: dict[str, dict]) -> str:
    """A markdown table: one row per run and candidate."""
    lines = [
        "| run | cases | segmentation | Dice | Spearman(C, Dice) | e-AURC(C) |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, s in results.items():
        for candidate in CANDIDATES:
            c = s[candidate]
            lines.append(
                f"| {name} | {s['n_cases']} | {candidate} | {c['dice']:.4f} | {c['spearman_C']:.3f} "
                f"| {c['eaurc_C']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="NAME=RUN[:FOLDS]")
    parser.add_argument("--data", type=Path, required=True, help="the dataset the runs trained on")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "head_average.json")
    args = parser.parse_args()
    results = {}
    for spec in args.runs:
        name, _, where = spec.partition("=")
        path, _, folds = where.partition(":")
        if not name or not path:
            raise InputError(f"{spec}: give NAME=RUN[:FOLDS], e.g. hippocampus=runs/crossval/hippocampus:0,1")
        run = model_run(Path(path))
        rows = [r for k in (folds or "0").split(",") for r in case_results(run, int(k), args.data)]
        results[name] = summary(rows)
        print(render({name: results[name]}), end="", flush=True)
    write_json(args.out, {"data": str(args.data), "runs": args.runs, "results": results})
    command = "python benchmarks/head_average.py " + " ".join(sys.argv[1:])
    write_text(args.out.with_suffix(".md"), f"{HEADER}\n`{command}`\n\n{render(results)}")


if __name__ == "__main__":
    guarded(main)
