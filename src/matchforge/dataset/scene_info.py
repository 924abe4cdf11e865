"""``matchforge scene-info``: MegaDepth scene-info files of one scene, one file per overlap bucket.

Writes into ``out_dir`` (``results/{scene}/scene_info/``):

- ``{scene}_{lo}_{hi}.npz`` per bucket: a **pickled dict** (not a zip archive), as LoFTR's own index
  files are, so the upstream loader (``np.load`` with pickles allowed, then ``del d['pair_infos']``) works; matchforge
  itself reads them with the numpy-only unpickler of :mod:`matchforge.io.safe`.
  Keys: ``image_paths``/``depth_paths`` (object arrays of str or None, relative to a dataset root:
  ``{scene}/images/{name}`` and ``{scene}/depth/{stem}.h5``), ``intrinsics`` (object array of 3x3
  float64 PINHOLE K at the undistorted size, pixels), ``poses`` (object array of 4x4 float64
  world->camera, SfM units), ``pair_infos`` (list of ``(int64[2] (i, j), overlap, float64[4] central
  match [x0, y0, x1, y1] or None)``, each unordered pair once with i < j, ``lo <= overlap < hi``).
  Images without a valid depth file are ``None`` in all four arrays (as in the official files), unless
  ``require_depth`` is false, where only their depth path is ``None``.
- ``d2net_extras.npz`` (a real ``np.savez``): image names, depth validity, points per image, the full
  asymmetric overlap matrix, scale ratios, angles and shared-point counts, for users who filter differently.
- ``stats.json``: images, valid depths, candidate pairs and pairs per bucket; ``overlap_hist.png``: the
  candidate pairs' overlap histogram with the buckets shaded.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from matchforge.conf import load_conf
from matchforge.dataset.covisibility import central_match, covisibility, first_observations
from matchforge.errors import MatchforgeError
from matchforge.conf import config_source
from matchforge.dataset.config import SceneInfoSection
from matchforge.io.depth import read_depth
from matchforge.io.colmap import View, load_scene
from matchforge.io.write import save_figure, write_bytes, write_json
from matchforge.loftr.config import LoFTRTrain

log = logging.getLogger(__name__)

LOFTR_RUN = LoFTRTrain()  # ground-truth counts as a run with the default options sees them


def bucket_stem(scene: str, lo: float, hi: float) -> str:
    """File stem of a bucket, in the official naming: ``0015`` + [0.1, 0.3) -> ``0015_0.1_0.3``."""
    return f"{scene}_{lo:g}_{hi:g}"


def bucket_stems(scene: str, conf: Mapping[str, Any]) -> list[str]:
    return [bucket_stem(scene, lo, hi) for lo, hi in conf["buckets"]]


def image_rel(scene: str, name: str) -> str:
    """Image path of a scene-info file, relative to a dataset root (train/ or test/)."""
    return f"{scene}/images/{name}"


def depth_rel(scene: str, name: str) -> str:
    """Depth path of a scene-info file, relative to a dataset root."""
    return f"{scene}/depth/{Path(name).stem}.h5"


def object_array(items: list[Any]) -> np.ndarray:
    """1-D object array of ``items`` (``np.array`` would turn a list of 3x3 arrays into (n, 3, 3))."""
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def save_scene_info(path: str | Path, info: Mapping[str, Any]) -> None:
    """Write a scene-info dict the way the official files are: ``pickle.dump`` of a dict."""
    write_bytes(path, pickle.dumps(dict(info), protocol=pickle.HIGHEST_PROTOCOL), "scene-info file")


def depth_status(path: Path, width: int, height: int, min_coverage: float) -> str:
    """'ok', or why the depth file at ``path`` cannot supervise the image (missing, wrong size, empty).

    A file that exists but does not read is not a reason to drop the photo quietly: it raises (see
    :func:`matchforge.io.depth.read_depth`), naming the command that rebuilds it."""
    if not path.is_file():
        return "missing"
    d = read_depth(path)
    if d.shape != (height, width):
        return f"size {d.shape[1]}x{d.shape[0]} != image {width}x{height}"
    coverage = float(np.mean(np.isfinite(d) & (d > 0)))
    if coverage <= 0 or coverage < min_coverage:
        return f"coverage {coverage:.4f} below {max(min_coverage, 0.0):g}"
    return "ok"


PAIR_COLUMNS = ["image0", "image1", "bucket", "overlap", "gt_coarse_matches", "valid0", "valid1"]


def valid_fraction(path: Path) -> float:
    """Share of pixels with valid (> 0) depth in a depth H5 (after the consistency filter in the workflow)."""
    return float((read_depth(path) > 0).mean())


def gt_counts(views: list[View], chosen: list[tuple[int, int, float]], images_dir: Path, depth_dir: Path | None,
              has_depth: np.ndarray, img_resize: int) -> list[int | None]:
    """Ground-truth coarse matches of each chosen pair at ``img_resize``, by the supervision training uses
    (:func:`matchforge.loftr.supervision.coarse_match_counts`); None for pairs without depth on both sides."""
    from matchforge.dataset.indices import PairRecord
    from matchforge.loftr.supervision import coarse_match_counts

    out: list[int | None] = [None] * len(chosen)
    todo, records = [], []
    for k, (i, j, ov) in enumerate(chosen):
        if depth_dir is None or not (has_depth[i] and has_depth[j]):
            continue
        a, b = views[i], views[j]
        records.append(PairRecord("", images_dir / a.name, images_dir / b.name, depth_dir / f"{a.stem}.h5",
                                  depth_dir / f"{b.stem}.h5", a.K, b.K, a.T_cw, b.T_cw,
                                  b.T_cw @ np.linalg.inv(a.T_cw), ov))
        todo.append(k)
    for k, n in zip(todo, coarse_match_counts(records, img_resize, LOFTR_RUN.depth_check) if records else []):
        out[k] = n
    return out


def _quantiles(values: Any) -> dict[str, float | int | None]:
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return {"n": 0, "min": None, "median": None, "p10": None, "max": None}
    return {"n": int(len(v)), "min": int(v.min()), "p10": float(np.percentile(v, 10)), "median": float(np.median(v)),
            "max": int(v.max())}


def plot_gt_matches(path: Path, table: Any, minimum: int, img_resize: int, scene: str) -> None:
    """Histogram of ground-truth coarse matches per pair, one colour per bucket, the drop threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    data = table.dropna(subset=["gt_coarse_matches"])
    if len(data):
        top = max(int(data["gt_coarse_matches"].max()), minimum) + 1
        bins = np.linspace(0, top, min(40, top) + 1)
        for bucket, group in data.groupby("bucket"):
            ax.hist(group["gt_coarse_matches"], bins=bins, alpha=0.6, label=f"{bucket} ({len(group)} pairs)")
        ax.axvline(minimum, color="k", ls="--", lw=1, label=f"min_gt_matches = {minimum} (fewer: dropped)")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no pair with depth on both sides", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel=f"ground-truth coarse matches per pair at {img_resize} px (what LoFTR's supervision gets)",
           ylabel="pairs", title=f"{scene}: ground truth per training pair")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def plot_overlaps(path: str | Path, overlaps: np.ndarray, buckets: list[list[float]], per_bucket: Mapping[str, int],
                  scene: str) -> None:
    """Histogram of the candidate pairs' overlap scores with the buckets shaded (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for (lo, hi), count in zip(buckets, per_bucket.values()):
        ax.axvspan(lo, hi, alpha=0.15, color="tab:green")
        ax.text(0.5 * (lo + hi), 0.98, f"{count}", ha="center", va="top", transform=ax.get_xaxis_transform())
    ax.hist(overlaps, bins=np.linspace(0, 1, 41), color="tab:blue")
    ax.set_xlabel("pair overlap (D2-Net score of the unordered pair)")
    ax.set_ylabel("pairs")
    ax.set_title(f"{scene}: {len(overlaps)} co-visible pairs; shaded = buckets (pairs kept)")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def candidate_pairs(overlap: np.ndarray, shared: np.ndarray, scale_ratio: np.ndarray, min_shared: int,
                    max_scale_ratio: float | None) -> list[tuple[int, int, float]]:
    """Unordered pairs ``(i, j, overlap)`` with i < j, a valid pair overlap (>= 0), at least ``min_shared``
    shared 3D points and, when set, a scale ratio up to ``max_scale_ratio``; in (i, j) order."""
    i, j = np.triu_indices(len(overlap), 1)
    keep = (overlap[i, j] >= 0) & (shared[i, j] >= min_shared)
    if max_scale_ratio is not None:
        keep &= scale_ratio[i, j] <= max_scale_ratio
    i, j = i[keep], j[keep]
    return list(zip(i.tolist(), j.tolist(), overlap[i, j].tolist()))


def _check_buckets(buckets: list[list[float]], scene: str) -> None:
    for b in buckets:
        if len(b) != 2 or not (0 <= b[0] < b[1] <= 1.0 + 1e-9):
            raise MatchforgeError(f"bad overlap bucket {b}: need [lo, hi) with 0 <= lo < hi <= 1",
                                  fix=f"edit scene_info.buckets in {config_source()}", scene=scene)


def main(conf: Mapping[str, Any], sparse_dir: str | Path, images_dir: str | Path, depth_dir: str | Path | None,
         out_dir: str | Path, scene: str) -> dict[str, Any]:
    """Build the bucketed scene-info files of ``scene``; returns the stats written to ``stats.json``."""
    conf = SceneInfoSection.of(conf, "scene_info").to_dict()
    if conf["gt_img_resize"] is None:  # run by hand: LoFTR's default training size (the workflow passes its runs')
        from matchforge.loftr.config import LoFTRTrain

        conf["gt_img_resize"] = LoFTRTrain.model_fields["img_resize"].default
    sparse_dir, images_dir, out_dir = Path(sparse_dir), Path(images_dir), Path(out_dir)
    depth_dir = Path(depth_dir) if depth_dir is not None else None
    buckets = [list(map(float, b)) for b in conf["buckets"]]
    _check_buckets(buckets, scene)
    if not sparse_dir.is_dir():
        raise MatchforgeError("sparse model folder not found", fix="run the sfm stage first", scene=scene,
                              path=sparse_dir)
    try:
        sfm = load_scene(sparse_dir)
    except ValueError as err:
        raise MatchforgeError(str(err), fix="use the undistorted model from the sfm stage", scene=scene,
                              path=sparse_dir) from None
    views = list(sfm.views.values())
    if len(views) < 2:
        raise MatchforgeError(f"only {len(views)} registered image(s)", fix="add overlapping photos", scene=scene,
                              path=sparse_dir)

    # which images can supervise (valid depth) and which exist at all
    status: dict[str, str] = {}
    for v in views:
        if not (images_dir / v.name).is_file():
            raise MatchforgeError(f"image '{v.name}' of the model is missing", scene=scene, path=images_dir,
                                  fix="rerun the sfm stage so that images/ matches sparse/")
        status[v.name] = ("missing (no depth folder)" if depth_dir is None else
                          depth_status(depth_dir / f"{v.stem}.h5", v.width, v.height, conf["min_depth_coverage"]))
    has_depth = np.array([status[v.name] == "ok" for v in views])
    valid_share = {v.name: valid_fraction(depth_dir / f"{v.stem}.h5") for v, ok in zip(views, has_depth) if ok}
    usable = has_depth if conf["require_depth"] else np.ones(len(views), bool)
    for v in views:
        if status[v.name] != "ok":
            log.warning("%s: %s: depth %s%s", scene, v.name, status[v.name],
                        " -> image left out (None)" if conf["require_depth"] else " -> depth path None")

    cov = covisibility(sfm, views, usable)
    if conf["pair_overlap"] == "min":
        sym = np.minimum(cov.overlap, cov.overlap.T)
    elif conf["pair_overlap"] == "max":
        sym = np.maximum(cov.overlap, cov.overlap.T)
    else:
        sym = np.where((cov.overlap >= 0) & (cov.overlap.T >= 0), 0.5 * (cov.overlap + cov.overlap.T), -1.0)

    image_paths, depth_paths, intrinsics, poses = [], [], [], []
    for v, ok, dep in zip(views, usable, has_depth):
        image_paths.append(image_rel(scene, v.name) if ok else None)
        depth_paths.append(depth_rel(scene, v.name) if ok and dep else None)
        intrinsics.append(v.K.astype(np.float64).copy() if ok else None)
        poses.append(v.T_cw.astype(np.float64).copy() if ok else None)
    arrays = dict(image_paths=object_array(image_paths), depth_paths=object_array(depth_paths),
                  intrinsics=object_array(intrinsics), poses=object_array(poses))

    n = len(views)
    candidates = candidate_pairs(sym, cov.shared, cov.scale_ratio, conf["min_shared_points"], conf["max_scale_ratio"])

    out_dir.mkdir(parents=True, exist_ok=True)
    stem_re = re.compile(re.escape(scene) + r"_[0-9.]+_[0-9.]+\.npz$")
    stems = bucket_stems(scene, {"buckets": buckets})
    for stale in out_dir.glob(f"{scene}_*.npz"):
        if stem_re.fullmatch(stale.name) and stale.stem not in stems:
            stale.unlink()
    rng = np.random.default_rng(conf["seed"])
    per_bucket: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    first = [first_observations(v) for v in views]
    for (lo, hi), stem in zip(buckets, stems):
        chosen = [c for c in candidates if lo <= c[2] < hi]
        cap = conf["max_pairs_per_bucket"]
        if cap is not None and len(chosen) > cap:
            keep = np.sort(rng.choice(len(chosen), size=cap, replace=False))
            chosen = [chosen[k] for k in keep]
        counts = gt_counts(views, chosen, images_dir, depth_dir, has_depth, conf["gt_img_resize"])
        kept = []
        for (i, j, ov), n_gt in zip(chosen, counts):
            row = {"image0": views[i].name, "image1": views[j].name, "bucket": stem, "overlap": round(ov, 4),
                   "gt_coarse_matches": n_gt, "valid0": valid_share.get(views[i].name), "valid1": valid_share.get(views[j].name)}
            rows.append(row)
            if n_gt is not None and n_gt < conf["min_gt_matches"]:
                dropped.append(row)
            else:
                kept.append((i, j, ov))
        pair_infos = [(np.array([i, j], dtype=np.int64), np.float64(ov),
                       central_match(views[i], views[j], first[i], first[j])) for i, j, ov in kept]
        save_scene_info(out_dir / f"{stem}.npz", {**arrays, "pair_infos": pair_infos})
        per_bucket[stem] = len(pair_infos)
        if not pair_infos:
            log.warning("%s: bucket [%g, %g) has no pairs", scene, lo, hi)
    for row in dropped:
        log.warning("%s: pair %s - %s (%s) dropped: %d ground-truth coarse matches at %s px < scene_info.min_gt_matches %d",
                    scene, row["image0"], row["image1"], row["bucket"], row["gt_coarse_matches"], conf["gt_img_resize"],
                    conf["min_gt_matches"])
    import pandas as pd

    pairs_table = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    pairs_table.to_csv(out_dir / "pairs.csv", index=False)

    np.savez(out_dir / "d2net_extras.npz", image_names=np.array(cov.names), depth_valid=has_depth,
             usable=usable, n_points3D=cov.n_points3D, overlap_matrix=cov.overlap,
             scale_ratio_matrix=cov.scale_ratio, angles=cov.angles, shared_points=cov.shared,
             pair_overlap=sym)
    stats = {
        "scene": scene, "options": conf, "num_images": n, "num_depth_valid": int(has_depth.sum()),
        "num_usable": int(usable.sum()), "depth_status": status, "num_candidate_pairs": len(candidates),
        "pairs_per_bucket": per_bucket, "num_pairs": int(sum(per_bucket.values())),
        "gt_img_resize": conf["gt_img_resize"], "min_gt_matches": conf["min_gt_matches"],
        "gt_coarse_matches": _quantiles(pairs_table["gt_coarse_matches"].dropna()),
        "num_dropped_few_gt_matches": len(dropped),
        "dropped_few_gt_matches": [{k: r[k] for k in ("image0", "image1", "bucket", "gt_coarse_matches")} for r in dropped],
    }
    write_json(out_dir / "stats.json", stats, indent=2)
    if stats["num_pairs"] == 0:
        few = f", {len(dropped)} dropped with fewer than {conf['min_gt_matches']} ground-truth matches" if dropped else ""
        raise MatchforgeError(
            f"no training pairs: {n} registered images, {int(has_depth.sum())} with valid depth, "
            f"{len(candidates)} co-visible candidate pairs, none kept in the overlap buckets {buckets}{few}",
            scene=scene, path=out_dir / "stats.json",
            fix="check the depth stage's qa.json (images without valid depth are left out) and the SfM model "
                "(sfm/stats.json: registered photos and 3D points); widen scene_info.buckets or lower "
                "scene_info.min_shared_points")
    plot_overlaps(out_dir / "overlap_hist.png", np.array([c[2] for c in candidates]), buckets, per_bucket, scene)
    plot_gt_matches(out_dir / "gt_matches_hist.png", pairs_table, conf["min_gt_matches"], conf["gt_img_resize"], scene)
    log.info("%s: %d/%d images with depth, %d pairs in buckets %s", scene, int(has_depth.sum()), n,
             stats["num_pairs"], per_bucket)
    return stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scene", required=True, help="scene name (the file stem prefix)")
    parser.add_argument("--sparse", required=True, type=Path, help="undistorted PINHOLE COLMAP model folder")
    parser.add_argument("--images", required=True, type=Path, help="undistorted images the model refers to")
    parser.add_argument("--depth", type=Path, default=None, help="folder of depth H5 files <stem>.h5 (SfM units)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (results/<scene>/scene_info)")
    parser.add_argument("--conf", default=None, help="options as inline JSON or a YAML/JSON file (scene_info section)")


def run(args: argparse.Namespace) -> None:
    main(load_conf(args.conf), args.sparse, args.images, args.depth, args.out, args.scene)
