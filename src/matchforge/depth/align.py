"""``matchforge align-depth``: raw depth -> depth in SfM units -> MegaDepth H5 files.

Per image, by the raw map's kind: ``disparity`` (relative model) is fitted as ``1/z ~ a*d + b`` with
``a > 0``; ``metric`` gets one scale; ``sfm`` (sparse backend) is already in SfM units. Fits use the
SfM points the image observes, except the held-out ones (``align.holdout_percent``, the same points for
every image), which the QA stage uses to measure the result. Poor fits (too few points, residual above
``max_abs_rel``, too few inliers) follow ``align.on_poor_fit``: ``invalid`` writes an all-zero map,
``exclude`` writes no H5 and lists the image under ``excluded`` in the report (the scene-info stage leaves
it out), ``keep`` writes it anyway and flags it.

Writes ``<h5_dir>/{stem}.h5`` and a JSON report (per image: fit, status; lists ``excluded``, ``invalid``,
``oversize_skipped``).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from matchforge.conf import load_conf
from matchforge.depth.config import DepthH5
from matchforge.depth.common import load_sfm, depth_options
from matchforge.depth.fit import Fit, apply_fit, fit_inverse_affine, fit_scale, holdout_mask, sample_nearest
from matchforge.io.depth import check_size, write_depth
from matchforge.depth.rawpng import read_raw
from matchforge.errors import MatchforgeError
from matchforge.io.write import write_json

log = logging.getLogger(__name__)


def align_map(raw: np.ndarray, kind: str, xy: np.ndarray, z: np.ndarray, conf: Mapping[str, Any]) -> tuple[np.ndarray, Fit]:
    """Depth in SfM units (0 = invalid) from one raw map and the SfM points used for fitting.

    ``xy``: (N, 2) COLMAP pixel coordinates, ``z``: (N,) SfM depths of those points in this camera.
    """
    samples = sample_nearest(raw, xy)
    if kind == "disparity":
        fit = fit_inverse_affine(samples, z, conf)
    elif kind == "metric":
        fit = fit_scale(samples, z, conf)
    else:
        n = int(np.isfinite(samples).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(samples / z - 1)
        abs_rel = float(np.nanmedian(rel)) if n else float("nan")
        fit = Fit("none", 1.0, 0.0, n, n, abs_rel, n >= int(conf["min_points"]),
                  "" if n >= int(conf["min_points"]) else f"too few points ({n})")
    if not (np.isfinite(fit.a) and fit.a > 0):
        return np.zeros(raw.shape, np.float32), fit
    z_max = float(np.nanmax(z)) if len(z) else 0.0
    return apply_fit(raw, fit, z_max, float(conf["max_depth_ratio"]) if fit.model != "none" else 0.0), fit


def main(conf: Mapping[str, Any], sfm_dir: str | Path, raw_dir: str | Path, h5_dir: str | Path,
         report_path: str | Path, scene: str | None = None) -> dict[str, Any]:
    """Align every raw map of the scene in ``sfm_dir`` and write H5 files and the report; returns the report."""
    conf = depth_options(conf)
    aconf, hconf = conf["align"], conf["h5"]
    h5 = DepthH5.of(hconf, "depth.h5")  # parsed once for every map written
    model = load_sfm(sfm_dir, scene)
    raw_dir, h5_dir = Path(raw_dir), Path(h5_dir)
    h5_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    images: dict[str, Any] = {}
    excluded, invalid, oversize = [], [], []
    kinds = set()
    for name, view in tqdm(model.views.items(), desc=f"align {scene or ''}", unit="img"):
        raw_path = raw_dir / f"{view.stem}.png"
        raw, meta = read_raw(raw_path)
        kinds.add(meta["kind"])
        if raw.shape != (view.height, view.width):
            raise MatchforgeError(f"raw depth is {raw.shape[1]}x{raw.shape[0]} but the image is "
                                  f"{view.width}x{view.height}", scene=scene, path=raw_path,
                                  fix="rerun the depth_predict rule for this scene (delete results/<scene>/depth/raw)")
        z = model.camera_points(view)[:, 2]
        fit_sel = ~holdout_mask(view.point_ids, float(aconf["holdout_percent"])) & (z > 0)
        depth, fit = align_map(raw, meta["kind"], view.xy[fit_sel], z[fit_sel], aconf)
        entry: dict[str, Any] = {"name": name, "kind": meta["kind"], "fit": fit.to_dict(), "status": "ok"}
        if not fit.ok:
            policy = aconf["on_poor_fit"]
            log.warning("%s: poor depth fit (%s) -> %s", name, fit.reason, policy)
            entry["status"] = {"invalid": "invalid", "exclude": "excluded", "keep": "kept_poor"}[policy]
            if policy == "invalid":
                depth = np.zeros_like(depth)
                invalid.append(view.stem)
            elif policy == "exclude":
                excluded.append(view.stem)
                images[view.stem] = entry
                continue
        out = h5_dir / f"{view.stem}.h5"
        if not check_size(depth.shape, h5, scene=scene, path=out):
            entry["status"] = "oversize_skipped"
            oversize.append(view.stem)
            images[view.stem] = entry
            continue
        write_depth(out, depth, h5, units="sfm", kind=meta["kind"], fit_model=fit.model, a=fit.a, b=fit.b)
        entry["valid_fraction"] = float((depth > 0).mean())
        images[view.stem] = entry
    report = {"scene": scene, "kinds": sorted(kinds), "num_images": len(images),
              "num_ok": sum(e["status"] == "ok" for e in images.values()),
              "excluded": excluded, "invalid": invalid, "oversize_skipped": oversize,
              "options": {"align": aconf, "h5": hconf},
              "seconds": round(time.perf_counter() - t0, 3), "images": images}
    Path(report_path).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(report_path), report, indent=1)
    log.info("aligned %d images (%d ok, %d invalid, %d excluded, %d oversize) in %.1fs", len(images),
             report["num_ok"], len(invalid), len(excluded), len(oversize), report["seconds"])
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sfm", required=True, type=Path, help="SfM folder with sparse/")
    parser.add_argument("--raw", required=True, type=Path, help="folder of raw depth PNGs (matchforge depth)")
    parser.add_argument("--h5", required=True, type=Path, help="output folder for {stem}.h5")
    parser.add_argument("--report", required=True, type=Path, help="output JSON: fits and rejected images")
    parser.add_argument("--scene", default=None)
    parser.add_argument("--conf", default=None, help="depth options: inline JSON or a YAML file")


def run(args: argparse.Namespace) -> None:
    main(load_conf(args.conf), args.sfm, args.raw, args.h5, args.report, scene=args.scene)
