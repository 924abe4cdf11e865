"""Relative-pose metrics with the official LoFTR/SuperGlue definitions (geometry in :mod:`matchforge.geometry`).

- Poses are world->camera; ``T_0to1 = T1 @ inv(T0)`` maps camera-0 coordinates to camera-1.
- Keypoints are pixels in each image's own (possibly resized) frame, with the matching ``K``.
- The essential matrix is estimated by RANSAC with the pixel threshold normalised by the mean focal
  length (``thresh / mean(fx0, fy0, fx1, fy1)``), then ``recoverPose`` on each candidate keeps the
  solution with the most inliers.
- Pose error = max(rotation angle error, translation *direction* angle error), in degrees;
  a failed estimate counts as infinite error.
- AUC at 5/10/20 degrees: area under the cumulative error curve (trapezoid), as a percentage.
"""

from __future__ import annotations

import numpy as np

from matchforge.geometry.epipolar import essential_from_pose, symmetric_epipolar_distance
from matchforge.geometry.pose import estimate_pose, relative_pose_error


def pose_auc(errors: np.ndarray | list[float], thresholds: tuple[float, ...] = (5, 10, 20)) -> dict[str, float]:
    """AUC (percent) of the recall-vs-error curve up to each threshold (degrees), trapezoid rule."""
    errors = np.sort(np.asarray(errors, dtype=np.float64))
    recall = (np.arange(len(errors)) + 1) / max(len(errors), 1)
    errors = np.r_[0.0, errors]
    recall = np.r_[0.0, recall]
    out = {}
    for th in thresholds:
        last = np.searchsorted(errors, th)
        r = np.r_[recall[:last], recall[last - 1]]
        e = np.r_[errors[:last], th]
        out[f"auc@{th:g}"] = float(np.trapezoid(r, x=e) / th * 100)
    return out


def evaluate_pair(kpts0: np.ndarray, kpts1: np.ndarray, K0: np.ndarray, K1: np.ndarray, T_0to1: np.ndarray,
                  ransac_thresh: float, epi_thresh: float, estimator: str) -> dict[str, float]:
    """Pose error (deg), epipolar precision and match count for one pair (official definitions)."""
    out: dict[str, float] = {"num_matches": int(len(kpts0))}
    if len(kpts0):
        d = symmetric_epipolar_distance(kpts0, kpts1, essential_from_pose(T_0to1), K0, K1)
        out["precision"] = float(np.mean(d < epi_thresh))
    else:
        out["precision"] = 0.0
    est = estimate_pose(kpts0, kpts1, K0, K1, ransac_thresh, estimator=estimator)
    if est is None:
        out.update(err_t=np.inf, err_R=np.inf, pose_error=np.inf, num_inliers=0)
    else:
        R, t, inl = est
        err_t, err_R = relative_pose_error(T_0to1, R, t)
        out.update(err_t=err_t, err_R=err_R, pose_error=max(err_t, err_R), num_inliers=int(inl.sum()))
    return out
