"""``matchforge depth-shape``: focal length and 3D shape of every raw depth map of a scene, from a trained
shift/focal point-cloud model (LeReS recovery, :func:`matchforge.shiftfocal.recover.recover_shape`).

This is the depth stage's optional last step (``depth.shape.run``). It is what a scene *without SfM*
(``single_images: true``: unrelated photos, one camera each, no poses) gets instead of alignment to the
SfM scale: per photo, a focal length in pixels and a point cloud up to scale. On a scene *with* SfM it
runs too and measures the recovered focal against the SfM focal.

Input per image: ``raw/{stem}.png`` (see :mod:`matchforge.depth.rawpng`). Relative models store
disparity; it is inverted to depth (``1 / d``) before recovery, which is then only approximately the
affine-invariant depth LeReS assumes. Metric and SfM-unit maps are used as they are (sparse ones too:
the network sees whatever points are valid).

Outputs (``out_json`` = ``results/{scene}/depth/shape.json``, ``out_dir`` = ``results/{scene}/depth/shape/``):

- ``shape.json``: per image ``focal_px`` (recovered), ``focal_guess_px`` (60-degree guess), ``vfov_deg``,
  ``shift`` (in the normalised depth ``(d - min + 0.5) / p98``), the 3x3 ``K`` (principal point at the
  image centre) and, when the SfM model is given, ``focal_sfm_px`` with ``focal_err = |f / f_sfm - 1|``
  and ``focal_err_guess``; a ``summary`` of those;
- ``shape/{stem}.npz``: ``depth`` (recovered, float32, unitless up to scale, 0 = invalid) and ``K``;
- ``shape/{stem}.ply``: the recovered point cloud (at most ``ply_points`` points, coloured by the photo);
- ``shape.png`` (``out_plot``): recovered vs guessed focal (or field of view) per image.
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
from matchforge.depth.common import depth_options
from matchforge.depth.rawpng import read_raw
from matchforge.errors import MatchforgeError
from matchforge.io.images import read_image
from matchforge.io.write import write_json, save_figure

log = logging.getLogger(__name__)


def _colours(images_dir: Path | None, stem: str, shape: tuple[int, int]) -> np.ndarray | None:
    if images_dir is None:
        return None
    for path in sorted(images_dir.glob(f"{stem}.*")):
        rgb = read_image(path, required=False)
        if rgb is not None and rgb.shape[:2] == shape:
            return rgb
    return None


def _sfm_focals(sparse: Path | None) -> dict[str, float]:
    """Stem -> fy (pixels) of the undistorted PINHOLE model, or {} without a model."""
    if sparse is None:
        return {}
    from matchforge.io.colmap import load_scene

    return {view.stem: float(view.K[1, 1]) for view in load_scene(sparse).views.values()}


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Bars per image: focal error of the guess and of the recovery (with SfM), else the two fields of view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows) + 2), 3.8))
    if rows and all("focal_err" in r for r in rows):
        a, b, label = [r["focal_err_guess"] for r in rows], [r["focal_err"] for r in rows], "|f / f_SfM - 1|"
    else:
        a, b, label = [r["vfov_guess_deg"] for r in rows], [r["vfov_deg"] for r in rows], "vertical field of view (deg)"
    ax.bar(x - 0.2, a, 0.4, label="60° guess")
    ax.bar(x + 0.2, b, 0.4, label="recovered")
    ax.set_xticks(x, [r["stem"] for r in rows], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel(label)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def main(conf: Mapping[str, Any], raw_dir: str | Path, model_dir: str | Path, out_json: str | Path,
         out_dir: str | Path, out_plot: str | Path | None = None, sparse: str | Path | None = None,
         images: str | Path | None = None, scene: str | None = None) -> dict[str, Any]:
    """Recover focal and shape for every ``raw_dir/*.png`` with the shift/focal run in ``model_dir``.

    ``conf`` is the depth section (``conf['shape']`` is used); ``sparse`` the scene's undistorted model
    (optional: adds the SfM focal and the errors); ``images`` a folder of the photos (optional: colours).
    """
    from matchforge.geometry.camera import depth_from_disparity
    from matchforge.shiftfocal.model import flush_denormals
    from matchforge.io.ply import write_ply
    from matchforge.shiftfocal.recover import load_model, recover_shape
    from matchforge.device import pick_device

    opts = depth_options(conf)["shape"]
    raw_dir, model_dir, out_dir = Path(raw_dir), Path(model_dir), Path(out_dir)
    raws = sorted(raw_dir.glob("*.png"))
    if not raws:
        raise MatchforgeError("no raw depth maps", scene=scene, path=raw_dir,
                              fix="run the depth_predict rule (matchforge depth) for this scene first")
    flush_denormals()
    device = pick_device(opts["device"])
    focal_model = load_model(model_dir / "focal.pt", device)
    shift_model = load_model(model_dir / "shift.pt", device)
    sfm_focal = _sfm_focals(Path(sparse) if sparse else None)
    images_dir = Path(images) if images else None
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, skipped = [], []
    t0 = time.perf_counter()
    for path in tqdm(raws, desc=f"shape {scene or ''}", unit="img"):
        values, meta = read_raw(path)
        if meta["kind"] == "disparity":
            depth = depth_from_disparity(values)
        else:  # metric or SfM units: NaN = invalid
            depth = np.where(np.isfinite(values) & (values > 0), values, 0.0).astype(np.float64)
        mask = depth > 0
        h, w = depth.shape
        try:
            rec = recover_shape(depth, focal_model, shift_model, mask, fov_deg=opts["fov_deg"], max_shift=opts["max_shift"],
                                num_points=opts["num_points"], alpha_range=tuple(opts["alpha_range"]))
        except MatchforgeError as err:
            skipped.append({"stem": path.stem, "reason": err.cause})
            log.warning("%s: %s", path.name, err.cause)
            continue
        K = rec.K
        np.savez_compressed(out_dir / f"{path.stem}.npz", depth=rec.depth.astype(np.float32), K=K)
        valid = rec.depth > 0
        points = rec.points()
        colours = _colours(images_dir, path.stem, (h, w))
        colours = None if colours is None else colours[valid]
        if len(points) > opts["ply_points"]:
            keep = np.sort(rng.choice(len(points), opts["ply_points"], replace=False))
            points, colours = points[keep], None if colours is None else colours[keep]
        write_ply(out_dir / f"{path.stem}.ply", points, colours)
        row: dict[str, Any] = {
            "stem": path.stem, "kind": meta["kind"], "width": w, "height": h, "valid": float(mask.mean()),
            "focal_px": rec.focal, "focal_guess_px": rec.focal0, "focal_step1_px": rec.focal1,
            "vfov_deg": rec.vfov_deg, "vfov_guess_deg": float(opts["fov_deg"]),
            "shift": rec.shift, "K": K.tolist(),
        }
        if path.stem in sfm_focal:
            f = sfm_focal[path.stem]
            row.update(focal_sfm_px=f, focal_err=abs(rec.focal / f - 1), focal_err_guess=abs(row["focal_guess_px"] / f - 1),
                       focal_err_step1=abs(rec.focal1 / f - 1))
        rows.append(row)
    if not rows:
        raise MatchforgeError(f"no depth map had enough valid pixels for shape recovery ({len(skipped)} skipped)",
                              scene=scene, path=raw_dir, fix="check the depth predictions (depth/preview/)")
    summary: dict[str, Any] = {"num_images": len(rows), "num_skipped": len(skipped),
                               "vfov_deg_median": float(np.median([r["vfov_deg"] for r in rows]))}
    if all("focal_err" in r for r in rows):
        for key in ("focal_err", "focal_err_step1", "focal_err_guess"):
            summary[f"{key}_median"] = float(np.median([r[key] for r in rows]))
    result = {"scene": scene, "model_dir": str(model_dir), "options": opts, "seconds": round(time.perf_counter() - t0, 2),
              "summary": summary, "images": rows, "skipped": skipped}
    write_json(Path(out_json), result, indent=1)
    if out_plot:
        plot(rows, Path(out_plot), f"{scene or raw_dir.parent.name}: focal from the shape model ({model_dir.name})")
    log.info("%s", json.dumps({"scene": scene, **summary}))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", required=True, type=Path, help="folder of raw depth PNGs (results/{scene}/depth/raw)")
    parser.add_argument("--model-dir", required=True, type=Path, help="shift/focal run folder with focal.pt and shift.pt")
    parser.add_argument("--out", required=True, type=Path, help="shape.json to write")
    parser.add_argument("--clouds", required=True, type=Path, help="folder for {stem}.npz and {stem}.ply")
    parser.add_argument("--plot", type=Path, default=None, help="shape.png to write")
    parser.add_argument("--sparse", type=Path, default=None, help="the scene's undistorted SfM model (adds the SfM focal)")
    parser.add_argument("--images", type=Path, default=None, help="photos whose stems match the raw maps (colours)")
    parser.add_argument("--scene", default=None, help="scene name (for messages)")
    parser.add_argument("--conf", default=None, help="depth options: inline JSON or a YAML file (depth.shape is used)")


def run(args: argparse.Namespace) -> None:
    main(load_conf(args.conf), args.raw, args.model_dir, args.out, args.clouds, args.plot, args.sparse,
         args.images, scene=args.scene)
