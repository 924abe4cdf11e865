"""Epipolar geometry: essential and fundamental matrices from poses, epipolar lines and distances.

Poses are 4x4 world->camera (``T_0to1 = T1 @ inv(T0)``); points are matchforge pixels
(:mod:`matchforge.geometry.pixels`). The torch functions (batched, differentiable) serve the PoSFeat
losses and pictures; the numpy ones are the official LoFTR/SuperGlue metric definitions.
"""

from __future__ import annotations

import numpy as np
import torch
from kornia.geometry.epipolar import essential_from_Rt, fundamental_from_essential


def fundamental_from_poses(K0: torch.Tensor, K1: torch.Tensor, T0: torch.Tensor, T1: torch.Tensor) -> torch.Tensor:
    """F (..., 3, 3) with ``x1^T F x0 = 0`` for pixel points, scaled to unit Frobenius norm (distances
    below divide by the line normal, so the scale does not matter). kornia: ``E = [t]x R`` of the
    relative motion, ``F = K1^-T E K0^-1``."""
    E = essential_from_Rt(T0[..., :3, :3], T0[..., :3, 3:], T1[..., :3, :3], T1[..., :3, 3:])
    Fm = fundamental_from_essential(E, K0, K1)
    return Fm / Fm.flatten(-2).norm(dim=-1)[..., None, None].clamp_min(1e-12)


def homogeneous(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones_like(x[..., :1])], -1)


def epipolar_lines(Fm: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Lines ``l = F x0`` in image 1 for points (B, N, 2) in image 0; returns (B, N, 3) (a, b, c)."""
    return homogeneous(x0) @ Fm.transpose(-1, -2)


def point_line_distance(x: torch.Tensor, lines: torch.Tensor) -> torch.Tensor:
    """Distance in pixels of points (..., 2) to lines (..., 3)."""
    num = (homogeneous(x) * lines).sum(-1).abs()
    return num / lines[..., :2].norm(dim=-1).clamp_min(1e-12)


def symmetric_epipolar_pixels(x0: torch.Tensor, x1: torch.Tensor, Fm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dist of x1 to F x0 in image 1, dist of x0 to F^T x1 in image 0), pixels, for all pairs (N0, N1).

    ``x0`` (N0, 2), ``x1`` (N1, 2), ``Fm`` (3, 3).
    """
    l1 = homogeneous(x0) @ Fm.T  # (N0, 3), lines in image 1
    l0 = homogeneous(x1) @ Fm  # (N1, 3), lines in image 0
    d1 = (l1 @ homogeneous(x1).T).abs() / l1[:, :2].norm(dim=-1, keepdim=True).clamp_min(1e-12)
    d0 = (homogeneous(x0) @ l0.T).abs() / l0[:, :2].norm(dim=-1)[None].clamp_min(1e-12)
    return d1, d0


def clip_lines(lines: torch.Tensor, width: float, height: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Segment of each line inside [0, W] x [0, H]: (start (..., 2), end (..., 2), valid (...)).

    A line is valid when it crosses the image border at two distinct points (> 1 px apart).
    """
    a, b, c = lines.unbind(-1)
    eps = 1e-9
    b_ = torch.where(b.abs() < eps, torch.full_like(b, eps), b)
    a_ = torch.where(a.abs() < eps, torch.full_like(a, eps), a)
    cand = torch.stack([
        torch.stack([torch.zeros_like(a), -c / b_], -1),
        torch.stack([torch.full_like(a, width), -(c + a * width) / b_], -1),
        torch.stack([-c / a_, torch.zeros_like(a)], -1),
        torch.stack([-(c + b * height) / a_, torch.full_like(a, height)], -1),
    ], -2)  # (..., 4, 2)
    tol = 1e-3
    inside = ((cand[..., 0] >= -tol) & (cand[..., 0] <= width + tol)
              & (cand[..., 1] >= -tol) & (cand[..., 1] <= height + tol) & torch.isfinite(cand).all(-1))
    direction = torch.stack([-b, a], -1)
    s = (cand * direction[..., None, :]).sum(-1)
    big = torch.finfo(s.dtype).max
    s_min = torch.where(inside, s, torch.full_like(s, big)).argmin(-1)
    s_max = torch.where(inside, s, torch.full_like(s, -big)).argmax(-1)
    start = torch.gather(cand, -2, s_min[..., None, None].expand(*s_min.shape, 1, 2)).squeeze(-2)
    end = torch.gather(cand, -2, s_max[..., None, None].expand(*s_max.shape, 1, 2)).squeeze(-2)
    valid = (inside.sum(-1) >= 2) & ((end - start).norm(dim=-1) > 1.0)
    return start, end, valid


def essential_from_pose(T_0to1: np.ndarray) -> np.ndarray:
    """E = [t]_x R for the relative pose."""
    t = T_0to1[:3, 3]
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return tx @ T_0to1[:3, :3]


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
