"""``matchforge shiftfocal-eval``: focal and shift recovery on held-out items of one generated source.

For each test item, a relative depth is simulated from the ground truth (a shift ``delta`` drawn in
LeReS's range, fixed by the seed), then recovered with :func:`recover_shape`. Reported per item and
on average:

- ``focal_err``: ``|f_pred / f_true - 1|`` (f_true = fy of the item), against ``focal_err_guess`` of
  the 60-degree guess and ``focal_err_step1`` after the first focal step;
- ``shift_err``: ``|delta_pred - delta_true|`` in the normalised depth of the input, against
  ``shift_err_none`` (no shift correction, ``delta = 0``);
- ``absrel_before`` / ``absrel_after``: AbsRel of the input / shift-corrected depth against the ground
  truth after a least-squares scale (no shift);
- ``points_err_before`` / ``points_err_after``: median ``|s P - P_gt| / |P_gt|`` of the unprojected
  cloud (60-degree guess, no shift / recovered focal and shift) after the best scale ``s``.

Writes ``<out>.json``, ``<out>.png`` and ``<out>_{before,after,gt}.ply`` (first test item).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from matchforge.conf import load_conf
from matchforge.errors import MatchforgeError
from matchforge.shiftfocal.config import ShiftFocalEval
from matchforge.geometry.camera import abs_rel, centred_intrinsics, scale_align, unproject
from matchforge.io.ply import write_ply
from matchforge.shiftfocal.model import flush_denormals
from matchforge.shiftfocal.recover import load_model, recover_shape
from matchforge.shiftfocal.sampling import distort_shift, list_items, shift_bounds
from matchforge.io.write import write_json, save_figure

log = logging.getLogger(__name__)



def affine_shift(depth_input: np.ndarray, gt: np.ndarray) -> float:
    """``b`` of the least-squares fit ``depth_input = a * gt + b``: the shift to subtract to get a depth ∝ gt."""
    A = np.stack([gt, np.ones_like(gt)], axis=1)
    (a, b), *_ = np.linalg.lstsq(A, depth_input, rcond=None)
    return float(b)


def points_error(depth: np.ndarray, focal: float, gt: np.ndarray, K_gt: np.ndarray, mask: np.ndarray) -> float:
    """Median relative 3D error of the cloud of ``depth`` (centred K with ``focal``) vs the true cloud, after the best scale."""
    h, w = depth.shape
    p = unproject(depth, centred_intrinsics(focal, h, w), mask)[0]
    q = unproject(gt, K_gt, mask)[0]
    s = float((p * q).sum() / max((p * p).sum(), 1e-12))
    return float(np.median(np.linalg.norm(s * p - q, axis=1) / np.linalg.norm(q, axis=1)))


def evaluate_item(depth: np.ndarray, K: np.ndarray, focal_model, shift_model, rng: np.random.Generator, conf: dict) -> tuple[dict, object]:
    mask = np.isfinite(depth) & (depth > 0)
    gt = depth.astype(np.float64)
    delta = float(rng.uniform(*shift_bounds(gt[mask])))
    d_in = distort_shift(gt, mask, delta)
    rec = recover_shape(d_in, focal_model, shift_model, mask, fov_deg=conf["fov_deg"], max_shift=conf["max_shift"],
                        num_points=conf["num_points"], alpha_range=tuple(conf["alpha_range"]))
    f_true = float(K[1, 1])
    delta_true = affine_shift(rec.depth_input[mask], gt[mask])
    both = mask & (rec.depth > 0)
    x_in, x_out, g = rec.depth_input[both], rec.depth[both], gt[both]
    res = {
        "focal_true": f_true, "focal_guess": rec.focal0, "focal_step1": rec.focal1, "focal_pred": rec.focal,
        "focal_err_guess": abs(rec.focal0 / f_true - 1), "focal_err_step1": abs(rec.focal1 / f_true - 1),
        "focal_err": abs(rec.focal / f_true - 1),
        "shift_true": delta_true, "shift_pred": rec.shift, "shift_err": abs(rec.shift - delta_true), "shift_err_none": abs(delta_true),
        "absrel_before": abs_rel(scale_align(x_in, g) * x_in, g), "absrel_after": abs_rel(scale_align(x_out, g) * x_out, g),
        "points_err_before": points_error(rec.depth_input, rec.focal0, gt, K, mask),
        "points_err_after": points_error(rec.depth, rec.focal, gt, K, both),
        "valid_after": float(both.sum() / mask.sum()),
    }
    return res, rec


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k.startswith(("focal_err", "shift_err", "absrel", "points_err"))]
    return {k: {"mean": float(np.mean([r[k] for r in rows])), "median": float(np.median([r[k] for r in rows]))} for k in keys}


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, (a, b), (la, lb), ttl in zip(
        axes,
        [("focal_err_guess", "focal_err"), ("shift_err_none", "shift_err"), ("absrel_before", "absrel_after")],
        [("60° guess", "recovered"), ("no shift", "recovered"), ("before", "after shift recovery")],
        ["|f/f_true - 1|", "|shift error| (normalised depth)", "depth AbsRel (scale-aligned)"],
    ):
        ax.bar(x - 0.2, [r[a] for r in rows], 0.4, label=la)
        ax.bar(x + 0.2, [r[b] for r in rows], 0.4, label=lb)
        ax.set_title(ttl)
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def main(conf: dict, model_dir: str | Path, data_dir: str | Path, out: str | Path) -> dict:
    """Evaluate the run in ``model_dir`` on the held-out ("test") items of ``data_dir`` (options: ``shiftfocal.eval``,
    :class:`~matchforge.shiftfocal.config.ShiftFocalEval`); ``out`` is the
    output path without suffix (``results/eval/shiftfocal/{run}/{testset}``)."""
    from matchforge.device import pick_device

    flush_denormals()
    conf = ShiftFocalEval.of(conf, "shiftfocal.eval").to_dict()
    split = "test"  # what shiftfocal.data.assign_splits calls the held-out items
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    items = list_items(data_dir, split)
    all_items = not items
    if all_items:  # e.g. a single-item source: every item is used, none was held out
        items = list_items(data_dir)
        log.warning("%s has no '%s' items: evaluating all %d items (only meaningful if the run did not train on them)",
                    data_dir, split, len(items))
    if not items:
        raise MatchforgeError("no items to evaluate", fix="regenerate the test set", path=data_dir)
    if conf["max_items"]:
        items = items[: conf["max_items"]]
    device = pick_device()
    focal_model = load_model(Path(model_dir) / "focal.pt", device)
    shift_model = load_model(Path(model_dir) / "shift.pt", device)
    rows = []
    for i, item in enumerate(tqdm(items, desc="shiftfocal-eval", disable=None)):
        depth, K, rgb = item.load()
        res, rec = evaluate_item(depth, K, focal_model, shift_model, np.random.default_rng([conf["seed"], i]), conf)
        rows.append({"name": item.name, "split": item.split, **res})
        if i == 0:
            mask = depth > 0
            h, w = depth.shape
            col = None if rgb is None else rgb[mask]
            write_ply(f"{out}_before.ply", unproject(rec.depth_input, centred_intrinsics(rec.focal0, h, w), mask)[0], col)
            valid = rec.depth > 0
            write_ply(f"{out}_after.ply", rec.points(), None if rgb is None else rgb[valid])
            write_ply(f"{out}_gt.ply", unproject(depth, K, mask)[0], col)
    result = {"model_dir": str(model_dir), "data": str(data_dir), "conf": conf, "num_items": len(rows),
              "split": "all" if all_items else split,
              "summary": summarise(rows), "items": rows}
    write_json(Path(f"{out}.json"), result, indent=1)
    plot(rows, Path(f"{out}.png"), f"{Path(model_dir).name} on {out.name} ({len(rows)} items)")
    s = result["summary"]
    log.info("focal err %.3f (60-deg guess %.3f); shift err %.3f (none %.3f); AbsRel %.3f -> %.3f",
             s["focal_err"]["mean"], s["focal_err_guess"]["mean"], s["shift_err"]["mean"], s["shift_err_none"]["mean"],
             s["absrel_before"]["mean"], s["absrel_after"]["mean"])
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, help="run folder with focal.pt and shift.pt")
    parser.add_argument("--data", required=True, help="a shiftfocal-data folder (its 'test' items are used)")
    parser.add_argument("--out", required=True, help="output path without suffix: writes .json, .png, _before/_after/_gt.ply")
    parser.add_argument("--conf", help="options of shiftfocal.eval as JSON or YAML: " + ", ".join(ShiftFocalEval.model_fields))


def run(args: argparse.Namespace) -> None:
    main(load_conf(args.conf), args.model_dir, args.data, args.out)
