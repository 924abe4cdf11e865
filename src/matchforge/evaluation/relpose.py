"""Relative-pose evaluation of any matcher on pairs with known intrinsics and relative pose.

Per pair: matches in matchforge pixels of the frame ``K`` refers to -> RANSAC essential matrix (0.5 px
normalised by the mean focal) -> pose error = max(rotation, translation-direction angle) in degrees, a
failed estimate counting as infinite; epipolar precision = share of matches whose squared symmetric
epipolar distance (normalised coordinates) is below ``epi_err_thr``. Over the pairs: AUC@5/10/20 (%,
trapezoid), mean precision (%), mean number of matches, failed estimates. Definitions:
:mod:`matchforge.evaluation.pose`. Every family's relative-pose numbers come from :func:`evaluate`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from matchforge.evaluation.pose import evaluate_pair, pose_auc
from matchforge.evaluation.visualize import draw_pair
from matchforge.io.images import image_size

SUMMARY_KEYS = ("auc@5", "auc@10", "auc@20", "precision", "num_matches", "failed", "num_pairs")
Matcher = Callable[[Any, Any], tuple[np.ndarray, np.ndarray]]


def to_intrinsics_frame(kpts: np.ndarray, path: str | Path, size: tuple[int, int] | None) -> np.ndarray:
    """Keypoints in pixels of the image file -> pixels of the ``size`` (w, h) its K refers to (if given)."""
    if size is None:
        return kpts
    w, h = image_size(path)
    return kpts * np.array([size[0] / w, size[1] / h])


def evaluate(matcher: Matcher, records: Sequence[Any],
             ransac_thresh: float = 0.5, epi_err_thr: float = 5e-4, vis: tuple[str | Path, str] | None = None) -> dict[str, Any]:
    """Aggregate and per-pair relative-pose metrics of ``matcher`` on ``records``.

    ``vis = (path, title)`` also draws the first pair's matches (see :func:`draw_pair`).
    """
    rows = []
    t0 = time.time()
    for n, rec in enumerate(tqdm(records, desc="pairs", mininterval=5)):
        k0, k1 = matcher(rec.image0, rec.image1)
        k0 = to_intrinsics_frame(k0, rec.image0, getattr(rec, "size0", None))
        k1 = to_intrinsics_frame(k1, rec.image1, getattr(rec, "size1", None))
        if vis is not None and n == 0:
            draw_pair(rec, k0, k1, epi_err_thr, vis[1], vis[0])
        r = evaluate_pair(k0, k1, np.asarray(rec.K0), np.asarray(rec.K1), np.asarray(rec.T_0to1), ransac_thresh, epi_err_thr)
        rows.append({"image0": Path(rec.image0).name, "image1": Path(rec.image1).name, "scene": str(rec.scene),
                     **{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}})
    return {**aggregate(rows), "seconds_per_pair": (time.time() - t0) / max(len(rows), 1), "pairs": rows}


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Test-set numbers from per-pair rows of :func:`~matchforge.evaluation.pose.evaluate_pair`
    (``pose_error`` None or inf for a failed estimate): AUCs and precision in percent."""
    errors = [np.inf if r["pose_error"] is None else r["pose_error"] for r in rows]
    return {"num_pairs": len(rows), **pose_auc(errors),
            "precision": float(np.mean([r["precision"] for r in rows]) * 100) if rows else 0.0,
            "num_matches": float(np.mean([r["num_matches"] for r in rows])) if rows else 0.0,
            "failed": int(sum(not np.isfinite(e) for e in errors))}
