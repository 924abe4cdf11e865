"""Deterministic train/val/test splits: by whole scene, or by disjoint groups of images within a scene.

Both are pure functions of their inputs and a seed (``numpy.random.default_rng(seed)``), so the same
config always yields the same split. With an image split, a pair is kept only when both of its images
are in the same split; pairs across splits are dropped, so no test image is ever seen in training.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

SPLITS = ("train", "val", "test")


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


def pairs_per_split(assign: np.ndarray, pairs: Iterable[tuple[int, int]]) -> dict[str, int]:
    """Number of ``pairs`` whose two images are in the same split, per split (assign: split index per image)."""
    counts = dict.fromkeys(SPLITS, 0)
    for i, j in pairs:
        if assign[i] == assign[j] and assign[i] >= 0:
            counts[SPLITS[assign[i]]] += 1
    return counts


def split_images(usable: Sequence[bool], pairs: Sequence[tuple[int, int]], val_fraction: float,
                 test_fraction: float, seed: int, tries: int = 500) -> np.ndarray:
    """Split one scene's images into disjoint train/val/test groups.

    ``usable[i]``: whether image i can be used at all; ``pairs``: the (i, j) pairs of the scene's buckets.
    Returns an int array over all images: 0 train, 1 val, 2 test, -1 unusable. Among ``tries`` seeded
    random partitions with the requested group sizes, picks the one that keeps the most pairs while
    every requested split has at least one pair (failing that, the one with the most non-empty splits).
    If val would need images that the scene cannot spare, val is empty (see ``_counts``).
    """
    idx = np.flatnonzero(np.asarray(usable, bool))
    n = len(idx)
    assign = -np.ones(len(usable), np.int64)
    if n < 4:
        raise ValueError(f"a split by images needs at least 4 usable images, got {n}")
    n_val, n_test = _counts(n, val_fraction, test_fraction, 2)
    wanted = [s for s, k in (("train", 1), ("val", n_val), ("test", n_test)) if k]
    rng = np.random.default_rng(seed)
    best, best_key = None, None
    for _ in range(max(1, tries)):
        perm = idx[rng.permutation(n)]
        a = assign.copy()
        a[perm[:n_test]] = 2
        a[perm[n_test:n_test + n_val]] = 1
        a[perm[n_test + n_val:]] = 0
        counts = pairs_per_split(a, pairs)
        key = (sum(counts[s] > 0 for s in wanted), sum(counts.values()), min(counts[s] for s in wanted))
        if best_key is None or key > best_key:
            best, best_key = a, key
    return best

