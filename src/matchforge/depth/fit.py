"""Robust fits of a predicted map to SfM depths (what turns a network's output into SfM units).

- Relative models predict *affine-invariant inverse depth* ``d`` (disparity up to an unknown scale and
  shift). We fit ``1/z ~ a*d + b`` with ``a > 0``; the residual is the relative error in inverse depth,
  ``r = z*(a*d + b) - 1`` (about minus the relative depth error), which is linear in ``(a, b)`` and
  scale-free. RANSAC on 2-point samples, then iteratively reweighted least squares (Cauchy weights) on the
  inliers. Depth is ``1/(a*d + b)`` where that is positive and not beyond ``max_depth_ratio`` times the
  farthest SfM point, else 0 (invalid).
- Metric models predict depth up to the SfM gauge: one scale ``s`` with ``z ~ s*D`` (robust median).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from matchforge.depth.config import DepthAlign

# Defaults, mirrored in src/matchforge/schemas/depth.schema.yaml (section depth.align).


@dataclass
class Fit:
    """Result of one image's fit. ``a, b``: inverse-depth affine map (relative); ``a`` = scale (metric)."""

    model: str  # "inverse_affine" | "scale" | "none"
    a: float
    b: float
    n_points: int
    n_inliers: int
    abs_rel: float  # median |z_pred / z - 1| over the fit points (inliers and outliers)
    ok: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def holdout_mask(point_ids: np.ndarray, percent: float) -> np.ndarray:
    """Deterministic held-out subset of SfM points (same points in every image and every run)."""
    h = (np.asarray(point_ids, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return (h % np.uint64(100)).astype(np.float64) < percent


def sample_nearest(depth: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Values of ``depth[r, c]`` at COLMAP pixel coordinates ``xy`` (N, 2): pixel ``floor(y), floor(x)``.

    Points outside the map get NaN.
    """
    h, w = depth.shape
    c = np.floor(xy[:, 0]).astype(np.int64)
    r = np.floor(xy[:, 1]).astype(np.int64)
    inside = (c >= 0) & (c < w) & (r >= 0) & (r < h)
    out = np.full(len(xy), np.nan, dtype=np.float64)
    out[inside] = depth[r[inside], c[inside]]
    return out


def _solve_weighted(d: np.ndarray, z: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    A = np.stack([z * d, z], axis=1) * np.sqrt(w)[:, None]
    y = np.sqrt(w)
    sol, *_ = np.linalg.lstsq(A, y, rcond=None)
    return float(sol[0]), float(sol[1])


def fit_inverse_affine(d: np.ndarray, z: np.ndarray, conf: Mapping[str, Any] | None = None) -> Fit:
    """Fit ``1/z ~ a*d + b`` (``a > 0``) robustly; ``d`` predicted disparity, ``z`` SfM depth (> 0)."""
    conf = DepthAlign.of(conf, "depth.align").to_dict()
    d = np.asarray(d, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    keep = np.isfinite(d) & np.isfinite(z) & (z > 0)
    d, z = d[keep], z[keep]
    n = len(d)
    if n < max(int(conf["min_points"]), 2):
        return Fit("inverse_affine", np.nan, np.nan, n, 0, np.nan, False, f"too few points ({n})")
    thr = float(conf["inlier_threshold"])
    rng = np.random.default_rng(int(conf["seed"]))
    best, best_key = None, (-1, np.inf)
    for _ in range(int(conf["ransac_iterations"])):
        i, j = rng.choice(n, 2, replace=False)
        if abs(d[i] - d[j]) < 1e-12:
            continue
        a = (1 / z[i] - 1 / z[j]) / (d[i] - d[j])
        if a <= 0:
            continue
        b = 1 / z[i] - a * d[i]
        r = np.abs(z * (a * d + b) - 1)
        inl = r < thr
        key = (int(inl.sum()), float(np.minimum(r, thr).sum()))
        if key[0] > best_key[0] or (key[0] == best_key[0] and key[1] < best_key[1]):
            best, best_key = (a, b), key
    if best is None:
        a, b = _solve_weighted(d, z, np.ones(n))
    else:
        a, b = best
    for _ in range(10):  # IRLS with Cauchy weights, restricted to the current inliers
        r = z * (a * d + b) - 1
        inl = np.abs(r) < thr
        if inl.sum() < 2:
            break
        w = 1.0 / (1.0 + (r[inl] / (thr / 2)) ** 2)
        a, b = _solve_weighted(d[inl], z[inl], w)
    r = z * (a * d + b) - 1
    inl = np.abs(r) < thr
    inv = a * d + b
    with np.errstate(divide="ignore", invalid="ignore"):
        zp = np.where(inv > 0, 1.0 / inv, np.inf)
    abs_rel = float(np.median(np.abs(zp / z - 1)))
    fit = Fit("inverse_affine", float(a), float(b), n, int(inl.sum()), abs_rel, True)
    return _judge(fit, conf)


def fit_scale(D: np.ndarray, z: np.ndarray, conf: Mapping[str, Any] | None = None) -> Fit:
    """Fit ``z ~ s*D`` (metric prediction ``D`` to SfM depth ``z``) with a robust median."""
    conf = DepthAlign.of(conf, "depth.align").to_dict()
    D = np.asarray(D, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    keep = np.isfinite(D) & (D > 0) & np.isfinite(z) & (z > 0)
    D, z = D[keep], z[keep]
    n = len(D)
    if n < max(int(conf["min_points"]), 1):
        return Fit("scale", np.nan, 0.0, n, 0, np.nan, False, f"too few points ({n})")
    thr = float(conf["inlier_threshold"])
    s = float(np.median(z / D))
    for _ in range(5):
        inl = np.abs(s * D / z - 1) < thr
        if not inl.any():
            break
        s = float(np.median(z[inl] / D[inl]))
    inl = np.abs(s * D / z - 1) < thr
    fit = Fit("scale", s, 0.0, n, int(inl.sum()), float(np.median(np.abs(s * D / z - 1))), True)
    return _judge(fit, conf)


def _judge(fit: Fit, conf: Mapping[str, Any]) -> Fit:
    if not (np.isfinite(fit.a) and fit.a > 0):
        fit.ok, fit.reason = False, f"non-positive scale a={fit.a:.3g}"
    elif fit.abs_rel > float(conf["max_abs_rel"]):
        fit.ok, fit.reason = False, f"residual AbsRel {fit.abs_rel:.3f} > max_abs_rel {conf['max_abs_rel']}"
    elif fit.n_inliers < float(conf["min_inlier_ratio"]) * fit.n_points:
        fit.ok, fit.reason = False, (f"inlier ratio {fit.n_inliers}/{fit.n_points} < "
                                     f"min_inlier_ratio {conf['min_inlier_ratio']}")
    return fit


def apply_fit(pred: np.ndarray, fit: Fit, z_max: float, max_depth_ratio: float) -> np.ndarray:
    """Depth in SfM units from a prediction and its fit; 0 where invalid or beyond ``ratio * z_max``."""
    p = np.asarray(pred, dtype=np.float64)
    limit = max_depth_ratio * z_max if max_depth_ratio > 0 else np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        if fit.model == "inverse_affine":
            inv = fit.a * p + fit.b
            depth = np.where(inv > 0, 1.0 / inv, 0.0)
        elif fit.model == "scale":
            depth = np.where(p > 0, fit.a * p, 0.0)
        else:
            depth = np.where(p > 0, p, 0.0)
    depth = np.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0)
    depth[depth > limit] = 0.0
    return depth.astype(np.float32)
