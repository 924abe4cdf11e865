"""Keypoint detection on PoSFeat score maps, SIFT keypoints, descriptor sampling, and mutual-NN matching.

Keypoints are (x, y) pixels in the matchforge convention (centre of pixel (r, c) = (c + 0.5, r + 0.5)).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from matchforge.posfeat.sampling import sample_descriptors
from matchforge.matchers.sift import sift_features


def detect_keypoints(score_map: torch.Tensor, nms_radius: int, thr: float, num_pts: int,
                     min_pts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints of one (1, 1, H, W) score map: hard NMS, ``score > thr``, top ``num_pts`` (at least ``min_pts``
    even below the threshold), each refined to the score-weighted mean of its 3x3 neighbourhood.

    Returns keypoints (N, 2) pixels and scores (N,).
    """
    s = score_map[0, 0]
    H, W = s.shape
    k = 2 * nms_radius + 1
    is_max = s == F.max_pool2d(s[None, None], k, 1, nms_radius)[0, 0]
    flat = torch.where(is_max, s, torch.full_like(s, -1.0)).flatten()
    n_thr = int((flat > thr).sum())
    n = min(max(n_thr, min_pts), num_pts, int((flat >= 0).sum()))
    scores, idx = flat.topk(n)
    r = torch.div(idx, W, rounding_mode="floor")
    c = idx % W
    pad = F.pad(s[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    dy, dx = torch.meshgrid(torch.arange(-1, 2, device=s.device), torch.arange(-1, 2, device=s.device), indexing="ij")
    w = pad[(r[:, None] + 1 + dy.flatten()[None]), (c[:, None] + 1 + dx.flatten()[None])].clamp_min(0)  # (N, 9)
    wsum = w.sum(1).clamp_min(1e-12)
    x = c.float() + 0.5 + (w * dx.flatten()[None]).sum(1) / wsum
    y = r.float() + 0.5 + (w * dy.flatten()[None]).sum(1) / wsum
    return torch.stack([x, y], -1), scores


def sift_keypoints(image_rgb: np.ndarray, max_num: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV SIFT at full size: keypoints (N, 2) float32 matchforge pixels, responses (N,), L2-normalised descriptors."""
    xy, resp, desc = sift_features(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY), max_num)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True).clip(1e-12)
    return xy.astype(np.float32), resp, desc


def describe(local_map: torch.Tensor, keypoints: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """L2-normalised descriptors (N, D) of a (1, D, h, w) map at keypoints (N, 2) of a W x H image."""
    return sample_descriptors(local_map, keypoints[None], width, height)[0]
