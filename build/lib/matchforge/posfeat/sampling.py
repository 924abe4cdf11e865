"""Sampling PoSFeat's dense maps at keypoints (epipolar geometry: :mod:`matchforge.geometry.epipolar`).

Pixel convention (:mod:`matchforge.geometry.pixels`): x in [0, W], y in [0, H], the centre of pixel (r, c) is
(c + 0.5, r + 0.5). ``grid_sample(..., align_corners=False)`` uses the same convention, so a point
maps to normalised coordinates by ``2 * x / W - 1`` whatever the resolution of the sampled map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


