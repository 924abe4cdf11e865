"""Track-transfer error of depth maps (docs/depth.md, section 4): does the depth move one observation of an SfM
point onto the other observations of the same point?

For every ordered pair of views (i, j) that observe the same 3D point at COLMAP pixels ``x_i``, ``x_j``:
read ``z = depth_i[floor(y_i), floor(x_i)]`` (skipped where 0/invalid), unproject
``X_cam = z * K_i^-1 [x_i, y_i, 1]``, go to world with ``T_cw_i^-1``, project with ``K_j, T_cw_j`` and
measure ``|x_j' - x_j|`` in pixels of view j. Points landing behind camera j count as infinite error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from matchforge.io.colmap import Scene


@dataclass
class TransferErrors:
    """Per source view: errors (px) over all its valid transfers, and how many observations had no depth."""

    errors: dict[str, np.ndarray]
    n_invalid: dict[str, int]

    def all(self) -> np.ndarray:
        arr = [e for e in self.errors.values() if len(e)]
        return np.concatenate(arr) if arr else np.zeros(0)


def summarize(err: np.ndarray) -> dict[str, float | int | None]:
    """Median px and shares within 2 and 5 px (None when there is nothing to measure)."""
    if len(err) == 0:
        return {"n": 0, "median_px": None, "within_2px": None, "within_5px": None}
    return {"n": int(len(err)), "median_px": float(np.median(err)),
            "within_2px": float(np.mean(err <= 2.0)), "within_5px": float(np.mean(err <= 5.0))}


def depth_at_observations(depth: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``depth[floor(y), floor(x)]`` at COLMAP pixel coordinates ``xy`` (N, 2); 0 outside the map."""
    h, w = depth.shape
    c = np.floor(xy[:, 0]).astype(np.int64)
    r = np.floor(xy[:, 1]).astype(np.int64)
    inside = (c >= 0) & (c < w) & (r >= 0) & (r < h)
    z = np.zeros(len(xy))
    z[inside] = depth[r[inside], c[inside]]
    return z


def track_transfer(scene: Scene, depths: Mapping[str, np.ndarray]) -> TransferErrors:
    """Errors for every view name in ``depths`` as the source view.

    ``depths[name]`` is either the view's depth map (H x W, SfM units, 0 = invalid) or, to keep memory
    small on large scenes, that map already sampled at the view's observations (shape (N,), aligned with
    ``view.xy``; see :func:`depth_at_observations`). Target views are all views of ``scene`` that observe
    the point (their observations are the truth).
    """
    names = list(scene.views)
    pids, vidx, xys = [], [], []
    for k, name in enumerate(names):
        v = scene.views[name]
        pids.append(v.point_ids)
        vidx.append(np.full(len(v.point_ids), k))
        xys.append(v.xy)
    pid_all = np.concatenate(pids) if pids else np.zeros(0, np.int64)
    order = np.argsort(pid_all, kind="stable")
    pid_s = pid_all[order]
    view_s = np.concatenate(vidx)[order] if pids else np.zeros(0, np.int64)
    xy_s = np.concatenate(xys)[order] if pids else np.zeros((0, 2))
    Ks = np.stack([scene.views[n].K for n in names])
    Ts = np.stack([scene.views[n].T_cw for n in names])

    errors: dict[str, np.ndarray] = {}
    n_invalid: dict[str, int] = {}
    for name, depth in depths.items():
        v = scene.views[name]
        i = names.index(name)
        z = depth_at_observations(depth, v.xy) if depth.ndim == 2 else np.asarray(depth, dtype=np.float64)
        ok = np.isfinite(z) & (z > 0)
        n_invalid[name] = int((~ok).sum())
        if not ok.any():
            errors[name] = np.zeros(0)
            continue
        rays = np.linalg.solve(v.K, np.c_[v.xy[ok], np.ones(ok.sum())].T).T
        Xc = rays * z[ok, None]
        R, t = v.T_cw[:3, :3], v.T_cw[:3, 3]
        Xw = (Xc - t) @ R  # R^T (Xc - t)
        # all observations of the same points: contiguous ranges in the pid-sorted table
        lo = np.searchsorted(pid_s, v.point_ids[ok], side="left")
        hi = np.searchsorted(pid_s, v.point_ids[ok], side="right")
        counts = hi - lo
        src = np.repeat(np.arange(len(lo)), counts)
        idx = np.repeat(lo - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(counts.sum())
        tgt_view = view_s[idx]
        keep = tgt_view != i
        src, idx, tgt_view = src[keep], idx[keep], tgt_view[keep]
        Rj, tj = Ts[tgt_view, :3, :3], Ts[tgt_view, :3, 3]
        Xj = np.einsum("nab,nb->na", Rj, Xw[src]) + tj
        proj = np.einsum("nab,nb->na", Ks[tgt_view], Xj)
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = proj[:, :2] / proj[:, 2:3]
            err = np.linalg.norm(uv - xy_s[idx], axis=1)
        err[~(Xj[:, 2] > 0)] = np.inf
        errors[name] = err
    return TransferErrors(errors, n_invalid)
