"""Epipolar geometry and map sampling shared by the PoSFeat losses, visualisation and extraction.

Pixel convention (:mod:`matchforge.geometry.pixels`): x in [0, W], y in [0, H], the centre of pixel (r, c) is
(c + 0.5, r + 0.5). ``grid_sample(..., align_corners=False)`` uses the same convention, so a point
maps to normalised coordinates by ``2 * x / W - 1`` whatever the resolution of the sampled map.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def skew(t: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix."""
    z = torch.zeros_like(t[..., 0])
    return torch.stack([torch.stack([z, -t[..., 2], t[..., 1]], -1),
                        torch.stack([t[..., 2], z, -t[..., 0]], -1),
                        torch.stack([-t[..., 1], t[..., 0], z], -1)], -2)


def fundamental_from_poses(K0: torch.Tensor, K1: torch.Tensor, T0: torch.Tensor, T1: torch.Tensor) -> torch.Tensor:
    """F (..., 3, 3) with ``x1^T F x0 = 0`` for pixel points; poses are world->camera 4x4.

    ``T_0to1 = T1 inv(T0)``, ``E = [t]x R``, ``F = K1^-T E K0^-1``, scaled to unit Frobenius norm
    (the scale does not matter: distances below divide by the line normal).
    """
    rel = T1 @ torch.linalg.inv(T0)
    E = skew(rel[..., :3, 3]) @ rel[..., :3, :3]
    Fm = torch.linalg.inv(K1).transpose(-1, -2) @ E @ torch.linalg.inv(K0)
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


def to_grid(x: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Pixels -> grid_sample coordinates in [-1, 1] (align_corners=False)."""
    return torch.stack([2 * x[..., 0] / width - 1, 2 * x[..., 1] / height - 1], -1)


def sample_descriptors(desc_map: torch.Tensor, x: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Bilinear, L2-normalised descriptors at pixels ``x`` (B, ..., 2) of a (B, D, h, w) map -> (B, ..., D)."""
    B = desc_map.shape[0]
    shape = x.shape[1:-1]
    grid = to_grid(x.reshape(B, -1, 1, 2), width, height)
    d = F.grid_sample(desc_map, grid, mode="bilinear", align_corners=False, padding_mode="border")
    d = d[..., 0].transpose(1, 2).reshape(B, *shape, desc_map.shape[1])
    return F.normalize(d, dim=-1)


def relative_rotation_deg(T0: np.ndarray, T1: np.ndarray) -> float:
    """Angle (degrees) of the relative rotation between two world->camera poses."""
    R = T1[:3, :3] @ T0[:3, :3].T
    return float(np.rad2deg(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0))))
