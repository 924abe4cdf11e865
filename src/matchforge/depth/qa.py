"""``matchforge depth-qa``: how good are a scene's depth H5 files, in the terms that matter for training.

Per image and per scene:

- ``coverage``: share of pixels with valid depth (> 0);
- ``holdout``: AbsRel ``|d/z - 1|`` (mean and median) and coverage at the held-out SfM points (never used
  by the fit). For the ``sparse`` backend the H5 contains those points themselves, so QA densifies again
  *without* them and measures the densified pixels instead;
- ``track_transfer_holdout`` (the headline): the track-transfer error (docs/depth.md) with only the held-out SfM
  points as sources, which the alignment never saw and (sparse backend) the densification of the measured
  map did not use either: the map is densified again without them, as for AbsRel. Over all points the
  measure is nearly circular for the sparse backend (its map holds the points themselves);
- ``track_transfer``: the same over every observed point (median px, share within 2 and 5 px), per image
  as the source and for the scene;
- ``consistency`` (with the consistency report): per image the share of valid pixels the multi-view
  consistency filter kept (``retained``) and the valid shares before and after;
- ``track_transfer_sfm_depth_reference``: the same with the SfM points' own depths, the best any depth map
  can reach (what remains is reprojection error carried between views);
- ``seed_recipe_baseline`` (optional): the same track-transfer error for the public recipe's depth
  (8-bit min-max disparity / 100, :mod:`matchforge.depth.seed_recipe`) built from the same raw maps.

Writes the JSON and a plot (error CDFs, per-image coverage and AbsRel).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from matchforge.conf import load_conf
from matchforge.depth.common import load_sfm, depth_options
from matchforge.depth.fit import holdout_mask, sample_nearest
from matchforge.io.depth import read_depth
from matchforge.depth.rawpng import read_raw
from matchforge.depth.seed_recipe import seed_recipe_depth
from matchforge.depth.sparse import densify
from matchforge.depth.transfer import depth_at_observations, summarize, track_transfer
from matchforge.io.write import write_json, save_figure

log = logging.getLogger(__name__)


def _abs_rel(pred: np.ndarray, z: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(pred) & (pred > 0) & (z > 0)
    if not ok.any():
        return {"n": int(len(z)), "coverage": 0.0 if len(z) else None, "abs_rel_mean": None, "abs_rel_median": None}
    rel = np.abs(pred[ok] / z[ok] - 1)
    return {"n": int(len(z)), "coverage": float(ok.mean()), "abs_rel_mean": float(rel.mean()),
            "abs_rel_median": float(np.median(rel))}


def main(conf: Mapping[str, Any], sfm_dir: str | Path, raw_dir: str | Path, h5_dir: str | Path,
         out_json: str | Path, plot_path: str | Path | None = None, scene: str | None = None,
         align_report: str | Path | None = None, consistency_report: str | Path | None = None) -> dict[str, Any]:
    """Measure the depth H5 files of one scene; writes ``out_json`` (+ ``plot_path``) and returns the dict.

    ``align_report``: the ``align-depth`` JSON; when given, each image also gets its fit and status, and
    the scene lists its poor fits with their reasons.
    """
    conf = depth_options(conf)
    model = load_sfm(sfm_dir, scene)
    raw_dir, h5_dir = Path(raw_dir), Path(h5_dir)
    t0 = time.perf_counter()
    depths: dict[str, np.ndarray] = {}
    held_out: dict[str, np.ndarray] = {}  # depth at the held-out observations only (0 elsewhere)
    seeds: dict[str, np.ndarray] = {}
    per_image: dict[str, dict[str, Any]] = {}
    pct = float(conf["align"]["holdout_percent"])
    for name, view in tqdm(model.views.items(), desc=f"qa {scene or ''}", unit="img"):
        h5 = h5_dir / f"{view.stem}.h5"
        if not h5.is_file():
            per_image[view.stem] = {"name": name, "h5": False}
            continue
        depth = read_depth(h5)
        depths[name] = depth_at_observations(depth, view.xy)  # keep only what track transfer needs
        z = model.camera_points(view)[:, 2]
        hold = holdout_mask(view.point_ids, pct) & (z > 0)
        raw, meta = read_raw(raw_dir / f"{view.stem}.png")
        if meta.get("backend", "sparse" if meta["kind"] == "sfm" else "") == "sparse":
            # the H5 holds the held-out points themselves: densify again without them
            fit = ~hold & (z > 0)
            redo = np.nan_to_num(densify(view.height, view.width, view.xy[fit], z[fit], conf["sparse"]), nan=0.0)
            holdout = _abs_rel(sample_nearest(redo, view.xy[hold]), z[hold])
            held_out[name] = np.where(hold, depth_at_observations(redo, view.xy), 0.0)
        else:
            holdout = _abs_rel(sample_nearest(depth, view.xy[hold]), z[hold])
            held_out[name] = np.where(hold, depths[name], 0.0)
        if conf["qa"]["seed_recipe_baseline"]:
            seeds[name] = depth_at_observations(seed_recipe_depth(raw, meta["kind"]), view.xy)
        per_image[view.stem] = {"name": name, "h5": True, "kind": meta["kind"],
                                "coverage": float((depth > 0).mean()), "holdout": holdout}
    transfer = track_transfer(model, depths)
    transfer_holdout = track_transfer(model, held_out).all()
    for name, err in transfer.errors.items():
        stem = model.views[name].stem
        per_image[stem]["track_transfer"] = summarize(err)
        per_image[stem]["track_transfer"]["n_no_depth"] = transfer.n_invalid[name]
    all_err = transfer.all()
    measured = [e for e in per_image.values() if e.get("h5")]

    def agg(key: str) -> float | None:
        vals = [e["holdout"][key] for e in measured if e["holdout"][key] is not None]
        return float(np.median(vals)) if vals else None

    result: dict[str, Any] = {
        "scene": scene,
        "num_images": len(model.views),
        "num_with_depth": len(measured),
        "coverage_mean": float(np.mean([e["coverage"] for e in measured])) if measured else None,
        "holdout_abs_rel_median_of_images": agg("abs_rel_median"),
        "holdout_abs_rel_mean_of_images": agg("abs_rel_mean"),
        "holdout_coverage_median_of_images": agg("coverage"),
        "track_transfer_holdout": summarize(transfer_holdout),
        "track_transfer": summarize(all_err),
    }
    # reference: the SfM points' own depths (the best any depth map can do on this measure)
    exact = {n: model.camera_points(model.views[n])[:, 2] for n in depths}
    result["track_transfer_sfm_depth_reference"] = summarize(track_transfer(model, exact).all())
    seed_err = None
    if seeds:
        seed_err = track_transfer(model, seeds).all()
        result["seed_recipe_baseline"] = {
            "what": "public recipe: 8-bit per-image min-max normalised disparity / 100, from the same raw maps",
            "track_transfer": summarize(seed_err)}
    if consistency_report:
        kept = json.loads(Path(consistency_report).read_text())
        for stem, entry in per_image.items():
            if stem in kept["images"]:
                entry["consistency"] = {k: kept["images"][stem][k] for k in ("retained", "valid_before", "valid_after")}
        result["consistency"] = {k: kept["scene"][k] for k in ("retained", "valid_before", "valid_after", "enabled")}
    if align_report:
        fits = json.loads(Path(align_report).read_text())["images"]
        for stem, entry in per_image.items():
            if stem in fits:
                entry["align_status"] = fits[stem]["status"]
                entry["fit"] = fits[stem]["fit"]
        result["poor_fits"] = {stem: f["fit"]["reason"] for stem, f in fits.items() if not f["fit"]["ok"]}
    result["seconds"] = round(time.perf_counter() - t0, 3)
    result["images"] = per_image
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(out_json), result, indent=1)
    log.info("track transfer at held-out points: %s; at all points: %s; seed recipe: %s", result["track_transfer_holdout"],
             result["track_transfer"], result.get("seed_recipe_baseline", {}).get("track_transfer"))
    if plot_path:
        plot(result, transfer_holdout, all_err, seed_err, plot_path)
    return result


def plot(result: Mapping[str, Any], held: np.ndarray, err: np.ndarray, seed_err: np.ndarray | None, path: str | Path) -> None:
    """Track-transfer error CDFs (held-out points, all points, the seed recipe), per-image coverage / held-out
    AbsRel, and per-image valid shares before and after the consistency filter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1, ax3) = plt.subplots(1, 3, figsize=(18, 4.8))
    for e, label in ((held, "held-out points (headline)"), (err, "all points"), (seed_err, "seed recipe (8-bit disparity/100)")):
        if e is None or len(e) == 0:
            continue
        s = np.sort(np.clip(e, 1e-3, 1e5))
        ax0.plot(s, np.arange(1, len(s) + 1) / len(s), label=f"{label}: median {np.median(e):.2f} px")
    for x in (2, 5):
        ax0.axvline(x, color="grey", ls=":", lw=1)
    ax0.set(xscale="log", xlabel="track-transfer error (px; behind the camera drawn at 1e5)", ylabel="share of transfers",
            title=f"{result['scene'] or ''} track transfer", ylim=(0, 1))
    ax0.legend(loc="lower right", fontsize=8)
    imgs = [(k, v) for k, v in result["images"].items() if v.get("h5")]
    x = np.arange(len(imgs))
    ax1.bar(x - 0.2, [v["coverage"] for _, v in imgs], 0.4, label="coverage (valid pixels)")
    ax1.bar(x + 0.2, [v["holdout"]["coverage"] or 0 for _, v in imgs], 0.4, label="held-out points with depth")
    ax1.set_xticks(x, [k[:12] for k, _ in imgs], rotation=60, fontsize=7)
    ax1.set(title="per image", ylim=(0, 1), ylabel="share")
    ax2 = ax1.twinx()
    rel = [v["holdout"]["abs_rel_median"] for _, v in imgs]
    ax2.plot(x, [r if r else np.nan for r in rel], "kd", label="held-out AbsRel (median)")
    ax2.set(yscale="log", ylabel="AbsRel")
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    kept = [v.get("consistency") for _, v in imgs]
    if any(kept):
        ax3.bar(x - 0.2, [k["valid_before"] if k else 0 for k in kept], 0.4, label="valid before filter", color="0.7")
        ax3.bar(x + 0.2, [k["valid_after"] if k else 0 for k in kept], 0.4, label="kept (multi-view consistent)")
        for xi, k in zip(x, kept):
            if k:
                ax3.text(xi, max(k["valid_before"], k["valid_after"]) + 0.01, f"{100 * k['retained']:.0f}%", ha="center", fontsize=7)
        ax3.set_xticks(x, [k[:12] for k, _ in imgs], rotation=60, fontsize=7)
        ax3.set(title=f"consistency filter: {100 * result['consistency']['retained']:.0f} % of valid pixels kept",
                ylabel="share of pixels", ylim=(0, 1))
        ax3.legend(fontsize=8, loc="upper right")
    else:
        ax3.set_axis_off()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=100)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sfm", required=True, type=Path, help="SfM folder with sparse/")
    parser.add_argument("--raw", required=True, type=Path, help="folder of raw depth PNGs")
    parser.add_argument("--h5", required=True, type=Path, help="folder of depth H5 files")
    parser.add_argument("--out", required=True, type=Path, help="output qa.json")
    parser.add_argument("--plot", default=None, type=Path, help="output plot (png)")
    parser.add_argument("--align-report", default=None, type=Path, help="align-depth JSON (adds fits and poor-fit reasons)")
    parser.add_argument("--consistency-report", default=None, type=Path, help="depth-consistency JSON (adds what the filter kept)")
    parser.add_argument("--scene", default=None)
    parser.add_argument("--conf", default=None, help="depth options: inline JSON or a YAML file")


def run(args: argparse.Namespace) -> None:
    main(load_conf(args.conf), args.sfm, args.raw, args.h5, args.out, args.plot, scene=args.scene,
         align_report=args.align_report, consistency_report=args.consistency_report)
