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


def auc_curve(errors: np.ndarray, weights: np.ndarray, thresholds: tuple[float, ...] = (5, 10, 20)) -> np.ndarray:
    """(B, len(thresholds)) AUC (percent) of the recall-vs-error curve up to each threshold, trapezoid rule.

    Row b of ``weights`` (B, n) gives each error a whole number of copies (a photo resample; all ones: the plain
    AUC); the result equals :func:`pose_auc` of the errors repeated that often, computed without repeating them.
    """
    errors = np.asarray(errors, np.float64)
    weights = np.atleast_2d(np.asarray(weights, np.float64))
    if not len(errors):
        return np.zeros((len(weights), len(thresholds)))
    order = np.argsort(errors, kind="stable")
    e, w = errors[order], weights[:, order]
    total = w.sum(1, keepdims=True)
    before = (np.cumsum(w, 1) - w) / total  # recall just before each error
    # the previous error that has copies (its recall is `before`); 0 at the origin
    present = np.where(w > 0, np.arange(len(e)), -1)
    prev = np.c_[np.full(len(w), -1), np.maximum.accumulate(present, 1)[:, :-1]]
    e_prev = np.where(prev >= 0, e[np.maximum(prev, 0)], 0.0)
    # each error's first copy adds one step: the segment from the previous error rises from `before` to
    # `before + 1 / total`; further copies are vertical and add no area
    with np.errstate(invalid="ignore"):  # inf - inf of failed pairs, which lie past every threshold
        segment = np.where(w > 0, (e - e_prev) * (2 * before + 1 / total) / 2, 0.0)
    out = np.empty((len(w), len(thresholds)))
    for k, th in enumerate(thresholds):
        below = e < th
        last = np.where(below & (w > 0), e, 0.0).max(1)
        recall = w[:, below].sum(1) / total[:, 0]
        out[:, k] = (segment[:, below].sum(1) + (th - last) * recall) / th * 100
    return out


def pose_auc(errors: np.ndarray | list[float], thresholds: tuple[float, ...] = (5, 10, 20)) -> dict[str, float]:
    """AUC (percent) of the recall-vs-error curve up to each threshold (degrees), trapezoid rule."""
    errors = np.asarray(errors, np.float64)
    values = auc_curve(errors, np.ones((1, len(errors))), thresholds)[0]
    return {f"auc@{th:g}": float(v) for th, v in zip(thresholds, values)}


def capped_score(errors: np.ndarray, threshold: float) -> np.ndarray:
    """Per-pair share of the AUC@threshold curve, ``1 - min(error, threshold) / threshold`` (higher is better; a
    failure and any error above the threshold both give 0): what a paired test of AUC@threshold compares."""
    return 1.0 - np.minimum(np.asarray(errors, np.float64), threshold) / threshold


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
