"""Deterministic train/val/test splits: by whole scene, or by viewpoint within one scene.

Both are pure functions of their inputs and a seed, so the same config always yields the same split.

**By viewpoint** (:func:`split_by_viewpoint`). A random split by image puts test photos between training
neighbours (every other frame of a walk-through), so "unseen" test views are near-copies of training
views. Instead the test (and val) photos are a compact group of cameras grown from a seed camera, and
training cameras closer to that group than its own neighbour spacing are left out (a buffer), so that
no test photo's nearest training camera is closer than the test photos are to each other.

Camera distance is unitless: ``sqrt((|c_i - c_j| / s_c)^2 + (angle_ij / s_a)^2)`` with camera centres
``c`` (SfM units), viewing directions (optical axes), and ``s_c``/``s_a`` the median nearest-neighbour
centre distance and view angle of the scene's cameras. A test photo's **separation** is its distance
to the nearest training camera divided by the test group's **spacing** (median distance of a test
photo to its nearest other test photo); the split is *separated* when every test (and val) photo has
separation > 1: training cameras at one spacing or closer are left out as the buffer.

Near-duplicate photos (one group per set of re-encodings or copies, from perceptual hashes) always
land in the same split. A pair is kept only when both of its images are in the same split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

SPLITS = ("train", "val", "test")
TRAIN, VAL, TEST = range(3)


def _counts(n: int, val_fraction: float, test_fraction: float, min_size: int) -> tuple[int, int]:
    """(n_val, n_test) for ``n`` items: test gets at least ``min_size``, val 0 or at least ``min_size``."""
    n_test = max(min_size, round(test_fraction * n))
    n_val = round(val_fraction * n)
    if n_val:
        n_val = max(min_size, n_val)
    while n - n_test - n_val < min_size and n_val:
        n_val = 0
    return n_val, n_test


def split_scenes(scenes: Sequence[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """scene -> 'train' | 'val' | 'test'. Needs at least two scenes; test gets at least one."""
    scenes = sorted(scenes)
    if len(scenes) < 2:
        raise ValueError("a split by scene needs at least two scenes")
    n_val, n_test = _counts(len(scenes), val_fraction, test_fraction, 1)
    order = np.random.default_rng(seed).permutation(len(scenes))
    out = {}
    for rank, k in enumerate(order):
        out[scenes[k]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def pairs_per_split(assign: np.ndarray, pairs: np.ndarray) -> dict[str, int]:
    """Number of ``pairs`` ((m, 2) image indices) whose two images are in the same split, per split."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    a0, a1 = assign[pairs[:, 0]], assign[pairs[:, 1]]
    same = a0 == a1
    return {s: int(np.count_nonzero(same & (a0 == k))) for k, s in enumerate(SPLITS)}


def camera_geometry(poses: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """(centres (n, 3), unit viewing directions (n, 3)) from world->camera 4x4 poses; NaN where None."""
    centres = np.full((len(poses), 3), np.nan)
    dirs = np.full((len(poses), 3), np.nan)
    for i, T in enumerate(poses):
        if T is None:
            continue
        T = np.asarray(T, np.float64)
        R, t = T[:3, :3], T[:3, 3]
        centres[i] = -R.T @ t
        dirs[i] = R[2]  # the optical axis in world coordinates (R^T e_z)
    return centres, dirs


def camera_distances(centres: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Unitless distances between cameras (see the module docstring); (n, n), inf on the diagonal."""
    dc = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    da = np.arccos(np.clip(dirs @ dirs.T, -1.0, 1.0))
    n = len(centres)
    if n < 2:
        return np.full((n, n), np.inf)
    np.fill_diagonal(dc, np.inf)
    np.fill_diagonal(da, np.inf)
    s_c = float(np.median(dc.min(1))) or 1.0
    s_a = float(np.median(da.min(1))) or 1.0
    d = np.sqrt((dc / s_c) ** 2 + (da / s_a) ** 2)
    np.fill_diagonal(d, np.inf)
    return d


@dataclass
class ViewpointSplit:
    """A split of one scene's images; indices refer to the scene-info file's images."""

    assign: np.ndarray  # per image: 0 train, 1 val, 2 test, -1 unused (no pose/depth, or buffer)
    buffer: list[int] = field(default_factory=list)  # left out to keep train away from val/test
    spacing: dict[str, float] = field(default_factory=dict)  # per held-out split: its neighbour spacing
    separation: dict[int, tuple[float, int]] = field(default_factory=dict)  # held-out image -> (ratio, nearest train)
    separated: bool = True


def _unit_distances(img_dist: np.ndarray, units: list[np.ndarray]) -> np.ndarray:
    """(U, U) single-linkage distances between units (groups of images), inf on the diagonal."""
    members = np.concatenate(units)
    starts = np.r_[0, np.cumsum([len(u) for u in units])[:-1]]
    d = np.minimum.reduceat(img_dist[np.ix_(members, members)], starts, axis=0)
    d = np.minimum.reduceat(d, starts, axis=1)
    np.fill_diagonal(d, np.inf)
    return d


def _grow(seed: int, units: list[np.ndarray], dist: np.ndarray, size: int, taken: np.ndarray) -> list[int]:
    """Units of a compact group grown from unit ``seed`` by single linkage until it holds ``size`` images."""
    group, count = [seed], len(units[seed])
    free = ~taken.copy()
    free[seed] = False
    link = dist[seed].copy()  # distance of every unit to the group
    while count < size and free.any():
        nxt = int(np.argmin(np.where(free, link, np.inf)))
        group.append(nxt)
        count += len(units[nxt])
        free[nxt] = False
        link = np.minimum(link, dist[nxt])
    return group


def _separation(assign: np.ndarray, dist: np.ndarray, split: int) -> tuple[float, dict[int, tuple[float, int]]]:
    """(spacing of ``split``'s images, {image: (distance to nearest train image / spacing, that image)})."""
    held = np.flatnonzero(assign == split)
    train = np.flatnonzero(assign == TRAIN)
    if len(held) < 2 or not len(train):
        return float("nan"), {}
    spacing = float(np.median(dist[np.ix_(held, held)].min(1)))
    to_train = dist[np.ix_(held, train)]
    nearest = train[to_train.argmin(1)]
    ratio = to_train.min(1) / spacing if spacing > 0 else np.full(len(held), np.inf)
    return spacing, {int(i): (float(r), int(j)) for i, r, j in zip(held, ratio, nearest)}


def split_by_viewpoint(poses: Sequence[np.ndarray | None], usable: Sequence[bool], pairs: np.ndarray,
                       val_fraction: float, test_fraction: float, seed: int, max_buffer_fraction: float,
                       tries: int | None = None, groups: Sequence[int] | None = None) -> ViewpointSplit:
    """Split one scene's images into train / val / test groups of cameras (see the module docstring).

    Args:
        poses: world->camera 4x4 per image (None: no pose).
        usable: whether image i can be used at all (pose and depth).
        pairs: (m, 2) image indices of the scene's pairs.
        val_fraction, test_fraction: shares of the usable images held out.
        seed, tries: the seed cameras of the test group are tried in a seeded random order, at most ``tries``
            (None: min(500, max(10, 20000 // n)) for n usable images, as each try costs O(n^2)).
        groups: a group id per image; images sharing one (near-duplicates) always share a split.
        max_buffer_fraction: at most this share of the usable images is left out as a buffer.

    Returns the candidate that (in this order) has pairs in every requested split, is separated, keeps
    the most pairs, and leaves the fewest images out. Raises ValueError with fewer than 4 usable images.
    """
    usable = np.asarray(usable, bool)
    idx = np.flatnonzero(usable)
    n = len(idx)
    if n < 4:
        raise ValueError(f"a split by images needs at least 4 usable images, got {n}")
    n_val, n_test = _counts(n, val_fraction, test_fraction, 2)
    gid = np.asarray(groups if groups is not None else np.arange(len(usable)))
    units = [idx[gid[idx] == g] for g in dict.fromkeys(gid[idx].tolist())]  # near-duplicates move together
    centres, dirs = camera_geometry(poses)
    img_dist = np.full((len(usable), len(usable)), np.inf)
    img_dist[np.ix_(idx, idx)] = camera_distances(centres[idx], dirs[idx])
    unit_dist = _unit_distances(img_dist, units)
    unit_of = np.full(len(usable), -1, np.int64)
    for u, members in enumerate(units):
        unit_of[members] = u
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    wanted = [k for k, size in ((TRAIN, 1), (VAL, n_val), (TEST, n_test)) if size]
    max_buffer = int(np.floor(max_buffer_fraction * n))
    if tries is None:  # each try costs O(n^2) numpy work: 500 tries up to 40 images, 10 at 2,000
        tries = min(500, max(10, 20_000 // n))
    order = np.random.default_rng(seed).permutation(len(units))[:max(1, tries)]
    best, best_key = None, None
    for s in order:
        taken = np.zeros(len(units), bool)
        test = _grow(int(s), units, unit_dist, n_test, taken)
        taken[test] = True
        val: list[int] = []
        if n_val:
            far = np.where(taken, -np.inf, unit_dist[test].min(0))
            val = _grow(int(np.argmax(far)), units, unit_dist, n_val, taken)
            taken[val] = True
        assign = np.full(len(usable), -1, np.int64)
        assign[idx] = TRAIN
        for k, chosen in ((TEST, test), (VAL, val)):
            for u in chosen:
                assign[units[u]] = k
        # buffer: training units within one spacing of a held-out image of that split
        buffer: list[int] = []
        for k in (VAL, TEST):
            spacing, _ = _separation(assign, img_dist, k)
            if not np.isfinite(spacing):
                continue
            near = np.flatnonzero((assign == TRAIN) & (img_dist[:, assign == k].min(1) <= spacing * (1 + 1e-9)))
            buffer += np.unique(unit_of[near]).tolist()
        buffer_images = [int(i) for u in dict.fromkeys(buffer) for i in units[u]]
        if 0 < len(buffer_images) <= max_buffer:
            assign[buffer_images] = -1
        else:
            buffer_images = []
        seps = {k: _separation(assign, img_dist, k) for k in (VAL, TEST) if (assign == k).any()}
        separated = all(r > 1.0 + 1e-9 for _, ratios in seps.values() for r, _ in ratios.values())
        counts = pairs_per_split(assign, pairs)
        key = (sum(counts[SPLITS[k]] > 0 for k in wanted), separated, sum(counts.values()), -len(buffer_images))
        if best_key is None or key > best_key:
            best_key = key
            best = ViewpointSplit(assign, buffer_images, {SPLITS[k]: v[0] for k, v in seps.items()},
                                  {i: r for _, ratios in seps.values() for i, r in ratios.items()}, separated)
    assert best is not None
    return best


def near_duplicate_groups(hashes: Sequence[str | None], max_bits: int) -> np.ndarray:
    """Group id per image: images whose perceptual hashes differ by at most ``max_bits`` bits (transitively)
    share one (see :func:`matchforge.sfm.inputs.perceptual_hash`); images without a hash are alone."""
    n = len(hashes)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    have = [i for i, h in enumerate(hashes) if h]
    values = np.array([int(hashes[i], 16) for i in have], dtype=np.uint64)
    for a in range(len(have)):
        x = values[a] ^ values[a + 1:]
        bits = np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(1)
        for b in np.flatnonzero(bits <= max_bits):
            ra, rb = root(have[a]), root(have[a + 1 + int(b)])
            if ra != rb:
                parent[rb] = ra
    return np.array([root(i) for i in range(n)])
