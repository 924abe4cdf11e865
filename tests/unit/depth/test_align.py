"""Alignment of relative / metric predictions to sparse true depths, on real ground-truth depth maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from testkit import real_data
from matchforge.depth.align import align_map
from matchforge.depth.config import DepthAlign
from matchforge.depth.fit import fit_inverse_affine, holdout_mask

DEFAULT_ALIGN = DepthAlign().to_dict()


def tum_depth(name: str) -> np.ndarray:
    """TUM RGB-D depth in metres, NaN where missing."""
    d = cv2.imread(str(real_data("tum_rgbd", "depth", name)), cv2.IMREAD_UNCHANGED).astype(np.float64) / 5000.0
    d[d == 0] = np.nan
    return d


def middlebury_depth() -> np.ndarray:
    """Middlebury motorcycle left depth in metres from the GT disparity (+inf = missing -> NaN)."""
    disp = np.load(real_data("middlebury_motorcycle", "motorcycle_disp.npz"))["arr_0"].astype(np.float64)
    z = np.full(disp.shape, np.nan)
    ok = np.isfinite(disp)
    z[ok] = 994.978 * 0.193001 / (disp[ok] + 31.086)
    return z


GT = {
    "tum_fr1_a": lambda: tum_depth("1305031102.160407.png"),
    "tum_fr1_b": lambda: tum_depth("1305031102.262886.png"),
    "tum_fr3_a": lambda: tum_depth("1341847980.723020.png"),
    "tum_fr3_b": lambda: tum_depth("1341847982.998830.png"),
    "middlebury": middlebury_depth,
}


def sparse_subset(z: np.ndarray, n: int, rng, outlier_share: float = 0.1):
    """COLMAP pixel coords (centre = +0.5) and depths of n random valid pixels; a share of them corrupted
    (as mismatched SfM points would be)."""
    r, c = np.nonzero(np.isfinite(z))
    pick = rng.choice(len(r), n, replace=False)
    xy = np.c_[c[pick] + 0.5, r[pick] + 0.5]
    zs = z[r[pick], c[pick]].copy()
    bad = rng.random(n) < outlier_share
    zs[bad] *= rng.uniform(0.3, 3.0, bad.sum())
    return xy, zs


def abs_rel(pred: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    valid = np.isfinite(z)
    got = valid & (pred > 0)
    return float(np.mean(np.abs(pred[got] / z[got] - 1))), float(got.sum() / valid.sum())


@pytest.mark.parametrize("name", list(GT))
def test_relative_disparity_recovers_true_depth(name):
    rng = np.random.default_rng(7)
    z = GT[name]()
    inv = 1.0 / z
    # unknown affine map with a shift of 30% of the mean, plus noise of 1% of the disparity spread
    a, b = rng.uniform(0.5, 50.0), -0.3 * np.nanmean(inv)
    disp = a * (inv + b)
    disp = disp + rng.normal(0, 0.01 * np.nanstd(disp), disp.shape)
    xy, zs = sparse_subset(z, 400, rng)
    depth, fit = align_map(np.where(np.isfinite(disp), disp, np.nan), "disparity", xy, zs, DEFAULT_ALIGN)
    assert fit.ok, fit.reason
    assert fit.n_inliers < fit.n_points  # the corrupted points were found
    err, coverage = abs_rel(depth, z)
    assert err < 0.02, f"{name}: AbsRel {err:.4f}"
    assert coverage > 0.95


@pytest.mark.parametrize("name", ["tum_fr3_a", "middlebury"])
def test_metric_prediction_gets_scale_only(name):
    rng = np.random.default_rng(3)
    z = GT[name]()
    metric = z * 0.37 * np.exp(rng.normal(0, 0.01, z.shape))  # metric model in another gauge, 1% noise
    xy, zs = sparse_subset(z, 300, rng)
    depth, fit = align_map(metric, "metric", xy, zs, DEFAULT_ALIGN)
    assert fit.ok and fit.model == "scale"
    assert fit.a == pytest.approx(1 / 0.37, rel=0.01)
    assert abs_rel(depth, z)[0] < 0.02


def test_inverted_prediction_is_rejected_not_fitted_with_negative_scale():
    rng = np.random.default_rng(2)
    z = GT["middlebury"]()
    xy, zs = sparse_subset(z, 300, rng, outlier_share=0.0)
    wrong = z  # depth given where disparity is expected: larger = farther, so a would be negative
    depth, fit = align_map(wrong, "disparity", xy, zs, DEFAULT_ALIGN)
    assert not fit.ok
    assert not (depth > 0).any() or fit.a > 0


def test_too_few_points_is_a_poor_fit():
    z = GT["tum_fr3_b"]()
    xy, zs = sparse_subset(z, 10, np.random.default_rng(0), outlier_share=0.0)
    fit = fit_inverse_affine(np.ones(10), zs)
    assert not fit.ok and "too few" in fit.reason
    _, fit2 = align_map(1 / z, "disparity", xy, zs, DEFAULT_ALIGN)
    assert not fit2.ok


def test_holdout_is_deterministic_and_about_the_requested_share():
    ids = np.arange(100000)
    m = holdout_mask(ids, 10)
    assert 0.09 < m.mean() < 0.11
    assert np.array_equal(m[5000:6000], holdout_mask(ids[5000:6000], 10))
    assert not holdout_mask(ids, 0).any()
