"""Relative-pose metrics with the official LoFTR/SuperGlue definitions.

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

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)


def relative_pose(T0: np.ndarray, T1: np.ndarray) -> np.ndarray:
    """``T_0to1 = T1 @ inv(T0)`` for 4x4 world->camera poses."""
    return T1 @ np.linalg.inv(T0)


def angle_error_mat(R1: np.ndarray, R2: np.ndarray) -> float:
    """Angle in degrees of the rotation ``R1^T R2``."""
    cos = (np.trace(R1.T @ R2) - 1) / 2
    return float(np.rad2deg(np.abs(np.arccos(np.clip(cos, -1.0, 1.0)))))


def angle_error_vec(v1: np.ndarray, v2: np.ndarray) -> float:
    """Angle in degrees between two vectors."""
    n = np.linalg.norm(v1) * np.linalg.norm(v2)
    return float(np.rad2deg(np.arccos(np.clip(np.dot(v1, v2) / n, -1.0, 1.0))))


def relative_pose_error(T_0to1: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """(translation-direction error, rotation error) in degrees; the sign of ``t`` is ignored."""
    t_gt = T_0to1[:3, 3]
    err_t = angle_error_vec(t, t_gt)
    err_t = min(err_t, 180 - err_t)
    if np.linalg.norm(t_gt) < 1e-12:  # pure rotation: no direction to compare
        err_t = 0.0
    err_R = angle_error_mat(R, T_0to1[:3, :3])
    return err_t, err_R


def estimate_pose(kpts0: np.ndarray, kpts1: np.ndarray, K0: np.ndarray, K1: np.ndarray,
                  thresh: float = 0.5, conf: float = 0.99999) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """RANSAC essential matrix from pixel matches; returns (R, t, inlier mask) or None (< 5 matches / failure)."""
    if len(kpts0) < 5:
        return None
    f_mean = np.mean([K0[0, 0], K1[1, 1], K0[0, 0], K1[1, 1]])  # upstream quirk: fx0 and fy1 only
    norm_thresh = thresh / f_mean
    k0 = (kpts0 - K0[[0, 1], [2, 2]][None]) / K0[[0, 1], [0, 1]][None]
    k1 = (kpts1 - K1[[0, 1], [2, 2]][None]) / K1[[0, 1], [0, 1]][None]
    try:
        E, mask = cv2.findEssentialMat(k0, k1, np.eye(3), threshold=norm_thresh, prob=conf, method=cv2.RANSAC)
    except cv2.error as err:  # OpenCV 5 asserts in its five-point solver on degenerate samples (4.x skips them)
        log.warning("essential matrix failed on %d matches (%s): pose counted as failed", len(k0),
                    str(err).strip().splitlines()[-1])
        return None
    if E is None:
        return None
    best, best_n = None, 0
    for _E in np.split(E, len(E) // 3):
        n, R, t, _ = cv2.recoverPose(_E, k0, k1, np.eye(3), 1e9, mask=mask)
        if n > best_n:
            best_n, best = n, (R, t[:, 0], mask.ravel() > 0)
    return best


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


def symmetric_epipolar_distance(pts0: np.ndarray, pts1: np.ndarray, E: np.ndarray,
                                K0: np.ndarray, K1: np.ndarray) -> np.ndarray:
    """Squared symmetric epipolar distance in normalised camera coordinates (LoFTR's definition)."""
    p0 = (pts0 - K0[[0, 1], [2, 2]][None]) / K0[[0, 1], [0, 1]][None]
    p1 = (pts1 - K1[[0, 1], [2, 2]][None]) / K1[[0, 1], [0, 1]][None]
    p0 = np.c_[p0, np.ones(len(p0))]
    p1 = np.c_[p1, np.ones(len(p1))]
    Ep0 = p0 @ E.T
    p1Ep0 = np.sum(p1 * Ep0, -1)
    Etp1 = p1 @ E
    d = p1Ep0**2 * (1.0 / (Ep0[:, 0] ** 2 + Ep0[:, 1] ** 2) + 1.0 / (Etp1[:, 0] ** 2 + Etp1[:, 1] ** 2))
    return d


def essential_from_pose(T_0to1: np.ndarray) -> np.ndarray:
    """E = [t]_x R for the relative pose."""
    t = T_0to1[:3, 3]
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return tx @ T_0to1[:3, :3]


def evaluate_pair(kpts0: np.ndarray, kpts1: np.ndarray, K0: np.ndarray, K1: np.ndarray, T_0to1: np.ndarray,
                  ransac_thresh: float = 0.5, epi_thresh: float = 5e-4) -> dict[str, float]:
    """Pose error (deg), epipolar precision and match count for one pair (official definitions)."""
    out: dict[str, float] = {"num_matches": int(len(kpts0))}
    if len(kpts0):
        d = symmetric_epipolar_distance(kpts0, kpts1, essential_from_pose(T_0to1), K0, K1)
        out["precision"] = float(np.mean(d < epi_thresh))
    else:
        out["precision"] = 0.0
    est = estimate_pose(kpts0, kpts1, K0, K1, ransac_thresh)
    if est is None:
        out.update(err_t=np.inf, err_R=np.inf, pose_error=np.inf, num_inliers=0)
    else:
        R, t, inl = est
        err_t, err_R = relative_pose_error(T_0to1, R, t)
        out.update(err_t=err_t, err_R=err_R, pose_error=max(err_t, err_R), num_inliers=int(inl.sum()))
    return out
