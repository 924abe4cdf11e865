"""D2-Net co-visibility statistics of a scene's registered views, from shared SfM points.

For views i and j observing point sets P_i and P_j:

- overlap ``O[i, j] = |P_i ∩ P_j| / |P_i|`` (asymmetric; -1 on the diagonal and where i or j is excluded);
- scale ratio ``S[i, j] = min over shared points of max(nd_i / nd_j, nd_j / nd_i)`` where the normalised
  depth ``nd = z / mean(fx, fy)`` (z = SfM depth in that camera, SfM units; fx, fy in pixels), so S is
  symmetric and >= 1 (inf where nothing is shared);
- angle ``A[i, j]`` in degrees between the two cameras' principal axes (rows 3 of the rotations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from matchforge.io.colmap import Scene, View


@dataclass
class Covisibility:
    """Pairwise statistics over ``views`` (in that order)."""

    names: list[str]
    n_points3D: np.ndarray  # (n,) int64, observations with a 3D point per image
    overlap: np.ndarray  # (n, n) float64, D2-Net |Pi ∩ Pj| / |Pi|, -1 = invalid
    scale_ratio: np.ndarray  # (n, n) float64, >= 1, inf = nothing shared
    angles: np.ndarray  # (n, n) float64, degrees between principal axes
    shared: np.ndarray  # (n, n) int64, |Pi ∩ Pj|


def _first_obs(view: View) -> dict[int, int]:
    """point3D id -> index of its first observation in ``view``."""
    ids, first = np.unique(view.point_ids, return_index=True)
    return dict(zip(ids.tolist(), first.tolist()))


def normalised_depths(scene: Scene, view: View, table: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(N,) SfM depth of each observed point over the mean focal length (D2-Net's ``ndepth``).

    ``table``: ``point_table(scene)``, to share the point lookup between views.
    """
    ids, xyz = point_table(scene) if table is None else table
    X = xyz[np.searchsorted(ids, view.point_ids)]
    z = X @ view.T_cw[2, :3] + view.T_cw[2, 3]
    return z / (0.5 * (view.K[0, 0] + view.K[1, 1]))


def point_table(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(sorted point ids, (P, 3) world coordinates in that order) of a scene."""
    ids = np.array(sorted(scene.point_xyz), dtype=np.int64)
    xyz = np.stack([scene.point_xyz[int(i)] for i in ids]) if len(ids) else np.zeros((0, 3))
    return ids, xyz


def _track_pairs(view_of: np.ndarray, value: np.ndarray, track_start: np.ndarray, track_len: np.ndarray,
                 chunk: int = 4_000_000):
    """Yield (view_a, view_b, value_a, value_b) for every pair of observations within each track."""
    for L in np.unique(track_len):
        if L < 2:
            continue
        starts = track_start[track_len == L]
        iu0, iu1 = np.triu_indices(int(L), 1)
        per = max(1, chunk // len(iu0))
        for c in range(0, len(starts), per):
            obs = starts[c:c + per, None] + np.arange(L)[None, :]
            a, b = obs[:, iu0].ravel(), obs[:, iu1].ravel()
            yield view_of[a], view_of[b], value[a], value[b]


def covisibility(scene: Scene, views: list[View], valid: np.ndarray | None = None) -> Covisibility:
    """D2-Net statistics for ``views``; pairs touching an entry with ``valid[i] == False`` get -1/inf.

    Works track by track (every pair of observations of one 3D point), so the cost grows with the
    sum of squared track lengths instead of with the number of image pairs.
    """
    n = len(views)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    table = point_table(scene)
    view_of, pid, nd = [], [], []
    n_points = np.zeros(n, np.int64)
    for k, v in enumerate(views):
        ids, keep = np.unique(v.point_ids, return_index=True)
        n_points[k] = len(ids)
        if not valid[k] or not len(ids):
            continue
        view_of.append(np.full(len(keep), k, np.int64))
        pid.append(ids)
        nd.append(normalised_depths(scene, v, table)[keep])
    shared = np.zeros((n, n), np.int64)
    scale = np.full((n, n), np.inf)
    if view_of:
        view_of, pid, nd = np.concatenate(view_of), np.concatenate(pid), np.concatenate(nd)
        order = np.argsort(pid, kind="stable")
        view_of, pid, nd = view_of[order], pid[order], nd[order]
        starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
        lengths = np.diff(np.r_[starts, len(pid)])
        keys, ratios = [], []
        for va, vb, da, db in tqdm(_track_pairs(view_of, nd, starts, lengths), desc="covisibility", disable=n < 200):
            keys.append(np.minimum(va, vb) * n + np.maximum(va, vb))
            ratios.append(np.maximum(da / db, db / da))
        if keys:
            key, ratio = np.concatenate(keys), np.concatenate(ratios)
            shared.flat[:] = np.bincount(key, minlength=n * n)
            order = np.argsort(key, kind="stable")
            key, ratio = key[order], ratio[order]
            first_of = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            scale.flat[key[first_of]] = np.minimum.reduceat(ratio, first_of)
            shared = shared + shared.T
            scale = np.minimum(scale, scale.T)
    overlap = -np.ones((n, n))
    pair_ok = valid[:, None] & valid[None, :] & (n_points[:, None] > 0) & (n_points[None, :] > 0)
    np.fill_diagonal(pair_ok, False)
    overlap[pair_ok] = (shared / np.maximum(n_points, 1)[:, None])[pair_ok]
    axes = np.stack([v.T_cw[2, :3] for v in views]) if n else np.zeros((0, 3))
    angles = np.degrees(np.arccos(np.clip(axes @ axes.T, -1.0, 1.0)))
    return Covisibility([v.name for v in views], n_points, overlap, scale, angles, shared)


def first_observations(view: View) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique point3D ids, index of each one's first observation in ``view``)."""
    return np.unique(view.point_ids, return_index=True)


def central_match(view0: View, view1: View, first0: tuple[np.ndarray, np.ndarray] | None = None,
                  first1: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray | None:
    """``[x0, y0, x1, y1]`` (COLMAP pixels) of the shared point nearest the shared points' median in view 0
    (ties: the lowest point id). ``first0``/``first1``: :func:`first_observations` of the views, computed once
    per view when a scene's pairs are many."""
    ids0, at0 = first_observations(view0) if first0 is None else first0
    ids1, at1 = first_observations(view1) if first1 is None else first1
    _, k0, k1 = np.intersect1d(ids0, ids1, assume_unique=True, return_indices=True)
    if not len(k0):
        return None
    xy0 = view0.xy[at0[k0]]
    k = int(np.argmin(np.linalg.norm(xy0 - np.median(xy0, axis=0), axis=1)))
    return np.concatenate([xy0[k], view1.xy[at1[k1[k]]]]).astype(np.float64)


def covisibility_pairwise(scene: Scene, views: list[View], valid: np.ndarray | None = None) -> Covisibility:
    """Reference implementation: D2-Net's loop over image pairs (slow; for tests and bench/ only)."""
    n = len(views)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    table = point_table(scene)
    index = [_first_obs(v) for v in views]
    nd = [normalised_depths(scene, v, table) for v in views]
    n_points = np.array([len(ix) for ix in index], np.int64)
    overlap, scale, shared = -np.ones((n, n)), np.full((n, n), np.inf), np.zeros((n, n), np.int64)
    for i in range(n):
        for j in range(i + 1, n):
            if not (valid[i] and valid[j]) or not n_points[i] or not n_points[j]:
                continue
            common = set(index[i]) & set(index[j])
            shared[i, j] = shared[j, i] = len(common)
            overlap[i, j], overlap[j, i] = len(common) / n_points[i], len(common) / n_points[j]
            if common:
                di = nd[i][[index[i][p] for p in common]]
                dj = nd[j][[index[j][p] for p in common]]
                scale[i, j] = scale[j, i] = float(np.min(np.maximum(di / dj, dj / di)))
    axes = np.stack([v.T_cw[2, :3] for v in views]) if n else np.zeros((0, 3))
    angles = np.degrees(np.arccos(np.clip(axes @ axes.T, -1.0, 1.0)))
    return Covisibility([v.name for v in views], n_points, overlap, scale, angles, shared)
