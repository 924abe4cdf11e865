"""Scene info and dataset build on the demo scene: round trip, buckets, upstream access pattern, splits."""

from __future__ import annotations
import numpy as np


def test_viewpoint_split_of_a_walk_through_takes_a_block_not_every_other_frame():
    """Frames of a walk along a facade (cameras 1 unit apart, pairs between neighbours up to 3 frames apart):
    the held-out frames are one contiguous block, and the frames next to it are left out as a buffer, so no
    test frame has a training frame as its neighbour."""
    from matchforge.dataset.splits import split_by_viewpoint

    n = 20
    poses = []
    for k in range(n):
        T = np.eye(4)
        T[:3, 3] = -np.array([float(k), 0.0, 0.0])  # centre (k, 0, 0), looking along +z
        poses.append(T)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, min(n, i + 4))])
    split = split_by_viewpoint(poses, np.ones(n, bool), pairs, 0.0, 0.2, seed=0, max_buffer_fraction=0.2)
    test = np.flatnonzero(split.assign == 2)
    assert len(test) == 4 and np.all(np.diff(test) == 1), split.assign  # one block of 4 frames
    assert split.separated and min(r for r, _ in split.separation.values()) > 1
    assert split.buffer and all(min(abs(b - t) for t in test) == 1 for b in split.buffer)
    # the old random split by image, for contrast: some test frame has a training neighbour 1 frame away
    rng = np.random.default_rng(0)
    random_test = rng.permutation(n)[:4]
    assert any(min(abs(t - k) for k in set(range(n)) - set(random_test)) == 1 for t in random_test)
