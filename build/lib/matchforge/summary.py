"""One table per kind of result, for people and for the Snakemake report.

- ``scenes.csv``: one row per scene from ``results/{scene}/sfm/stats.json`` (or ``depth/inputs.json`` for
  scenes without SfM), ``depth/qa.json`` and ``depth/shape.json``.
- ``evaluations.csv``: one row per ``results/eval/{family}/{run}/{testset}.json``, plus a row
  ``<run> (before)`` for a fine-tuned run's initial weights (its ``before`` key), so SIFT, before
  and after stand side by side per test set.
- ``evaluations.png``: the pose AUCs (and any other ``auc``/``mma`` metrics) as grouped bars.

Only scalar numbers and strings are tabulated (nested dicts are flattened with ``.``; lists skipped).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd


def flatten(d: dict[str, Any], prefix: str = "", depth: int = 2) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth > 0:
            out.update(flatten(value, f"{name}.", depth - 1))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[name] = value
    return out


def scene_table(results: Path) -> pd.DataFrame:
    """One row per scene: SfM stats (or, without SfM, the photos used), depth QA and the shape step's summary."""
    rows = []
    scenes = sorted({p.parents[1].name for p in results.glob("*/sfm/stats.json")}
                    | {p.parents[1].name for p in results.glob("*/depth/inputs.json")})
    for scene in scenes:
        row: dict[str, Any] = {"scene": scene}
        stats_path = results / scene / "sfm" / "stats.json"
        if stats_path.exists():
            stats = json.loads(stats_path.read_text())
            row.update({k: stats.get(k) for k in ("num_images", "num_registered", "num_points3D",
                                                  "mean_reprojection_error", "mean_track_length", "seconds")})
            row["num_skipped"] = len(stats.get("skipped", []))
        else:  # single_images: no SfM
            inputs = json.loads((results / scene / "depth" / "inputs.json").read_text())
            row.update(num_images=inputs["num_images"] + len(inputs["skipped"]), num_skipped=len(inputs["skipped"]))
        qa_path = results / scene / "depth" / "qa.json"
        if qa_path.exists():
            qa = {k: v for k, v in json.loads(qa_path.read_text()).items() if k not in ("scene", "images")}
            row.update({f"depth.{k}": v for k, v in flatten(qa, depth=1).items()})
        shape_path = results / scene / "depth" / "shape.json"
        if shape_path.exists():
            row.update({f"shape.{k}": v for k, v in json.loads(shape_path.read_text())["summary"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def eval_table(results: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((results / "eval").glob("*/*/*.json")):
        family, run, testset = path.parts[-3], path.parts[-2], path.stem
        row = {"family": family, "run": run, "testset": testset}
        result = json.loads(path.read_text())
        # options and test-set descriptions are inputs, not results: they stay in the JSON files
        row.update(flatten({k: v for k, v in result.items()
                            if k not in ("conf", "options", "config", "testset_conf", "baseline", "testset", "before")}))
        if isinstance(result.get("before"), dict):  # a fine-tuned run: its initial weights, scored on the same pairs
            rows.append({"family": family, "run": f"{run} (before)", "testset": testset,
                         **{k: v for k, v in result["before"].items() if k != "weights"}})
        rows.append(row)
    return pd.DataFrame(rows)


def plot_evaluations(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [c for c in table.columns if any(k in c.lower() for k in ("auc@", "mma")) and
               pd.api.types.is_numeric_dtype(table[c])] if len(table) else []
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * max(len(table), 1)), 4))
    if metrics:
        labels = table["family"] + "/" + table["run"] + "\n" + table["testset"]
        table.set_index(labels)[metrics].plot.bar(ax=ax, rot=0)
        ax.set_ylabel("percent")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no evaluation results yet", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title("matchforge evaluations")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(results: str | Path, out: str | Path) -> None:
    results, out = Path(results), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scenes = scene_table(results)
    scenes.to_csv(out / "scenes.csv", index=False)
    evals = eval_table(results)
    evals.to_csv(out / "evaluations.csv", index=False)
    plot_evaluations(evals, out / "evaluations.png")
    with pd.option_context("display.width", 200, "display.max_columns", 12):
        print(scenes.to_string(index=False) if len(scenes) else "no scenes")
        print(evals.to_string(index=False) if len(evals) else "no evaluations")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    parser.add_argument("--out", type=Path, default=Path("results/summary"), help="where the tables go")


def run(args: argparse.Namespace) -> None:
    main(args.results, args.out)
