"""Training items: distort a ground-truth depth map and focal length as LeReS does, and build the
point cloud the networks see.

Shift (LeReS convention ``d_true ∝ d_input - delta``): a normalised input as produced at inference by
``(d - min + 0.5) / p98`` is exactly an affine image of the true depth with 98th percentile 1 and a
positive minimum. We therefore build ``d_input = (1 - delta) * d_gt / p98(d_gt) + delta`` with
``delta ~ U(-0.25, 0.8)``; ``delta`` is raised where needed so that ``min(d_input) > 0``.

Focal (``alpha = f_input / f_true``): ``alpha ~ U(0.6, 1.25)``, ``f_input = alpha * f_true``, the
principal point at the image centre (as at inference).

Scale (metric sources only): target ``p98(d_gt) / scale_unit`` on the undistorted shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matchforge.geometry.camera import unproject

TARGETS = ("shift", "focal", "scale")
SHIFT_RANGE = (-0.25, 0.8)
FOCAL_RANGE = (0.6, 1.25)


@dataclass
class Sample:
    coords: np.ndarray  # (N, 3) float32 points of the distorted cloud
    feats: np.ndarray  # (N, C) float32
    target: float


def p98(values: np.ndarray) -> float:
    return float(np.percentile(values, 98))


def shift_bounds(depth_valid: np.ndarray, lo: float = SHIFT_RANGE[0], hi: float = SHIFT_RANGE[1], margin: float = 0.02) -> tuple[float, float]:
    """Range of ``delta`` that keeps ``min(d_input) >= margin`` (needs ``delta > -r / (1 - r)``, r = min/p98)."""
    r = float(depth_valid.min()) / p98(depth_valid)
    if r < 1:
        lo = max(lo, (margin - r) / (1 - r))
    return lo, max(lo, hi)


def distort_shift(depth: np.ndarray, mask: np.ndarray, delta: float) -> np.ndarray:
    """``(1 - delta) * d / p98(d) + delta`` on valid pixels (0 elsewhere): a normalised input whose
    true shape is ``d_input - delta``."""
    out = np.zeros(depth.shape, dtype=np.float64)
    d = depth[mask].astype(np.float64)
    out[mask] = (1 - delta) * d / p98(d) + delta
    return out


def point_features(depth: np.ndarray, mask: np.ndarray, focal: float, channels: int,
                   rng: np.random.Generator | None, num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Unproject with ``focal`` and the principal point at the image centre; subsample to ``num_points``.

    Returns ``coords`` (N, 3) = (x, y, z) and ``feats`` (N, channels) = (x, y, z[, (u-u0)/f, (v-v0)/f]).
    ``rng=None`` subsamples deterministically (evenly over the valid pixels).
    """
    h, w = depth.shape
    K = np.array([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1.0]])
    idx = np.flatnonzero(mask.ravel())
    if len(idx) > num_points:
        idx = np.sort(rng.choice(idx, num_points, replace=False)) if rng is not None else idx[np.linspace(0, len(idx) - 1, num_points).astype(int)]
    sub = np.zeros(mask.size, dtype=bool)
    sub[idx] = True
    pts, uv = unproject(depth, K, sub.reshape(mask.shape))
    feats = pts if channels == 3 else np.concatenate([pts, uv], axis=1)
    return pts.astype(np.float32), feats.astype(np.float32)


def make_sample(depth: np.ndarray, K: np.ndarray, target: str, channels: int, rng: np.random.Generator,
                num_points: int, focal_with_shift: bool, scale_unit: float,
                shift_range: tuple[float, float] = SHIFT_RANGE, focal_range: tuple[float, float] = FOCAL_RANGE,
                subsample_rng: bool = True) -> Sample:
    """One distorted point cloud and its label for ``target`` in ``{'shift', 'focal', 'scale'}``."""
    mask = np.isfinite(depth) & (depth > 0)
    d = depth[mask]
    f_true = float(K[0, 0])
    sub_rng = rng if subsample_rng else None
    if target == "shift":
        delta = float(rng.uniform(*shift_bounds(d, *shift_range)))
        d_in = distort_shift(depth, mask, delta)
        coords, feats = point_features(d_in, mask, f_true, channels, sub_rng, num_points)
        return Sample(coords, feats, delta)
    if target == "focal":
        alpha = float(rng.uniform(*focal_range))
        delta = float(rng.uniform(*shift_bounds(d, *shift_range))) if focal_with_shift else 0.0
        d_in = distort_shift(depth, mask, delta)
        coords, feats = point_features(d_in, mask, alpha * f_true, channels, sub_rng, num_points)
        return Sample(coords, feats, alpha)
    if target == "scale":
        d_in = distort_shift(depth, mask, 0.0)
        coords, feats = point_features(d_in, mask, f_true, channels, sub_rng, num_points)
        return Sample(coords, feats, p98(d) / scale_unit)
    raise ValueError(f"unknown target {target!r}; expected one of {TARGETS}")


@dataclass
class DataItem:
    """Pointer to one generated item (``depths/<key>.npz`` + ``intrinsics/<key>.npy``)."""

    root: Path
    key: str
    name: str
    metric: bool
    split: str

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(depth float32, K 3x3, rgb or None)``."""
        with np.load(self.root / "depths" / f"{self.key}.npz") as z:
            depth = z["arr_0"].astype(np.float32)
            rgb = z["rgb"] if "rgb" in z.files else None
        K = np.load(self.root / "intrinsics" / f"{self.key}.npy")
        return depth, K[:3, :3].astype(np.float64), rgb


def list_items(data_dir: str | Path, split: str | None = None) -> list[DataItem]:
    """Items of a ``shiftfocal-data`` folder, optionally only those of ``split`` ('train' / 'test')."""
    import json

    from matchforge.errors import MatchforgeError

    root = Path(data_dir)
    index = root / "index.json"
    if not index.exists():
        raise MatchforgeError("not a shiftfocal data folder (no index.json)", fix="run `matchforge shiftfocal-data` (rule shiftfocal_data) first", path=root)
    entries = json.loads(index.read_text())["items"]
    items = [DataItem(root, e["key"], e["name"], e["metric"], e["split"]) for e in entries]
    return [i for i in items if split is None or i.split == split]
