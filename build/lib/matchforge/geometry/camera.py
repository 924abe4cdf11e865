"""Pinhole cameras and depth maps: intrinsics from a field of view, unprojection, depth normalisation.

Units: focal lengths and principal points in pixels; depth in whatever unit the caller gives
(metres for RGB-D sources, SfM units for matchforge scenes, unitless once normalised). Pixel
``(row r, col c)`` has its centre at ``(c + 0.5, r + 0.5)`` (COLMAP convention, :mod:`matchforge.geometry.pixels`).
"""

from __future__ import annotations

import math

import numpy as np

#: LeReS's initial guess: a 60-degree field of view over the image height.
DEFAULT_FOV_DEG = 60.0


def focal_from_fov(fov_deg: float, size_px: float) -> float:
    """Focal length (pixels) of a pinhole camera whose field of view ``fov_deg`` spans ``size_px`` pixels."""
    return (size_px / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def vfov_deg(focal: float, height: float) -> float:
    """Vertical field of view (degrees) of a pinhole camera with ``focal`` (pixels) over ``height`` pixels."""
    return math.degrees(2.0 * math.atan(height / 2.0 / focal))


def depth_from_disparity(disparity: np.ndarray) -> np.ndarray:
    """``1 / d`` where ``d`` is finite and positive, 0 (invalid) elsewhere: relative depth from a
    disparity-like map (MiDaS, Depth-Anything relative), up to scale and only roughly up to shift."""
    d = np.asarray(disparity, dtype=np.float64)
    valid = np.isfinite(d) & (d > 0)
    return np.where(valid, 1.0 / np.where(valid, d, 1.0), 0.0)


def guess_focal(height: int, fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """LeReS's initial focal: ``(H // 2) / tan(fov / 2)`` (vertical field of view, default 60 degrees)."""
    return (height // 2) / math.tan(math.radians(fov_deg) / 2.0)


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """3x3 pinhole K (pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def centred_intrinsics(focal: float, height: int, width: int) -> np.ndarray:
    """K with one focal for both axes and the principal point at the image centre (as LeReS assumes).

    Note ``cx`` is half the *width* and ``cy`` half the *height* (Train-3D swaps them).
    """
    return intrinsics(focal, focal, width / 2.0, height / 2.0)


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) pixel-centre coordinates, each (H, W) float64: ``u = c + 0.5``, ``v = r + 0.5``."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return u + 0.5, v + 0.5


def unproject(depth: np.ndarray, K: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Back-project a depth map (z-depth along the optical axis) into camera coordinates.

    Returns ``points`` (N, 3) with ``x = (u - cx) z / fx``, ``y = (v - cy) z / fy``, ``z = depth`` in
    the depth's unit, and ``uv`` (N, 2) the normalised image coordinates ``((u - cx)/fx, (v - cy)/fy)``,
    for the pixels where ``mask`` (default: ``depth > 0`` and finite) holds, in row-major order.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if mask is None:
        mask = np.isfinite(depth) & (depth > 0)
    u, v = pixel_grid(*depth.shape)
    z = depth[mask]
    un = (u[mask] - K[0, 2]) / K[0, 0]
    vn = (v[mask] - K[1, 2]) / K[1, 1]
    return np.stack([un * z, vn * z, z], axis=1), np.stack([un, vn], axis=1)


def normalize_depth(depth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """LeReS inference normalisation ``(d - min + 0.5) / p98`` over the valid pixels; invalid stay 0.

    ``min`` and the 98th percentile are taken over the valid pixels of the *input*.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if mask is None:
        mask = np.isfinite(depth) & (depth > 0)
    out = np.zeros_like(depth)
    if not mask.any():
        return out
    d = depth[mask]
    d = d - d.min() + 0.5
    out[mask] = d / np.percentile(d, 98)
    return out


def scale_align(pred: np.ndarray, gt: np.ndarray) -> float:
    """Least-squares scale ``s`` minimising ``|s * pred - gt|^2`` (no shift: shift is what we recover)."""
    denom = float(np.dot(pred, pred))
    return float(np.dot(pred, gt) / denom) if denom > 0 else 1.0


def abs_rel(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean ``|pred - gt| / gt`` over the given (valid) values."""
    return float(np.mean(np.abs(pred - gt) / gt))
