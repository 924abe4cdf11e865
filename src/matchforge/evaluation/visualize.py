"""Pictures of matches: side by side, coloured by order or by correctness (RGB arrays)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from matchforge.geometry.epipolar import essential_from_pose, symmetric_epipolar_distance
from matchforge.io.images import read_image, resize, write_image


def draw_matches(img0: np.ndarray, img1: np.ndarray, k0: np.ndarray, k1: np.ndarray, text: str = "",
                 max_lines: int = 500, colors: np.ndarray | None = None) -> np.ndarray:
    """Side-by-side RGB picture of matches (subsampled to ``max_lines``) between RGB or gray images,
    coloured by their order or by ``colors`` ((M, 3) RGB uint8, e.g. green = correct, red = wrong); ``text``
    goes on a black band above the images (readable over any sky)."""
    def rgb(im: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(im, cv2.COLOR_GRAY2RGB) if im.ndim == 2 else im

    a, b = rgb(img0), rgb(img1)
    h = max(a.shape[0], b.shape[0])
    canvas = np.zeros((h, a.shape[1] + b.shape[1], 3), np.uint8)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1]:] = b
    idx = np.arange(len(k0))
    if len(idx) > max_lines:
        idx = np.random.default_rng(0).choice(idx, max_lines, replace=False)
    for n, i in enumerate(idx):
        if colors is not None:
            color = [int(c) for c in colors[i]]
        else:
            hue = int(180 * n / max(len(idx), 1))
            color = cv2.cvtColor(np.uint8([[[hue, 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0].tolist()
        p0 = tuple(int(round(v)) for v in k0[i])
        p1 = (int(round(k1[i][0])) + a.shape[1], int(round(k1[i][1])))
        cv2.line(canvas, p0, p1, color, 1, cv2.LINE_AA)
        cv2.circle(canvas, p0, 2, color, -1, cv2.LINE_AA)
        cv2.circle(canvas, p1, 2, color, -1, cv2.LINE_AA)
    if text:
        band = np.zeros((34, canvas.shape[1], 3), np.uint8)
        cv2.putText(band, text, (8, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        canvas = np.concatenate([band, canvas], axis=0)
    return canvas


def draw_pair(rec: Any, k0: np.ndarray, k1: np.ndarray, epi_err_thr: float, title: str, path: str | Path) -> None:
    """Picture of one evaluated pair: matches green where their epipolar error is below ``epi_err_thr``, else red."""
    K0, K1 = np.asarray(rec.K0), np.asarray(rec.K1)
    ok = symmetric_epipolar_distance(k0, k1, essential_from_pose(np.asarray(rec.T_0to1)), K0, K1) < epi_err_thr if len(k0) else np.zeros(0, bool)
    colors = np.where(ok[:, None], [[60, 200, 60]], [[230, 40, 40]]).astype(np.uint8)
    img0, img1 = read_image(rec.image0), read_image(rec.image1)
    size0, size1 = getattr(rec, "size0", None), getattr(rec, "size1", None)
    img0 = img0 if size0 is None else resize(img0, tuple(size0))  # keypoints are in K's frame
    img1 = img1 if size1 is None else resize(img1, tuple(size1))
    text = f"{title}: {len(k0)} matches, {100 * ok.mean() if len(k0) else 0:.0f}% epipolar-correct"
    write_image(path, draw_matches(img0, img1, k0, k1, text, colors=colors))

