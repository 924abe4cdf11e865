"""Coloured previews of depth maps for people (not for training): JPEG, turbo colour map of inverse depth
(near = warm), robust 2-98 percentile range, with a colour scale on the right labelled in the map's own units
(SfM units for ``sfm`` maps); invalid pixels show the image itself, dimmed grey (or black without an image),
so sparse maps can be read against the scene."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from matchforge.io.images import write_image


def _range(values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The values the colour map shows (inverse depth, or disparity as is), their validity and 2-98 % range."""
    v = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(v)
    if kind != "disparity":
        valid &= v > 0
        v = np.where(valid, 1.0 / np.where(valid, v, 1.0), np.nan)
    lo, hi = np.percentile(v[valid], [2, 98]) if valid.any() else (0.0, 1.0)
    return v, valid, float(lo), float(hi if hi > lo else lo + 1.0)


def _colour(v: np.ndarray, valid: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """RGB uint8 of the values `_range` returns: turbo over [lo, hi], black where invalid."""
    from matplotlib import colormaps

    rgb = np.zeros(v.shape + (3,), dtype=np.uint8)
    if valid.any():
        t = np.clip((v[valid] - lo) / (hi - lo), 0, 1)
        rgb[valid] = (colormaps["turbo"](t)[:, :3] * 255).astype(np.uint8)
    return rgb


def colorize(values: np.ndarray, kind: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a raw map; ``kind`` ``disparity`` is shown as is, depth kinds inverted."""
    return _colour(*_range(values, kind))


def scale_bar(height: int, lo: float, hi: float, kind: str, width: int = 96) -> np.ndarray:
    """RGB (height, width, 3) colour scale of a map coloured over [``lo``, ``hi``] of :func:`_range`'s values:
    the gradient, and the depth (or disparity) at its top, middle and bottom. Depth kinds: top = near (the
    98th percentile of inverse depth), bottom = far."""
    from matplotlib import colormaps

    bar = np.full((height, width, 3), 255, np.uint8)
    top, bottom = 22, max(height - 8, 24)
    t = np.linspace(1.0, 0.0, bottom - top)
    bar[top:bottom, 4:22] = (colormaps["turbo"](t)[:, None, :3] * 255).astype(np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    cv2.putText(bar, "disparity" if kind == "disparity" else f"depth ({kind})", (2, 14), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    for frac in (0.0, 0.5, 1.0):
        shown = hi - frac * (hi - lo)  # the value the colour map shows at this height
        label = shown if kind == "disparity" else 1.0 / shown if shown > 0 else float("inf")
        y = int(top + frac * (bottom - top - 1))
        cv2.putText(bar, f"{label:.3g}", (26, min(max(y + 4, 30), height - 4)), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def write_preview(path: str | Path, values: np.ndarray, kind: str, image: np.ndarray | None = None,
                  quality: int = 85) -> None:
    """Write the preview JPEG (the map, then its colour scale on the right); ``image`` (RGB uint8, same size)
    fills the invalid pixels, dimmed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    v, valid, lo, hi = _range(values, kind)
    rgb = _colour(v, valid, lo, hi)
    if image is not None and image.shape[:2] == rgb.shape[:2]:
        grey = (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) * 0.4).astype(np.uint8)
        rgb[~valid] = grey[~valid, None]
    write_image(path, np.concatenate([rgb, scale_bar(rgb.shape[0], lo, hi, kind)], axis=1), quality=quality)
