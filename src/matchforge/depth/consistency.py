"""``matchforge depth-consistency``: keep only the depth that other views confirm (multi-view consistency).

LoFTR learns whatever its ground-truth matches say, and they come from depth. A monocular prediction can
be right at the SfM points it was aligned to and wrong between them (a wall bent the wrong way, a person
in front of the facade at the facade's depth); a sparse map can carry an outlier point. MegaDepth filtered
its MVS depth by consistency across views; this stage does the same for every backend.

For each image ``i`` and each of its ``top_k`` most covisible images ``j`` (most shared SfM points), every
valid pixel of ``i`` is unprojected with its depth (pixel centre, world->camera poses, SfM units) and
projected into ``j``. Where it lands inside ``j`` on a pixel with valid depth ``d_j`` and in front of
the camera, its depth in ``j``'s frame ``z`` is compared with ``d_j``:

- ``|z - d_j| <= rel_threshold * d_j``: **agrees**;
- ``z > (1 + rel_threshold) * d_j``: behind ``j``'s surface: **occluded** in ``j``, no vote;
- ``z < (1 - rel_threshold) * d_j``: in front of ``j``'s surface, where ``j`` sees free space: no vote for it.

Out-of-view pixels and pixels landing on invalid depth give no vote either. A pixel is kept when at least
``min_views`` images agree; every other pixel is set invalid (0). The neighbours' unfiltered maps are used,
so the result does not depend on the order of images.

Writes the filtered maps as ``<h5_dir>/{stem}.h5`` (what training reads) and ``consistency.json``:
``{"images": {stem: {"retained", "valid_before", "valid_after", "neighbours"}}, "scene": {...}}`` where
``valid_*`` are shares of all pixels and ``retained = valid_after / valid_before``.
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
from matchforge.errors import MatchforgeError
from matchforge.io.colmap import Scene, View
from matchforge.io.depth import read_depth, write_depth
from matchforge.io.write import write_json

log = logging.getLogger(__name__)


def covisible_neighbours(scene: Scene, top_k: int) -> dict[str, list[str]]:
    """For every image, up to ``top_k`` other images sharing the most SfM points with it (most first)."""
    names = list(scene.views)
    ids = [set(scene.views[n].point_ids.tolist()) for n in names]
    out = {}
    for a, name in enumerate(names):
        shared = [(len(ids[a] & ids[b]), names[b]) for b in range(len(names)) if b != a]
        shared = sorted((s for s in shared if s[0] > 0), key=lambda s: (-s[0], s[1]))
        out[name] = [n for _, n in shared[:top_k]]
    return out


def _affine(M: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> list[np.ndarray]:
    """Rows of ``M[:, :3] @ [x, y, z] + M[:, 3]`` for a (3, 4) ``M``, row by row: for 3 x N products this is several
    times faster than a BLAS call, whose threads only add overhead here."""
    return [M[r, 0] * x + M[r, 1] * y + M[r, 2] * z + M[r, 3] for r in range(3)]


def filter_depth(depth: np.ndarray, view: View, neighbours: list[tuple[np.ndarray, View]],
                 rel_threshold: float, min_views: int) -> np.ndarray:
    """``depth`` with every pixel that fewer than ``min_views`` neighbours confirm set to 0 (module docstring)."""
    rows, cols = np.nonzero(depth > 0)
    # float32 throughout: pixel coordinates below 1e4 and a relative test at a few per cent need no more, and
    # the filter is memory-bound
    d = depth[rows, cols].astype(np.float32)
    Ki = np.linalg.inv(view.K).astype(np.float32)  # PINHOLE: no skew
    # pixel centres (COLMAP convention) -> camera ray times depth -> world
    xc = ((cols.astype(np.float32) + 0.5) * Ki[0, 0] + Ki[0, 2]) * d
    yc = ((rows.astype(np.float32) + 0.5) * Ki[1, 1] + Ki[1, 2]) * d
    world = _affine(np.linalg.inv(view.T_cw)[:3].astype(np.float32), xc, yc, d)
    count = np.zeros(len(d), np.int32)
    for depth_j, view_j in neighbours:
        px, py, z = _affine((view_j.K @ view_j.T_cw[:3]).astype(np.float32), *world)  # z: the depth in camera j
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.float32(1) / z
            u = px * inv
            v = py * inv
        idx = np.flatnonzero((z > 1e-9) & (u >= 0) & (u < view_j.width) & (v >= 0) & (v < view_j.height))
        d_j = depth_j[v[idx].astype(np.int32), u[idx].astype(np.int32)]  # non-negative: truncation = floor
        agree = (d_j > 0) & (np.abs(z[idx] - d_j) <= rel_threshold * d_j)
        count[idx[agree]] += 1
    out = np.zeros(depth.shape, np.float32)
    keep = count >= min_views
    out[rows[keep], cols[keep]] = depth[rows[keep], cols[keep]]
    return out


def main(conf: Mapping[str, Any], sfm_dir: str | Path, aligned_dir: str | Path, h5_dir: str | Path,
         report_path: str | Path, scene: str | None = None) -> dict[str, Any]:
    """Filter every aligned depth map of the scene in ``sfm_dir``; writes ``h5_dir`` and the report."""
    conf = depth_options(conf)
    cconf, hconf = conf["consistency"], conf["h5"]
    h5 = DepthH5.of(hconf, "depth.h5")  # parsed once for every map written
    model = load_sfm(sfm_dir, scene)
    aligned_dir, h5_dir = Path(aligned_dir), Path(h5_dir)
    h5_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    present = {n: aligned_dir / f"{v.stem}.h5" for n, v in model.views.items() if (aligned_dir / f"{v.stem}.h5").is_file()}
    if not present:
        raise MatchforgeError("no aligned depth maps", scene=scene, path=aligned_dir,
                              fix="run the depth_align rule for this scene first")
    neighbours = covisible_neighbours(model, int(cconf["top_k"]))
    cache: dict[str, np.ndarray] = {}

    def depth_of(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = read_depth(present[name], scene=scene)
        return cache[name]

    images: dict[str, Any] = {}
    for name in tqdm(present, desc=f"consistency {scene or ''}", unit="img"):
        view = model.views[name]
        depth = depth_of(name)
        others = [(depth_of(n), model.views[n]) for n in neighbours[name] if n in present]
        before = float((depth > 0).mean())
        if cconf["enabled"]:
            out = filter_depth(depth, view, others, float(cconf["rel_threshold"]), int(cconf["min_views"]))
        else:
            out = depth
        after = float((out > 0).mean())
        write_depth(h5_dir / f"{view.stem}.h5", out, h5, units="sfm", consistency_filtered=bool(cconf["enabled"]))
        images[view.stem] = {"retained": after / before if before > 0 else 0.0, "valid_before": before,
                             "valid_after": after, "neighbours": [model.views[n].stem for n in neighbours[name]]}
        # neighbours are re-read from the cache while they are someone's neighbour; keep memory bounded
        if len(cache) > 4 * max(1, int(cconf["top_k"])):
            cache.pop(next(iter(cache)))
    before = float(np.mean([e["valid_before"] for e in images.values()]))
    after = float(np.mean([e["valid_after"] for e in images.values()]))
    report = {"images": images,
              "scene": {"scene": scene, "enabled": bool(cconf["enabled"]), "num_images": len(images),
                        "retained": after / before if before > 0 else 0.0, "valid_before": before, "valid_after": after,
                        "retained_median_of_images": float(np.median([e["retained"] for e in images.values()])),
                        "options": cconf, "seconds": round(time.perf_counter() - t0, 3)}}
    empty = [s for s, e in images.items() if e["valid_after"] == 0]
    if empty:
        log.warning("%s: %d of %d depth maps keep no pixel after the consistency filter (%s): no view confirms their "
                    "depth, so they supervise nothing", scene, len(empty), len(images), ", ".join(empty[:5]))
    write_json(report_path, report)
    log.info("consistency filter of %d images: %.1f %% of valid pixels retained (%.1f %% -> %.1f %% of all pixels) in %.1f s",
             len(images), 100 * report["scene"]["retained"], 100 * before, 100 * after, report["scene"]["seconds"])
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sfm", required=True, type=Path, help="SfM folder with sparse/")
    parser.add_argument("--aligned", required=True, type=Path, help="folder of aligned depth H5 (matchforge align-depth)")
    parser.add_argument("--h5", required=True, type=Path, help="output folder for the filtered {stem}.h5")
    parser.add_argument("--report", required=True, type=Path, help="output JSON (consistency.json)")
    parser.add_argument("--scene", default=None)
    parser.add_argument("--conf", default=None, help="depth options: inline JSON or a YAML file")


def run(args: argparse.Namespace) -> None:
    main(load_conf(args.conf), args.sfm, args.aligned, args.h5, args.report, scene=args.scene)
