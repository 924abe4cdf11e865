"""SIFT (OpenCV) keypoints, descriptors and the SIFT baseline matcher.

Keypoints are returned in matchforge pixels of the original image (:mod:`matchforge.geometry.pixels`):
OpenCV's integer pixel centres are shifted by half a pixel of the image SIFT ran on, then scaled back.
The baseline detects on the grayscale image resized to ``img_resize`` on its long side (or at full size)
and matches by mutual nearest neighbours with Lowe's ratio test.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np

from matchforge.loftr.config import SiftRatioBaseline
from matchforge.geometry.pixels import opencv_to_matchforge
from matchforge.io.images import read_image, resize, resized_wh


@functools.lru_cache(maxsize=8)
def opencv_sift(max_keypoints: int) -> cv2.SIFT:
    """OpenCV SIFT whose keypoints follow OpenCV's pixel convention exactly: with the default
    ``enable_precise_upscale=False`` its upsampled first octave shifts every keypoint by +0.25 px."""
    return cv2.SIFT_create(max_keypoints, 3, 0.04, 10, 1.6, cv2.CV_32F, True)


def sift_features(gray: np.ndarray, max_keypoints: int, resize_to: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SIFT of a uint8 gray image, detected on the image resized to long side ``resize_to`` (None: as is).

    Returns keypoints (N, 2) float64 matchforge pixels of ``gray``, responses (N,) and descriptors (N, 128)
    float32 (OpenCV's scale, not normalised).
    """
    h, w = gray.shape
    w_new, h_new = resized_wh(w, h, resize_to)
    kps, desc = opencv_sift(max_keypoints).detectAndCompute(resize(gray, (w_new, h_new)), None)
    if desc is None or not kps:
        return np.zeros((0, 2)), np.zeros(0, np.float32), np.zeros((0, 128), np.float32)
    xy = opencv_to_matchforge(np.array([k.pt for k in kps]), np.array([w_new / w, h_new / h]))
    return xy, np.array([k.response for k in kps], np.float32), desc.astype(np.float32)


def ratio_mutual_matches(d0: np.ndarray, d1: np.ndarray, ratio: float) -> np.ndarray:
    """(M, 2) index pairs that are mutual nearest neighbours (L2) and pass Lowe's ratio test in 0 -> 1."""
    if len(d0) < 2 or len(d1) < 2:
        return np.zeros((0, 2), np.int64)
    bf = cv2.BFMatcher(cv2.NORM_L2)
    fwd = bf.knnMatch(d0, d1, k=2)
    bwd = {m.queryIdx: m.trainIdx for m in bf.match(d1, d0)}
    pairs = [(m.queryIdx, m.trainIdx) for m, n in (p for p in fwd if len(p) == 2)
             if m.distance < ratio * n.distance and bwd.get(m.trainIdx) == m.queryIdx]
    return np.array(pairs, np.int64).reshape(-1, 2)


class SiftMatcher:
    """``matcher(path0, path1) -> (kpts0, kpts1)``, (M, 2) float matchforge pixels of the original images."""

    name = "sift"

    def __init__(self, conf: Mapping[str, Any] | None = None) -> None:
        opts = SiftRatioBaseline.pick(conf, "matcher")
        self.max_keypoints = opts.max_keypoints
        self.ratio = opts.ratio
        self.img_resize = opts.img_resize

    def _features(self, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
        xy, _, desc = sift_features(read_image(path, "gray"), self.max_keypoints, self.img_resize)
        return xy, desc

    def __call__(self, path0: str | Path, path1: str | Path) -> tuple[np.ndarray, np.ndarray]:
        xy0, d0 = self._features(path0)
        xy1, d1 = self._features(path1)
        m = ratio_mutual_matches(d0, d1, self.ratio)
        return xy0[m[:, 0]], xy1[m[:, 1]]
