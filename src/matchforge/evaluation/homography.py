"""Homography evaluation of stored matches: HPatches-protocol MMA (D2-Net) and homography accuracy (glue-factory).

MMA (%) at 1..15 px and PoSFeat's MMA score from the matches of any matcher (``matchforge match-pairs``),
and the AUC (%) at 1/3/5 px of the mean corner error of homographies estimated from those matches by
RANSAC and by DLT (least squares). Folders understood by
:func:`find_pairs` (searched recursively):

- HPatches sequences: ``<seq>/1.ppm .. 6.ppm`` + ``H_1_k`` (maps image 1 -> image k); pairs (1, k).
  Sequences named ``i_*`` count as illumination, ``v_*`` as viewpoint.
- Oxford affine: ``img1.ppm .. img6.ppm`` + ``H1to<k>p`` (maps image 1 -> image k).
- homogr benchmark: ``<name>A.*``, ``<name>B.*`` + ``<name>_model.txt``, which maps **B -> A**;
  we use its inverse so every pair's ``H`` maps image 0 (A) to image 1 (B).

Homographies act on pixel-index coordinates (pixel centres at integers), so matchforge keypoints
(pixel centres at +0.5) are shifted by -0.5 before projection. A match is correct when
``|H x0 - x1| <= thr``. MMA is the mean over pairs of the per-pair share (%) of correct matches (0 for a
pair without matches); the MMA score is the mean of MMA@1..10 weighted by 1.9, 1.8, ..., 1.0 (PoSFeat).
Every test-set number has a 95 % interval that treats photos as the unit (:mod:`matchforge.evaluation.stats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.images import IMAGE_SUFFIXES
from matchforge.io.write import save_figure

# D2-Net protocol: HPatches sequences with images larger than 1600x1200 are left out.
D2NET_EXCLUDED = ("i_contruction", "i_crownnight", "i_dc", "i_pencils", "i_whitebuilding",
                  "v_artisans", "v_astronautis", "v_talent")
THRESHOLDS = tuple(range(1, 16))
AUC_THRESHOLDS = (1, 3, 5)  # px of mean corner error, as glue-factory scores HPatches
SCORE_WEIGHTS = tuple(np.round(np.arange(1.9, 0.95, -0.1), 1))  # for MMA@1..10


@dataclass
class HomographyPair:
    name: str
    image0: str  # image names relative to the test-set root (keys of the feature file)
    image1: str
    H: np.ndarray  # 3x3, maps image-0 pixel indices to image-1 pixel indices
    category: str  # "illumination", "viewpoint" or "other"


def _image(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_SUFFIXES:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return None


def _read_h(path: Path) -> np.ndarray:
    try:
        H = np.loadtxt(path, dtype=np.float64).reshape(3, 3)
    except ValueError as err:
        raise MatchforgeError(f"cannot read a 3x3 homography ({err})", fix="check the file", path=path) from None
    return H


def find_pairs(root: str | Path, exclude: Sequence[str] = D2NET_EXCLUDED) -> list[HomographyPair]:
    """All image pairs with ground-truth homographies below ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise MatchforgeError("homography test set folder not found", fix="check posfeat testsets.<name>.path",
                              path=root)
    pairs: list[HomographyPair] = []
    for folder in sorted({p.parent for p in root.rglob("*") if p.is_file()}):
        rel = folder.relative_to(root).as_posix()
        if folder.name in exclude:
            continue
        prefix = "" if rel == "." else rel + "/"
        cat = {"i_": "illumination", "v_": "viewpoint"}.get(folder.name[:2], "other")
        for hfile in sorted(folder.glob("H_1_*")):  # HPatches
            k = hfile.name.split("_")[-1]
            a, b = _image(folder, "1"), _image(folder, k)
            if a and b:
                pairs.append(HomographyPair(f"{prefix}1-{k}", prefix + a.name, prefix + b.name, _read_h(hfile), cat))
        for hfile in sorted(folder.glob("H1to*p")):  # Oxford affine
            k = hfile.name[4:-1]
            a, b = _image(folder, "img1"), _image(folder, f"img{k}")
            if a and b:
                pairs.append(HomographyPair(f"{prefix}img1-img{k}", prefix + a.name, prefix + b.name,
                                            _read_h(hfile), cat))
        for hfile in sorted(folder.glob("*_model.txt")):  # homogr: model maps B -> A
            stem = hfile.name[: -len("_model.txt")]
            a, b = _image(folder, f"{stem}A"), _image(folder, f"{stem}B")
            if a and b:
                pairs.append(HomographyPair(f"{prefix}{stem}", prefix + a.name, prefix + b.name,
                                            np.linalg.inv(_read_h(hfile)), cat))
    if not pairs:
        raise MatchforgeError("no image pairs with homographies found (HPatches H_1_k, Oxford H1to<k>p or "
                              "homogr <name>_model.txt)", fix="check the test-set folder", path=root)
    return pairs


def project(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (N, 2) points."""
    p = np.c_[xy, np.ones(len(xy))] @ H.T
    return p[:, :2] / p[:, 2:3]


def mma_curve(errors: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> np.ndarray:
    """Share of matches with error <= each threshold (0 for no matches)."""
    if len(errors) == 0:
        return np.zeros(len(thresholds))
    return np.array([np.mean(errors <= t) for t in thresholds])


def mma_score(curve_1_to_10: Sequence[float]) -> float:
    """PoSFeat's MMA score: mean of MMA@1..10 weighted by 1.9, 1.8, ..., 1.0."""
    w = np.asarray(SCORE_WEIGHTS)
    return float(np.sum(w * np.asarray(curve_1_to_10)[:10]) / w.sum())


def corner_error(H_est: np.ndarray | None, H: np.ndarray, width: int, height: int) -> float:
    """Mean distance (px) between the corners of image 0 mapped by ``H_est`` and by the true ``H`` (inf: no estimate)."""
    if H_est is None or not np.all(np.isfinite(H_est)):
        return float("inf")
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)
    return float(np.linalg.norm(project(H_est, corners) - project(H, corners), axis=1).mean())


def estimate_homography(k0: np.ndarray, k1: np.ndarray, method: str, ransac_thresh: float = 3.0) -> np.ndarray | None:
    """H (pixel indices of image 0 -> 1) from matched matchforge keypoints: ``ransac`` (OpenCV, ``ransac_thresh``
    px) or ``dlt`` (least squares on every match); None with fewer than 4 matches or a degenerate set."""
    import cv2

    if len(k0) < 4:
        return None
    src, dst = (np.ascontiguousarray(k - 0.5, np.float64) for k in (k0, k1))
    if method == "ransac":
        H, _ = cv2.findHomography(src, dst, cv2.RANSAC, ransac_thresh, maxIters=10000, confidence=0.9999)
    else:
        H, _ = cv2.findHomography(src, dst, 0)
    return H


def score(records: Sequence[Any], matches: str | Path, thresholds: Sequence[float] = THRESHOLDS,
          auc_thresholds: Sequence[float] = AUC_THRESHOLDS, ransac_thresh: float = 3.0) -> dict:
    """MMA (%) at each threshold from stored matches, and homography accuracy as glue-factory scores HPatches:
    the AUC (%) of the mean corner error of RANSAC and DLT estimates at 1/3/5 px. Each test-set number has a
    95 % interval (:mod:`matchforge.evaluation.stats`); ``records`` come from :func:`matchforge.evaluation.testsets.homography_records`."""
    from matchforge.evaluation.pose_metrics import auc_curve, pose_auc
    from matchforge.evaluation.relpose import pair_names
    from matchforge.evaluation.stats import FEW_PAIRS, intervals, weighted_mean
    from matchforge.io.images import image_size
    from matchforge.io.matches import MatchReader

    per_pair = []
    with MatchReader(matches) as reader:
        for rec, (n0, n1) in zip(records, pair_names(records)):
            k0, k1 = reader(n0, n1, sizes=(image_size(rec.image0), image_size(rec.image1)))
            err = np.linalg.norm(project(rec.H, k0 - 0.5) - (k1 - 0.5), axis=1) if len(k0) else np.zeros(0)
            w, h = image_size(rec.image0)
            per_pair.append({"pair": rec.name, "category": rec.category, "photos": [n0, n1], "num_matches": int(len(k0)),
                             "mma": (mma_curve(err, thresholds) * 100).tolist(),
                             **{f"h_error_{m}": corner_error(estimate_homography(k0, k1, m, ransac_thresh), rec.H, w, h)
                                for m in ("ransac", "dlt")}})
    out: dict = {"thresholds": list(thresholds), "num_pairs": len(per_pair), "matcher": reader.matcher,
                 "pairs": [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
                           for r in per_pair]}
    groups = {"overall": per_pair}
    for cat in ("illumination", "viewpoint"):
        sel = [r for r in per_pair if r["category"] == cat]
        if sel:
            groups[cat] = sel
    for g, rows in groups.items():
        mma = np.array([r["mma"] for r in rows])
        curve = mma.mean(0)
        res: dict = {"mma": curve.tolist(), "num_pairs": len(rows), "few_pairs": len(rows) < FEW_PAIRS,
                     "num_matches": float(np.mean([r["num_matches"] for r in rows]))}
        picks = [list(thresholds).index(t) for t in (1, 3, 5, 10) if t in thresholds]
        units = [tuple(r["photos"]) for r in rows]
        cis = intervals(mma[:, picks], units, weighted_mean, [True] * len(picks))
        for k, ci in zip(picks, cis):
            res[f"mma@{thresholds[k]:g}"] = float(curve[k])
            res[f"mma@{thresholds[k]:g}_ci"] = ci
        if all(t in thresholds for t in range(1, 11)):
            res["mma_score"] = mma_score([curve[list(thresholds).index(t)] for t in range(1, 11)])
        for m in ("ransac", "dlt"):
            errors = np.array([r[f"h_error_{m}"] for r in rows], np.float64)
            aucs = pose_auc(errors, tuple(auc_thresholds))
            cis = intervals(errors, units, lambda e, w: auc_curve(e, w, tuple(auc_thresholds)), [True] * len(aucs))
            for (key, value), ci in zip(aucs.items(), cis):
                res[f"h_{m}_{key}"] = value
                res[f"h_{m}_{key}_ci"] = ci
        out[g] = res
    return out


def plot_curves(results: dict[str, dict], path: str | Path, title: str = "MMA (HPatches protocol)") -> None:
    """One MMA-vs-threshold curve (1..10 px, %) per method; ``results`` maps a label to a :func:`score` result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in ("overall", "illumination", "viewpoint") if any(g in r for r in results.values())]
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, g in zip(axes[0], groups):
        for label, r in results.items():
            if g not in r:
                continue
            th = np.asarray(r["thresholds"])
            sel = th <= 10
            ax.plot(th[sel], np.asarray(r[g]["mma"])[sel], marker="o", ms=3,
                    label=f"{label} (MMA score {r[g].get('mma_score', float('nan')):.1f} %)")
        n = next(iter(results.values()))[g]["num_pairs"]
        ax.set(title=f"{g} ({n} pairs{', fewer than 10' if n < 10 else ''})", xlabel="threshold (px)",
               ylabel="MMA (%)", ylim=(0, 100), xlim=(1, 10))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=100)
