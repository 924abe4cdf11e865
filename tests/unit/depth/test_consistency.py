"""The multi-view consistency filter on real data with known depth: the TUM RGB-D fr1 pair (Kinect depth,
motion-capture poses) and Middlebury Motorcycle (subpixel ground-truth disparity), each with a corrupted
region injected into one view; and the demo scene with one image's depth scaled by 1.5."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from testkit import real_data
from testkit.tum import K_FR1, TUM_FR1, world_to_camera
from matchforge.depth.consistency import filter_depth
from matchforge.io.colmap import View
from matchforge.depth.config import DepthConsistency

DEFAULTS = DepthConsistency().to_dict()


def _view(name: str, K: np.ndarray, T: np.ndarray, w: int, h: int) -> View:
    return View(name, 0, w, h, K, T, np.zeros(0, np.int64), np.zeros((0, 2)))


def checkable(depth_i: np.ndarray, view_i: View, depth_j: np.ndarray, view_j: View, band: float = 0.2) -> np.ndarray:
    """Pixels of view i that view j can confirm at all: in view, on valid depth, not occluded (within a
    ``band`` far wider than the filter's threshold). The filter's job is to keep those and drop the rest."""
    rows, cols = np.nonzero(depth_i > 0)
    d = depth_i[rows, cols].astype(np.float64)
    X = (np.linalg.inv(view_i.K) @ np.stack([cols + 0.5, rows + 0.5, np.ones_like(d)])) * d
    T = view_j.T_cw @ np.linalg.inv(view_i.T_cw)
    Xj = T[:3, :3] @ X + T[:3, 3:4]
    x = view_j.K @ Xj
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = np.floor(x[0] / x[2]), np.floor(x[1] / x[2])
    ok = (Xj[2] > 0) & (u >= 0) & (u < view_j.width) & (v >= 0) & (v < view_j.height)
    out = np.zeros(depth_i.shape, bool)
    dj = depth_j[v[ok].astype(int), u[ok].astype(int)]
    near = (dj > 0) & (np.abs(Xj[2][ok] - dj) <= band * dj)
    out[rows[ok][near], cols[ok][near]] = True
    return out


def corrupt(depth: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """(corrupted copy, mask of pixels whose depth changed by more than 10 %) for a central rectangle."""
    h, w = depth.shape
    out = depth.copy()
    box = np.zeros_like(depth, bool)
    box[h * 3 // 10: h * 7 // 10, w * 3 // 10: w * 7 // 10] = True
    if how == "scale":
        out[box] *= 1.5
    else:  # a patch of the map shifted sideways: plausible depth at the wrong place
        out[box] = np.roll(depth, w // 5, axis=1)[box]
    changed = box & (out > 0) & (np.abs(out - depth) > 0.1 * np.maximum(depth, 1e-6))
    return out, changed


def check_filter(depth0, view0, depth1, view1, how):
    """(share of correct checkable pixels kept, share of corrupted pixels rejected) with the default options."""
    bad, changed = corrupt(depth0, how)
    correct = checkable(depth0, view0, depth1, view1) & ~changed & (bad == depth0)
    out = filter_depth(bad, view0, [(depth1, view1)], DEFAULTS["rel_threshold"], DEFAULTS["min_views"])
    return float((out[correct] > 0).mean()), float(1 - (out[changed] > 0).mean()), int(changed.sum()), int(correct.sum())


@pytest.mark.parametrize("how", ["scale", "shift"])
def test_tum_rgbd_pair_keeps_correct_depth_and_rejects_a_corrupted_region(how):
    root = real_data("tum_rgbd")
    depths = [cv2.imread(str(root / "depth" / f"{d}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 5000.0
              for _, d, _ in TUM_FR1]
    views = [_view(str(i), K_FR1, world_to_camera(pose), 640, 480) for i, (*_, pose) in enumerate(TUM_FR1)]
    kept, rejected, n_bad, n_good = check_filter(depths[0], views[0], depths[1], views[1], how)
    print(f"TUM fr1 ({how}): kept {kept:.3f} of {n_good} correct pixels, rejected {rejected:.3f} of {n_bad} corrupted")
    assert n_bad > 10_000 and n_good > 100_000
    assert kept >= 0.95 and rejected >= 0.90


def test_middlebury_pair_keeps_correct_depth_and_rejects_a_corrupted_region():
    """Rectified pair: the right view's depth is the left ground truth moved by its disparity (z-buffered);
    the cameras differ by the baseline and by ``doffs`` in the principal point, as Middlebury's calibration says."""
    root = real_data("middlebury_motorcycle")
    disp = np.load(root / "motorcycle_disp.npz")["arr_0"].astype(np.float64)
    f, cx, cy, doffs, baseline = 994.978, 311.193, 254.877, 31.086, 0.193001
    h, w = disp.shape
    ok = np.isfinite(disp)
    left = np.where(ok, f * baseline / (np.where(ok, disp, 0) + doffs), 0.0).astype(np.float32)
    right = np.zeros_like(left)
    rows, cols = np.nonzero(ok)
    xr = np.floor(cols + 0.5 - disp[rows, cols]).astype(int)  # right pixel of each left pixel centre
    inside = (xr >= 0) & (xr < w)
    order = np.argsort(-left[rows, cols][inside])  # far first: the nearest surface is written last and wins
    right[rows[inside][order], xr[inside][order]] = left[rows, cols][inside][order]
    K0 = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    K1 = np.array([[f, 0, cx + doffs], [0, f, cy], [0, 0, 1.0]])
    T1 = np.eye(4)
    T1[0, 3] = -baseline  # right camera centre at +baseline along x
    views = [_view("left", K0, np.eye(4), w, h), _view("right", K1, T1, w, h)]
    kept, rejected, n_bad, n_good = check_filter(left, views[0], right, views[1], "scale")
    print(f"Middlebury: kept {kept:.3f} of {n_good} correct pixels, rejected {rejected:.3f} of {n_bad} corrupted")
    assert n_bad > 10_000 and kept >= 0.95 and rejected >= 0.90
