"""Relative pose: composition, angular errors and RANSAC estimation from pixel matches.

Poses are 4x4 world->camera; ``T_0to1 = T1 @ inv(T0)`` maps camera-0 coordinates to camera-1. The
estimation follows the official LoFTR/SuperGlue evaluation: RANSAC on the essential matrix with the
pixel threshold normalised by the mean focal length, then ``recoverPose`` on each candidate keeps the
solution with the most inliers.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from matchforge.errors import MatchforgeError

log = logging.getLogger(__name__)


def relative_rotation_deg(T0: np.ndarray, T1: np.ndarray) -> float:
    """Angle (degrees) of the relative rotation between two world->camera poses."""
    R = T1[:3, :3] @ T0[:3, :3].T
    return float(np.rad2deg(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0))))


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
                  thresh: float, conf: float = 0.99999, *,
                  estimator: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Relative pose from pixel matches; returns (R, t, inlier mask) or None (< 5 matches / failure).

    ``estimator``: ``opencv`` (the official LoFTR test code: RANSAC essential matrix on normalised coordinates,
    ``thresh`` divided by the mean focal, then ``recoverPose``) or ``poselib`` (LO-RANSAC with non-linear
    refinement, what glue-factory's evaluations use; ``thresh`` is its maximum epipolar error in pixels).
    """
    if len(kpts0) < 5:
        return None
    if estimator == "poselib":
        return estimate_pose_poselib(kpts0, kpts1, K0, K1, thresh)
    if estimator != "opencv":
        raise MatchforgeError(f"unknown pose estimator '{estimator}'", fix="use opencv or poselib")
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


def estimate_pose_poselib(kpts0: np.ndarray, kpts1: np.ndarray, K0: np.ndarray, K1: np.ndarray,
                          thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """PoseLib's LO-RANSAC relative pose (``pip install 'matchforge[poselib]'``); same return as :func:`estimate_pose`.
    Cameras are PINHOLE from ``K`` in the keypoints' frame (PoseLib and matchforge share COLMAP's pixel convention)."""
    try:
        import poselib
    except ImportError:
        raise MatchforgeError("pose estimator 'poselib' needs the poselib package",
                              fix="pip install 'matchforge[poselib]' (or set estimator: opencv)") from None

    def camera(K: np.ndarray, pts: np.ndarray) -> dict:
        return {"model": "PINHOLE", "width": int(np.ceil(max(pts[:, 0].max(), 2 * K[0, 2]))),
                "height": int(np.ceil(max(pts[:, 1].max(), 2 * K[1, 2]))), "params": [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]}

    k0, k1 = np.asarray(kpts0, np.float64), np.asarray(kpts1, np.float64)
    pose, info = poselib.estimate_relative_pose(k0, k1, camera(K0, k0), camera(K1, k1),
                                                {"max_epipolar_error": float(thresh), "seed": 0}, {})
    inliers = np.asarray(info.get("inliers", []), bool)
    if not inliers.any():
        return None
    return np.asarray(pose.R), np.asarray(pose.t), inliers
