"""Co-visibility statistics: D2-Net's per-pair loop (baseline) vs matchforge's track-wise version (ours).

Runs both on the demo scene's SfM model (``results/sacre_coeur/sfm``, built by ``snakemake``) when it
exists, and on a synthetic scene of MegaDepth-like size (random tracks, mean length ~5), checks that
they agree, and prints the times and their ratio.

Target (exit status 1 when missed): on the MegaDepth-size synthetic scene, ours is at least 5x faster
than the per-pair loop (measured 9.5x). The 10-view demo is too small to time meaningfully; it is
printed for the agreement check only.

    .venv/bin/python bench/scene_info.py [--sfm results/sacre_coeur/sfm] [--views 200] [--points 40000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from matchforge.dataset.covisibility import covisibility, covisibility_pairwise
from matchforge.io.colmap import Scene, View, load_scene

SPEEDUP_MIN = 5.0


def synthetic_scene(n_views: int, n_points: int, seed: int = 0) -> Scene:
    """Random points in front of cameras with identity rotation; tracks of 2 + Poisson(3) random views."""
    rng = np.random.default_rng(seed)
    xyz = np.c_[rng.uniform(-5, 5, (n_points, 2)), rng.uniform(10, 30, n_points)]
    K = np.array([[800.0, 0, 512], [0, 800.0, 384], [0, 0, 1]])
    track_len = np.minimum(2 + rng.poisson(3, n_points), n_views)
    obs: list[list[int]] = [[] for _ in range(n_views)]
    for p, L in enumerate(track_len):
        for v in rng.choice(n_views, size=L, replace=False):
            obs[v].append(p)
    views = {}
    for v in range(n_views):
        T = np.eye(4)
        T[:3, 3] = rng.uniform(-1, 1, 3)
        ids = np.array(obs[v], np.int64)
        views[f"{v:05d}.jpg"] = View(f"{v:05d}.jpg", v + 1, 1024, 768, K, T, ids, rng.uniform(0, 768, (len(ids), 2)))
    return Scene(views, {p: xyz[p] for p in range(n_points)})


def timed(fn, *args, repeat: int = 3):
    """Result and best wall time of ``repeat`` calls (the first call also pays one-off warm-up costs)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t)
    return out, best


def compare(name: str, scene: Scene, repeat: int) -> float:
    """Print the timings; return the speed-up baseline/ours."""
    views = list(scene.views.values())
    ours, t_ours = timed(covisibility, scene, views, repeat=repeat)
    base, t_base = timed(covisibility_pairwise, scene, views, repeat=repeat)
    assert np.array_equal(ours.shared, base.shared) and np.allclose(ours.overlap, base.overlap)
    assert np.allclose(ours.scale_ratio, base.scale_ratio)
    pairs = int((ours.shared[np.triu_indices(len(views), 1)] > 0).sum())
    print(f"{name}: {len(views)} views, {len(scene.point_xyz)} points, {pairs} co-visible pairs")
    print(f"  baseline (D2-Net per-pair loop): {t_base:8.3f} s")
    print(f"  ours (track-wise)              : {t_ours:8.3f} s")
    print(f"  speed-up baseline/ours         : {t_base / max(t_ours, 1e-9):8.1f}x   (results identical)")
    return t_base / max(t_ours, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sfm", type=Path, default=Path("results/sacre_coeur/sfm"))
    parser.add_argument("--views", type=int, default=200)
    parser.add_argument("--points", type=int, default=40000)
    args = parser.parse_args()
    if (args.sfm / "sparse").is_dir():
        compare(f"demo scene ({args.sfm})", load_scene(args.sfm / "sparse"), repeat=5)
    else:
        print(f"{args.sfm}/sparse not found (run snakemake first); synthetic scene only")
    speedup = compare("synthetic scene", synthetic_scene(args.views, args.points), repeat=2)
    ok = speedup >= SPEEDUP_MIN
    print(f"target (synthetic speed-up >= {SPEEDUP_MIN:.0f}x): {'met' if ok else 'MISSED'}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
