"""The public recipe's depth conversion, kept ONLY as a broken baseline for comparison (never for training).

The recipe (kangpeilun/LoFTR-train @3541a6b, see docs/depth.md) stores Depth-Anything's per-image
min-max normalised *disparity*, quantised to 8 bits, and divides it by 100 to call it depth:
larger = nearer, arbitrary per-image scale and shift, the farthest pixel becomes 0 (invalid for LoFTR),
and no relation to the SfM units. :func:`seed_recipe_depth` reproduces that from any of our raw maps.
"""

from __future__ import annotations

import numpy as np


def seed_recipe_depth(raw: np.ndarray, kind: str) -> np.ndarray:
    """BROKEN BASELINE: the recipe's "depth" (float, 0 = invalid) from a raw map (NaN = invalid).

    ``kind`` ``disparity`` is used as the network disparity; depth kinds (``sfm``, ``metric``) are
    turned into disparity by ``1/depth`` first, which is what a disparity network would have predicted.
    """
    v = np.asarray(raw, dtype=np.float64)
    valid = np.isfinite(v)
    if kind != "disparity":
        valid &= v > 0
        v = np.where(valid, 1.0 / np.where(valid, v, 1.0), np.nan)
    out = np.zeros(v.shape, dtype=np.float64)
    if not valid.any():
        return out.astype(np.float32)
    lo, hi = v[valid].min(), v[valid].max()
    norm = (v[valid] - lo) / (hi - lo if hi > lo else 1.0) * 255.0
    out[valid] = norm.astype(np.uint8) / 100.0  # uint8 cast as cv2.imwrite + IMREAD_GRAYSCALE would do
    return out.astype(np.float32)
