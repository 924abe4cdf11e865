"""Tables and figures people read: one per kind of result, each with only the columns that kind has.

Inputs are the result files the workflow made (the summary rule passes its inputs; nothing is globbed,
so a stale run that is no longer configured is not tabulated):

- ``scenes.csv``: one row per scene from ``results/{scene}/sfm/stats.json`` (or ``depth/inputs.json`` for
  scenes without SfM), ``depth/qa.json`` and ``depth/shape.json``.
- ``relpose.csv`` / ``.png``: relative-pose AUC@5/10/20 (%), epipolar precision and RANSAC inlier ratio (%),
  matches, one row per method and test set, each score with its 95 % interval (photos as the unit, ``*_ci``;
  :mod:`matchforge.evaluation.stats`); a fine-tuned run adds ``<run> (before)``, its initial weights on the same
  pairs. The comparison columns are paired, pair by pair on the same pairs: ``vs_before`` (a fine-tune against its
  initial weights) and ``vs_sift`` (against the SIFT reference of the family's protocol on the same test set) give
  the AUC@10 difference, its interval, the sign test's p-value and the verdict. ``note`` flags test sets under 10
  pairs. The figure has one panel per test set with AUC bars per method and their intervals as error bars.
- ``homography.csv`` / ``.png``: mean matching accuracy (%) at 1/3/5/10 px and PoSFeat's MMA score, and the
  homography-estimation AUC (%) at 1/3/5 px of RANSAC and DLT estimates; the figure draws MMA against the
  threshold, one panel per test set.

``method`` names each row by what it is: ``loftr/<run>``, ``posfeat/<run>``, and the two SIFT protocols by their
options: ``sift (mutual NN + ratio 0.8, 4096 kp)`` (the LoFTR baseline, ``sift/ratio``) and ``sift (mutual NN,
2048 kp at 480 px)`` (the PoSFeat baseline, ``sift/mnn``).
- ``localization.csv`` / ``.png``: queries (a scene's test photos) localized against its training photos, as hloc
  runs Aachen: recall (%) at the test set's thresholds (Aachen's by default; ``thresholds`` says in metres or in
  median camera baselines, ``unit``; ``note`` says when metric thresholds are loose for the scene), with intervals,
  median errors, how the database images of each query were chosen (``retrieval``), and ``vs_sift``: recall@1
  against the SIFT reference on the same queries, paired. With visual retrieval each method has a second row,
  ``<method> (oracle retrieval)``: the same matches with each query's most covisible database images in the
  ground-truth model, an upper bound.
- ``reconstruction.csv`` / ``.png``: COLMAP mapping from each method's features: registered images, points,
  track length, reprojection error.
- ``shape.csv`` / ``.png``: shift/focal recovery on held-out items: focal error, shift error, AbsRel before
  and after (means over items).

Each evaluation JSON is recognised by what it holds (see :func:`kind_of`), so every family's evaluator
lands in the same table as the others of its kind.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from matchforge.io.write import save_figure

ID = ["family", "run", "method", "testset"]
COLUMNS = {
    "relpose": ID + ["num_pairs", "num_photos", "auc@5", "auc@5_ci", "auc@10", "auc@10_ci", "auc@20", "auc@20_ci",
                     "precision", "precision_ci", "inlier_ratio", "num_matches", "failed", "seconds_per_pair", "vs_before",
                     "vs_sift", "note"],
    "homography": ID + ["num_pairs", "num_matches", "mma@1", "mma@3", "mma@3_ci", "mma@5", "mma@10", "mma_score",
                        "h_ransac_auc@1", "h_ransac_auc@3", "h_ransac_auc@3_ci", "h_ransac_auc@5", "h_dlt_auc@1",
                        "h_dlt_auc@3", "h_dlt_auc@5", "note"],
    # the ETH local feature benchmark's columns (evaluation.reconstruction.ETH_COLUMNS); num_dense_points is added
    # when a result has it (a CUDA build of pycolmap)
    "reconstruction": ID + ["num_images", "num_registered", "num_points3D", "num_observations", "mean_track_length",
                            "mean_observations_per_image", "mean_reprojection_error", "num_verified_pairs",
                            "num_inlier_matches", "mean_num_keypoints"],
    "localization": ID + ["num_queries", "num_db", "localized", "recall@1", "recall@1_ci", "recall@2", "recall@2_ci", "recall@3",
                          "recall@3_ci", "thresholds", "median_t_error", "median_R_error", "unit", "retrieval", "vs_sift",
                          "note"],
    "shape": ID + ["num_items", "focal_err_guess", "focal_err", "shift_err_none", "shift_err", "absrel_before",
                   "absrel_after", "points_err_before", "points_err_after"],
}
KINDS = tuple(COLUMNS)
Curves = dict[tuple[str, str], tuple[list, list]]  # (method, test set) -> (thresholds px, MMA)


def flatten(d: dict[str, Any], prefix: str = "", depth: int = 1) -> dict[str, Any]:
    """Scalars of ``d`` with nested dicts (up to ``depth`` levels) joined by ``.``; lists are left out."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth > 0:
            out.update(flatten(value, f"{name}.", depth - 1))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[name] = value
    return out


def kind_of(result: dict[str, Any]) -> str | None:
    """Which table an evaluation JSON belongs to (None: not an evaluation result)."""
    if "auc@5" in result:
        return "relpose"
    if "recall@1" in result and "num_queries" in result:
        return "localization"
    if isinstance(result.get("overall"), dict) and "mma_score" in result["overall"]:
        return "homography"
    if "num_registered" in result and "num_images" in result:
        return "reconstruction"
    if isinstance(result.get("summary"), dict) and "absrel_after" in result["summary"]:
        return "shape"
    return None


def _intervals(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with every ``<score>_ci`` pair shown as ``[lo, hi]`` (one decimal) and the few-pairs note."""
    out = {k: (f"[{v[0]:.1f}, {v[1]:.1f}]" if k.endswith("_ci") and isinstance(v, (list, tuple)) else v) for k, v in row.items()}
    notes = []
    if row.get("few_pairs"):
        n, what = (row["num_queries"], "queries") if "num_queries" in row else (row.get("num_pairs"), "pairs")
        notes.append(f"only {n} {what} (< 10)")
    if row.get("loose"):
        notes.append(row["loose"])
    out["note"] = "; ".join(notes) or None
    return out


# the SIFT reference of each family's protocol (results/eval/sift/<run>/), first found wins
REFERENCE = {"loftr": ("ratio",), "posfeat": ("mnn", "ratio")}
# the score each table's comparison column describes
COMPARED = {"relpose": "auc@10", "localization": "recall@1"}


def _reference(path: Path, available: set[Path]) -> Path | None:
    family, testset = path.parts[-3], path.name
    for run in REFERENCE.get(family, ()):
        candidate = path.parents[2] / "sift" / run / testset
        if candidate in available:
            return candidate
    return None


def _compare(kind: str, a: dict[str, Any], b: dict[str, Any]) -> str | None:
    from matchforge.evaluation.localization import compare as compare_localization
    from matchforge.evaluation.relpose import compare as compare_relpose
    from matchforge.evaluation.stats import describe

    found = (compare_relpose if kind == "relpose" else compare_localization)(a, b)
    return describe(found[COMPARED[kind]]) if found else None


def eval_rows(path: Path, available: set[Path] = frozenset()) -> tuple[str | None, list[dict[str, Any]]]:
    """Rows of one ``results/eval/{family}/{run}/{testset}.json`` (two for a fine-tuned run); ``available`` are the
    other result files, among which the SIFT reference of the same test set is looked up for ``vs_sift``."""
    family, run, testset = path.parts[-3], path.parts[-2], path.stem
    result = json.loads(path.read_text())
    kind = kind_of(result)
    ident = {"family": family, "run": run, "method": result.get("label") or f"{family}/{run}", "testset": testset}
    if kind == "homography":
        return kind, [_intervals({**result["overall"], "thresholds": result.get("thresholds", []), **ident})]
    if kind == "shape":
        return kind, [{**ident, "num_items": result.get("num_items"),
                       **{k: v["mean"] for k, v in result["summary"].items() if isinstance(v, dict) and "mean" in v}}]
    reference = _reference(path, set(available)) if kind in COMPARED else None
    sift = json.loads(reference.read_text()) if reference else None
    if kind == "localization":
        thresholds = "; ".join(v for k, v in result.items() if k.startswith("threshold@"))
        row = _intervals({**result, **ident, "thresholds": thresholds or result.get("note", "")})
        row["vs_sift"] = _compare(kind, sift, result) if sift else None
        rows = [row]
        if isinstance(result.get("oracle"), dict):  # the same matcher with the ground truth's covisibility: an upper bound
            rows.append(_intervals({**result["oracle"], **ident, "run": f"{run} (oracle retrieval)",
                                    "method": f"{ident['method']} (oracle retrieval)", "thresholds": row["thresholds"]}))
        return kind, rows
    rows = []
    if kind == "relpose" and isinstance(result.get("before"), dict):  # initial weights, scored on the same pairs
        before = _intervals({**result["before"], **ident, "run": f"{run} (before)", "method": f"{ident['method']} (before)"})
        before["vs_sift"] = _compare(kind, sift, result["before"]) if sift and "pairs" in result["before"] else None
        rows.append(before)
    after = _intervals({**result, **ident})
    if kind == "relpose":
        if result.get("vs_before"):
            from matchforge.evaluation.stats import describe

            after["vs_before"] = describe(result["vs_before"]["auc@10"])
        after["vs_sift"] = _compare(kind, sift, result) if sift else None
    rows.append(after)
    return kind, rows


def eval_tables(paths: Iterable[Path]) -> tuple[dict[str, pd.DataFrame], Curves]:
    """One table per kind, and the MMA curves of the homography results (each file is read once)."""
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    curves: Curves = {}
    paths = sorted(paths)
    for path in paths:
        kind, found = eval_rows(path, set(paths))
        if kind is not None:
            rows[kind] += found
        if kind == "homography":
            row = found[0]
            curves[(row["method"], row["testset"])] = (row.get("thresholds", []), row.get("mma", []))
    optional = {"reconstruction": ["num_dense_points"]}  # columns that only some machines produce
    return {kind: pd.DataFrame(rows[kind]).reindex(columns=COLUMNS[kind] + [c for c in optional.get(kind, [])
                                                                          if any(c in r for r in rows[kind])])
            for kind in KINDS}, curves


def scene_table(files: Iterable[Path]) -> pd.DataFrame:
    """One row per scene: SfM stats (or, without SfM, the photos used), depth QA and the shape step's summary."""
    by_scene: dict[str, dict[str, Path]] = {}
    for p in files:
        if p.name in ("stats.json", "inputs.json", "qa.json", "shape.json") and p.parent.name in ("sfm", "depth"):
            by_scene.setdefault(p.parents[1].name, {})[f"{p.parent.name}/{p.name}"] = p
    rows = []
    for scene, found in sorted(by_scene.items()):
        if "sfm/stats.json" not in found and "depth/inputs.json" not in found:
            continue
        row: dict[str, Any] = {"scene": scene}
        if "sfm/stats.json" in found:
            stats = json.loads(found["sfm/stats.json"].read_text())
            row.update({k: stats.get(k) for k in ("num_images", "num_registered", "num_points3D",
                                                  "mean_reprojection_error", "mean_track_length", "seconds")})
            row["num_skipped"] = len(stats.get("skipped", []))
        else:  # single_images: no SfM
            inputs = json.loads(found["depth/inputs.json"].read_text())
            row.update(num_images=inputs["num_images"] + len(inputs["skipped"]), num_skipped=len(inputs["skipped"]))
        if "depth/qa.json" in found:
            qa = {k: v for k, v in json.loads(found["depth/qa.json"].read_text()).items() if k not in ("scene", "images")}
            row.update({f"depth.{k}": v for k, v in flatten(qa).items()})
        if "depth/shape.json" in found:
            row.update({f"shape.{k}": v for k, v in json.loads(found["depth/shape.json"].read_text())["summary"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _method(table: pd.DataFrame) -> pd.Series:
    return table["method"]


def _errors(rows: pd.DataFrame, keys: list[str]) -> Any:
    """(2, methods, len(keys)) asymmetric error-bar lengths from ``[lo, hi]`` interval strings (0 where none)."""
    import numpy as np

    err = np.zeros((len(keys), 2, len(rows)))
    for k, key in enumerate(keys):
        for r, (value, ci) in enumerate(zip(rows[key], rows.get(f"{key}_ci", [None] * len(rows)))):
            if isinstance(ci, str) and ci.startswith("["):
                lo, hi = (float(x) for x in ci.strip("[]").split(","))
                err[k, :, r] = [max(value - lo, 0.0), max(hi - value, 0.0)]
    return err


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set_axis_off()


# shape panel: metric -> (column without the model, column with it)
SHAPE_METRICS = {"focal error": ("focal_err_guess", "focal_err"), "shift error": ("shift_err_none", "shift_err"),
                 "depth AbsRel": ("absrel_before", "absrel_after"), "point error": ("points_err_before", "points_err_after")}


def plot_kind(kind: str, table: pd.DataFrame, path: Path, curves: Curves) -> None:
    """The figure of one kind: one panel per test set, methods side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    testsets = list(dict.fromkeys(table["testset"])) if len(table) else []
    # bar panels carry the method names on their y axis: each panel is wide enough for the longest one
    label_chars = max((len(m) for m in _method(table)), default=0) if kind != "homography" and len(table) else 0
    width = max(4.2, 2.8 + 0.075 * label_chars)
    fig, axes = plt.subplots(1, max(len(testsets), 1), figsize=(width * max(len(testsets), 1), 4.2), squeeze=False)
    if not testsets:
        _empty(axes[0, 0], f"no {kind} results")
    for ax, ts in zip(axes[0], testsets):
        rows = table[table["testset"] == ts].set_index(_method(table[table["testset"] == ts]))
        if kind == "relpose":
            keys = ["auc@5", "auc@10", "auc@20"]
            rows[keys].plot.barh(ax=ax, legend=False, xerr=_errors(rows, keys), capsize=2)
            ax.set_xlabel("pose AUC (%), 95 % intervals")
            ax.set_xlim(0, 100)
        elif kind == "homography":
            for method in rows.index:
                thresholds, mma = curves.get((method, ts), ([], []))
                ax.plot(thresholds, mma, marker=".", label=method)
            ax.set_xlabel("threshold (px)")
            ax.set_ylabel("MMA (%)")
            ax.set_ylim(0, 100)
            ax.legend(fontsize=8)
        elif kind == "localization":
            keys = ["recall@1", "recall@2", "recall@3"]
            rows[keys].plot.barh(ax=ax, legend=False, xerr=_errors(rows, keys), capsize=2)
            ax.set_xlabel("queries localized within (t, R) (%), 95 % intervals")
            ax.set_xlim(0, 100)
        elif kind == "reconstruction":
            (rows["num_registered"] / rows["num_images"] * 100).plot.barh(ax=ax)
            ax.set_xlabel("registered images (%)")
            ax.set_xlim(0, 100)
        else:  # every metric of the table, without the model (initial guess / no shift / raw depth) and with it
            bars = pd.DataFrame({f"{run}: {when}": [rows.loc[run, c] for c in cols]
                                 for run in rows.index for when, cols in zip(("without", "with the model"), zip(*SHAPE_METRICS.values()))},
                                index=list(SHAPE_METRICS))
            bars.plot.barh(ax=ax, legend=False)
            ax.set_xlabel("error (lower is better)")
        n, what = ((rows["num_pairs"].max(), "pairs") if "num_pairs" in rows else
                   (rows["num_queries"].max(), "queries") if "num_queries" in rows else (float("nan"), ""))
        ax.set_title(ts if pd.isna(n) else f"{ts}\n{int(n)} {what}" + (" (< 10: wide intervals)" if n < 10 else ""))
    fig.suptitle(f"matchforge: {kind}", x=0.02, ha="left")
    if kind in ("relpose", "localization", "shape") and testsets:  # one legend for all panels, above them
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper right", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    save_figure(fig, path, dpi=110, bbox_inches="tight")


def main(inputs: Iterable[str | Path], out: str | Path) -> dict[str, pd.DataFrame]:
    """Write ``scenes.csv`` and ``<kind>.csv``/``.png`` for every kind into ``out`` from the given result files."""
    files = [Path(p) for p in inputs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    evals = [p for p in files if p.suffix == ".json" and len(p.parts) >= 4 and p.parts[-4] == "eval"]
    per_kind, curves = eval_tables(evals)
    tables = {"scenes": scene_table(files), **per_kind}
    tables["scenes"].to_csv(out / "scenes.csv", index=False)
    for kind in KINDS:
        tables[kind].to_csv(out / f"{kind}.csv", index=False)
        plot_kind(kind, tables[kind], out / f"{kind}.png", curves)
    with pd.option_context("display.width", 200, "display.max_columns", 14, "display.precision", 3):
        for name, table in tables.items():
            print(f"--- {name}\n" + (table.to_string(index=False) if len(table) else "(none)"))
    return tables


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path,
                        help="result files: results/eval/*/*/*.json, results/<scene>/sfm/stats.json, depth/qa.json, ...")
    parser.add_argument("--out", type=Path, default=Path("results/summary"), help="where the tables and figures go")


def run(args: argparse.Namespace) -> None:
    main(args.inputs, args.out)
