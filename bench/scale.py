"""Dataset stages at MegaDepth scale: a synthetic scene of 2,000 views, and planning 1,000 scenes.

The scene copies a real model's statistics (``--sfm``, default the demo's ``results/sacre_coeur/sfm``
when it exists; else mean track length 5 and 1,000 observations per view, the demo's order of size):
cameras on a circle looking inwards, each 3D point seen by a run of neighbouring cameras, so that
co-visibility is local as in a real walk around a building. Stages, each against the code of 2026-12-07
measured in the same run (baseline):

- scene info: co-visibility (track-wise), candidate pairs (Python loop over all n^2/2 pairs before),
  central match of every bucketed pair (per-pair dictionaries before);
- viewpoint split of the scene (all-pairs unit distances in Python and 500 tries before);
- reading a COLMAP model: per image, observed keypoints only (every keypoint before), on ``--sfm``.

Then what each planning call spends per photo (photo_signature, cache warm), and ``snakemake -n`` for a
config of 1,000 scenes (each the demo's 10 photos), wall time.

Target (exit status 1 when missed): scene info of 2,000 views (co-visibility + candidates + central
matches) under 5 s on 2 cores.

    .venv/bin/python bench/scale.py [--views 2000] [--sfm results/sacre_coeur/sfm] [--scenes 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from matchforge.dataset.config import DatasetSplit  # noqa: E402
from matchforge.dataset.covisibility import _first_obs, central_match, covisibility, first_observations
from matchforge.dataset.scene_info import candidate_pairs
from matchforge.dataset.splits import camera_distances, camera_geometry, split_by_viewpoint
from matchforge.io.colmap import Scene, View, load_scene

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 5.0
BUCKETS = [(0.1, 0.3), (0.3, 0.5), (0.5, 0.7)]


def model_statistics(sfm: Path | None) -> tuple[float, float]:
    """(mean track length, mean observations per view) of a real model, or the defaults."""
    if sfm is None or not (sfm / "sparse").is_dir():
        return 5.0, 1000.0
    scene = load_scene(sfm / "sparse")
    obs = np.array([len(v.point_ids) for v in scene.views.values()])
    return float(obs.sum() / max(len(scene.point_xyz), 1)), float(obs.mean())


def synthetic_scene(n_views: int, track_len: float, obs_per_view: float, seed: int = 0) -> Scene:
    """Cameras on a circle of radius 50 facing the centre; points on a ring of radius 20 seen from runs of
    neighbouring cameras (track length 2 + Poisson(track_len - 2))."""
    rng = np.random.default_rng(seed)
    n_points = int(n_views * obs_per_view / track_len)
    lengths = np.minimum(2 + rng.poisson(max(track_len - 2, 0.1), n_points), n_views)
    anchor = rng.integers(0, n_views, n_points)
    angle = 2 * np.pi * anchor / n_views
    xyz = np.c_[20 * np.cos(angle), 20 * np.sin(angle), rng.uniform(-5, 5, n_points)] + rng.normal(0, 1, (n_points, 3))
    view_obs: list[list[int]] = [[] for _ in range(n_views)]
    for p, (a, L) in enumerate(zip(anchor, lengths)):
        for v in (a + rng.choice(np.arange(-2 * L, 2 * L + 1), size=L, replace=False)) % n_views:
            view_obs[v].append(p)
    K = np.array([[800.0, 0, 512], [0, 800.0, 384], [0, 0, 1]])
    views = {}
    for v in range(n_views):
        a = 2 * np.pi * v / n_views
        centre = np.array([50 * np.cos(a), 50 * np.sin(a), 0.0])
        z = -centre / np.linalg.norm(centre)
        x = np.cross([0.0, 0.0, 1.0], z)
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, -R @ centre
        ids = np.array(view_obs[v], np.int64)
        name = f"{v:05d}.jpg"
        views[name] = View(name, v + 1, 1024, 768, K, T, ids, rng.uniform(0, 768, (len(ids), 2)))
    return Scene(views, {p: xyz[p] for p in range(n_points)})


def baseline_candidates(sym, shared, scale_ratio, min_shared, max_scale_ratio):
    candidates = []
    n = len(sym)
    for i in range(n):
        for j in range(i + 1, n):
            if sym[i, j] < 0 or shared[i, j] < min_shared:
                continue
            if max_scale_ratio is not None and scale_ratio[i, j] > max_scale_ratio:
                continue
            candidates.append((i, j, float(sym[i, j])))
    return candidates


def baseline_central_match(view0: View, view1: View):
    idx0, idx1 = _first_obs(view0), _first_obs(view1)
    common = [p for p in idx0 if p in idx1]
    if not common:
        return None
    xy0 = view0.xy[[idx0[p] for p in common]]
    k = int(np.argmin(np.linalg.norm(xy0 - np.median(xy0, axis=0), axis=1)))
    return np.concatenate([xy0[k], view1.xy[idx1[common[k]]]]).astype(np.float64)


def baseline_split(poses, usable, pairs, val_fraction, test_fraction, seed):
    """The 2026-12-07 split: all-pairs unit distances in Python, then up to 500 tries (its cost only)."""
    usable = np.asarray(usable, bool)
    idx = np.flatnonzero(usable)
    units = [np.array([i]) for i in idx]
    centres, dirs = camera_geometry(poses)
    img_dist = np.full((len(usable), len(usable)), np.inf)
    img_dist[np.ix_(idx, idx)] = camera_distances(centres[idx], dirs[idx])
    np.array([[img_dist[np.ix_(a, b)].min() if ai != bi else np.inf for bi, b in enumerate(units)]
              for ai, a in enumerate(units)])
    buffer = DatasetSplit().max_buffer_fraction
    return split_by_viewpoint(poses, usable, pairs, val_fraction, test_fraction, seed, buffer, tries=500)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def row(name: str, ours: float, base: float | None, unit: str = "s") -> None:
    ratio = f"{base / ours:8.1f}x" if base is not None and ours > 0 else "       -"
    base_s = f"{base:9.2f} {unit:<2}" if base is not None else "           -"
    print(f"  {name:<44} {base_s} {ours:9.2f} {unit:<2} {ratio}")


def photo_listing_us(n_photos: int = 2000) -> float:
    """Microseconds per photo that a planning call spends on a scene's photos (photo_signature with its cache
    warm: one directory scan and one stat per photo; contents are read only when new or changed)."""
    from matchforge.sfm.inputs import photo_signature

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i in range(n_photos):
            (folder / f"{i:05d}.jpg").write_bytes(i.to_bytes(4, "little"))
        photo_signature(folder, Path(tmp) / "cache.json")
        t = time.perf_counter()
        for _ in range(5):
            photo_signature(folder, Path(tmp) / "cache.json")
        return (time.perf_counter() - t) / 5 / n_photos * 1e6


def plan_scenes(n_scenes: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        images = REPO / "resources" / "demo" / "sacre_coeur" / "images"
        config = {"scenes": {f"scene_{i:04d}": {"images": str(images)} for i in range(n_scenes)}}
        (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(config))
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", tmp,
               "--configfile", str(Path(tmp) / "config.yaml"), "--workflow-profile", "none", "--cores", "2", "-n", "-q"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--views", type=int, default=2000)
    parser.add_argument("--sfm", type=Path, default=REPO / "results" / "sacre_coeur" / "sfm")
    parser.add_argument("--scenes", type=int, default=1000, help="scenes to plan (0: skip)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow baselines")
    args = parser.parse_args()

    track_len, per_view = model_statistics(args.sfm)
    t = time.perf_counter()
    scene = synthetic_scene(args.views, track_len, per_view)
    views = list(scene.views.values())
    print(f"synthetic scene: {len(views)} views, {len(scene.point_xyz)} points, mean track {track_len:.1f}, "
          f"{per_view:.0f} observations per view (built in {time.perf_counter() - t:.1f} s)")
    print(f"  {'stage':<44} {'baseline':>12} {'ours':>12} {'ratio':>9}")

    cov, t_cov = timed(covisibility, scene, views)
    sym = np.minimum(cov.overlap, cov.overlap.T)
    cands, t_cand = timed(candidate_pairs, sym, cov.shared, cov.scale_ratio, 1, None)
    base_cand = None
    if not args.no_baseline:
        check, base_cand = timed(baseline_candidates, sym, cov.shared, cov.scale_ratio, 1, None)
        assert check == cands
    bucketed = [(i, j) for i, j, ov in cands if any(lo <= ov < hi for lo, hi in BUCKETS)]

    def ours_central():
        first = [first_observations(v) for v in views]
        return [central_match(views[i], views[j], first[i], first[j]) for i, j in bucketed]

    central, t_central = timed(ours_central)
    base_central = None
    if not args.no_baseline:
        check, base_central = timed(lambda: [baseline_central_match(views[i], views[j]) for i, j in bucketed])
        assert all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(central, check))
    print(f"  ({len(cands)} co-visible pairs, {len(bucketed)} in buckets {BUCKETS})")
    row("co-visibility (unchanged)", t_cov, t_cov)
    row("candidate pairs", t_cand, base_cand)
    row("central matches of bucketed pairs", t_central, base_central)
    total = t_cov + t_cand + t_central
    base_total = t_cov + base_cand + base_central if base_cand is not None else None
    row("scene info total", total, base_total)

    poses = [v.T_cw for v in views]
    pairs = np.array([(i, j) for i, j in bucketed], np.int64).reshape(-1, 2)
    buffer = DatasetSplit().max_buffer_fraction
    _, t_split = timed(split_by_viewpoint, poses, np.ones(len(views), bool), pairs, 0.1, 0.1, 0, buffer)
    base_split = None
    if not args.no_baseline:
        _, base_split = timed(baseline_split, poses, np.ones(len(views), bool), pairs, 0.1, 0.1, 0)
    row("viewpoint split", t_split, base_split)

    if (args.sfm / "sparse").is_dir():
        import pycolmap

        rec = pycolmap.Reconstruction(str(args.sfm / "sparse"))
        t = time.perf_counter()
        for image in rec.images.values():
            [(p.point3D_id, p.xy) for p in image.points2D if p.has_point3D()]
        base_read = (time.perf_counter() - t) / rec.num_images() * 1000
        t = time.perf_counter()
        for image in rec.images.values():  # what load_scene does per image
            observed = image.get_observation_points2D()
            np.fromiter((p.point3D_id for p in observed), np.int64, len(observed))
            np.array([p.xy for p in observed], dtype=np.float64)
        t_read = (time.perf_counter() - t) / rec.num_images() * 1000
        row(f"model reading per image ({rec.num_images()} images)", t_read, base_read, "ms")
    print(f"  photos listed per planning call: {photo_listing_us():.1f} us per photo (2,000 photos, cache warm)")
    if args.scenes:
        print(f"  planning {args.scenes} scenes (snakemake -n): {plan_scenes(args.scenes):.1f} s")

    ok = total < TARGET_S
    print(f"target (scene info of {args.views} views < {TARGET_S:g} s): {'met' if ok else 'MISSED'} ({total:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
