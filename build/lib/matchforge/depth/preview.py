"""Coloured previews of depth maps for people (not for training): JPEG, turbo colour map of inverse depth
(near = warm), robust 2-98 percentile range; invalid pixels show the image itself, dimmed grey (or black
without an image), so sparse maps can be read against the scene."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from matchforge.io.images import write_image


def colorize(values: np.ndarray, kind: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a raw map; ``kind`` ``disparity`` is shown as is, depth kinds inverted."""
    from matplotlib import colormaps

    v = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(v)
    if kind != "disparity":
        valid &= v > 0
        v = np.where(valid, 1.0 / np.where(valid, v, 1.0), np.nan)
    rgb = np.zeros(v.shape + (3,), dtype=np.uint8)
    if valid.any():
        lo, hi = np.percentile(v[valid], [2, 98])
        t = np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        colors = (colormaps["turbo"](t[valid])[:, :3] * 255).astype(np.uint8)
        rgb[valid] = colors
    return rgb


def write_preview(path: str | Path, values: np.ndarray, kind: str, image: np.ndarray | None = None,
                  quality: int = 85) -> None:
    """Write the preview JPEG; ``image`` (RGB uint8, same size) fills the invalid pixels, dimmed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = colorize(values, kind)
    if image is not None and image.shape[:2] == rgb.shape[:2]:
        v = np.asarray(values)
        invalid = ~np.isfinite(v) | ((v <= 0) if kind != "disparity" else False)
        grey = (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) * 0.4).astype(np.uint8)
        rgb[invalid] = grey[invalid, None]
    write_image(path, rgb, quality=quality)
