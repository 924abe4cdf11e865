"""SIFT baseline matcher (OpenCV): the same interface as the LoFTR matcher, for the same evaluation.

Keypoints are detected on the grayscale image resized to ``img_resize`` on its long side (or at full
size), described with SIFT, matched by mutual nearest neighbours with Lowe's ratio test, and
returned in COLMAP pixel coordinates of the original image (the frame of the intrinsics it is scored
with; see ``matchforge.scene``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.loftr.data import resized_wh
from matchforge.scene import opencv_sift, opencv_to_colmap


class SiftMatcher:
    """``matcher(path0, path1) -> (kpts0, kpts1)``, (M, 2) float pixels of the original images."""

    name = "sift"

    def __init__(self, conf: Mapping[str, Any] | None = None, img_resize: int | None = None) -> None:
        conf = dict(conf or {})
        self.max_keypoints = int(conf.get("max_keypoints", 4096))
        self.ratio = float(conf.get("ratio", 0.8))
        self.img_resize = conf.get("img_resize") or img_resize
        self.sift = opencv_sift(self.max_keypoints)

    def _features(self, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise MatchforgeError("cannot read image", path=path, fix="check that the file exists and is a readable photo")
        h, w = img.shape
        w_new, h_new = resized_wh(w, h, self.img_resize)
        if (w_new, h_new) != (w, h):
            img = cv2.resize(img, (w_new, h_new), interpolation=cv2.INTER_AREA)
        kps, desc = self.sift.detectAndCompute(img, None)
        if desc is None or not kps:
            return np.zeros((0, 2)), np.zeros((0, 128), np.float32)
        xy = opencv_to_colmap(np.array([k.pt for k in kps]), np.array([w_new / w, h_new / h]))
        return xy, desc.astype(np.float32)

    def __call__(self, path0: str | Path, path1: str | Path) -> tuple[np.ndarray, np.ndarray]:
        xy0, d0 = self._features(path0)
        xy1, d1 = self._features(path1)
        if len(xy0) < 2 or len(xy1) < 2:
            return np.zeros((0, 2)), np.zeros((0, 2))
        bf = cv2.BFMatcher(cv2.NORM_L2)
        fwd = bf.knnMatch(d0, d1, k=2)
        bwd = {m.queryIdx: m.trainIdx for m in bf.match(d1, d0)}
        pairs = [(m.queryIdx, m.trainIdx) for m, n in (p for p in fwd if len(p) == 2)
                 if m.distance < self.ratio * n.distance and bwd.get(m.trainIdx) == m.queryIdx]
        if not pairs:
            return np.zeros((0, 2)), np.zeros((0, 2))
        i0, i1 = np.array(pairs).T
        return xy0[i0], xy1[i1]
