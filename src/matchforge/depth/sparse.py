"""The ``sparse`` backend: depth from the SfM points an image observes, densified only where it is safe.

No network and no download, so it runs offline (the demo, CI). Each observed point writes its SfM depth
``z`` (camera frame, SfM units) into the pixel that contains its observation; where several points fall
into one pixel the nearest surface (smallest ``z``) wins. A pixel within ``radius`` px of a point takes
the depth of its nearest point, but only if every point in the (2*radius+1)^2 window around that pixel
agrees with it:
``(z_max - z_min) / z_min <= max_rel_spread``. That keeps depth discontinuities (a pillar in front of a
facade) from being smeared into wrong depth. Everything else is invalid (NaN in the raw map, 0 in H5).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy import ndimage

from matchforge.depth.config import DepthSparse

# Defaults, mirrored in src/matchforge/schemas/depth.schema.yaml (section depth.sparse).


def splat_points(height: int, width: int, xy: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(H, W) float map with each point's ``z`` at pixel ``floor(y), floor(x)`` (min over ties), NaN elsewhere."""
    out = np.full((height, width), np.inf)
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    z = np.asarray(z, dtype=np.float64)
    c = np.floor(xy[:, 0]).astype(np.int64)
    r = np.floor(xy[:, 1]).astype(np.int64)
    ok = (c >= 0) & (c < width) & (r >= 0) & (r < height) & np.isfinite(z) & (z > 0)
    np.minimum.at(out, (r[ok], c[ok]), z[ok])
    out[np.isinf(out)] = np.nan
    return out


def densify(height: int, width: int, xy: np.ndarray, z: np.ndarray,
            conf: Mapping[str, Any] | None = None) -> np.ndarray:
    """Sparse-to-semi-dense depth (H, W) in the units of ``z``; NaN = invalid. See the module docstring."""
    conf = DepthSparse.of(conf, "depth.sparse").to_dict()
    seeds = splat_points(height, width, xy, z)
    has = np.isfinite(seeds)
    radius = int(conf["radius"])
    if radius <= 0 or not has.any():
        return seeds
    dist, (ri, ci) = ndimage.distance_transform_edt(~has, return_indices=True)
    nearest = seeds[ri, ci]
    # square window (separable, fast): a superset of the disk, so the check is if anything stricter
    size = 2 * radius + 1
    zmax = ndimage.maximum_filter(np.where(has, seeds, -np.inf), size=size, mode="constant", cval=-np.inf)
    zmin = ndimage.minimum_filter(np.where(has, seeds, np.inf), size=size, mode="constant", cval=np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = (zmax - zmin) <= float(conf["max_rel_spread"]) * zmin
    out = np.where((dist <= radius) & agree, nearest, np.nan)
    out[has] = seeds[has]
    return out
