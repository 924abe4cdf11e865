"""Intervals and paired verdicts (matchforge.evaluation.stats): coverage by simulation, the boundary cases, photos
shared between pairs, and the paired test on real matches."""

from __future__ import annotations

import numpy as np
import pytest

from matchforge.evaluation.pose_metrics import auc_curve, pose_auc
from matchforge.evaluation.relpose import aggregate, compare
from matchforge.evaluation.stats import MIN_PHOTOS, clopper_pearson


def test_an_interval_never_collapses_when_every_pair_fails_or_succeeds():
    rng = np.random.default_rng(1)
    photos = [f"{k}.jpg" for k in range(5)]
    pairs = [(a, b) for i, a in enumerate(photos) for b in photos[i + 1:]][:9]
    for error, point in ((None, 0.0), (0.0, 100.0)):
        rows = [{"scene": "s", "image0": a, "image1": b, "pose_error": error, "precision": float(error == 0.0),
                 "num_matches": int(rng.integers(5, 50))} for a, b in pairs]
        res = aggregate(rows)
        lo, hi = res["auc@10_ci"]
        assert res["auc@10"] == point and hi - lo > 40, res["auc@10_ci"]
        assert res["num_photos"] == 5
    # every pair failed, 9 pairs of 5 photos: Clopper-Pearson at 5 units, upper bound 52.2 %
    assert aggregate([{**r, "pose_error": None} for r in rows])["auc@10_ci"] == pytest.approx([0.0, 52.18], abs=0.01)
    assert clopper_pearson(0.0, 9)[1] == pytest.approx(0.336, abs=1e-3)  # the textbook value for 0 of 9


def test_shared_photos_widen_the_interval():
    """One bad photo failing all its pairs: the same pair outcomes are less certain than independent pairs would be."""
    photos = [f"{k}.jpg" for k in range(8)]
    pairs = [(a, b) for i, a in enumerate(photos) for b in photos[i + 1:]]
    rows = [{"scene": "s", "image0": a, "image1": b, "pose_error": None if "0.jpg" in (a, b) or "1.jpg" in (a, b) else 1.0,
             "precision": 0.5, "num_matches": 10} for a, b in pairs]
    shared = aggregate(rows)["auc@10_ci"]
    independent = aggregate([{**r, "image0": f"a{k}", "image1": f"b{k}"} for k, r in enumerate(rows)])["auc@10_ci"]
    assert shared[1] - shared[0] > 1.3 * (independent[1] - independent[0]), (shared, independent)


def test_weighted_auc_equals_the_auc_of_repeated_errors():
    rng = np.random.default_rng(0)
    errors = rng.exponential(8, 12)
    errors[[2, 5]] = np.inf
    errors[7] = errors[3]
    weights = rng.integers(0, 3, (20, 12)).astype(float)
    weights[:, 0] += 1
    got = auc_curve(errors, weights)
    for w, row in zip(weights, got):
        assert list(pose_auc(np.repeat(errors, w.astype(int))).values()) == pytest.approx(row.tolist())


def _rows(errors, photos):
    return [{"scene": "s", "image0": a, "image1": b, "pose_error": e, "precision": 0.0 if e is None else 0.5,
             "num_matches": 10} for e, (a, b) in zip(errors, photos)]


def test_paired_verdicts():
    photos = [f"{k}.jpg" for k in range(5)]
    pairs = [(a, b) for i, a in enumerate(photos) for b in photos[i + 1:]][:9]
    # 3 of 9 pairs succeed vs 0 of 9: intervals used to say "better"; the sign test gives p = 0.25
    c = compare({"pairs": _rows([None] * 9, pairs)}, {"pairs": _rows([1.0] * 3 + [None] * 6, pairs)})["auc@10"]
    assert c["p_value"] == pytest.approx(0.25) and c["verdict"] == "no significant difference"
    assert c["diff_ci"][0] < 0 < c["diff_ci"][1] and c["wins"] == 3 and c["losses"] == 0
    # both fail everywhere: no difference, and still an interval of non-zero width
    c = compare({"pairs": _rows([None] * 9, pairs)}, {"pairs": _rows([None] * 9, pairs)})["auc@10"]
    assert c["diff"] == 0 and c["diff_ci"][1] - c["diff_ci"][0] > 20 and c["verdict"] == "no significant difference"
    # 20 photos, B better on 30 of 40 pairs and never worse: better
    photos = [f"{k}.jpg" for k in range(20)]
    pairs = [(photos[k], photos[(k + s) % 20]) for s in (1, 2) for k in range(20)]
    a = [None] * 40
    b = [2.0 if k % 4 else None for k in range(40)]
    c = compare({"pairs": _rows(a, pairs)}, {"pairs": _rows(b, pairs)})["auc@10"]
    assert c["verdict"] == "better" and c["p_value"] < 1e-6 and c["diff_ci"][0] > 0
    c = compare({"pairs": _rows(b, pairs)}, {"pairs": _rows(a, pairs)})["auc@10"]
    assert c["verdict"] == "worse" and c["diff_ci"][1] < 0
    # fewer photos than MIN_PHOTOS: no interval, no verdict
    few = [(f"{k}.jpg", f"{k + 1}.jpg") for k in range(MIN_PHOTOS - 2)]
    c = compare({"pairs": _rows([None] * len(few), few)}, {"pairs": _rows([1.0] * len(few), few)})["auc@10"]
    assert c["verdict"] == f"too few photos ({MIN_PHOTOS - 1})" and c["diff_ci"] is None
    # not the same pairs: no paired comparison
    assert compare({"pairs": _rows([None] * 9, pairs[:9])}, {"pairs": _rows([None] * 9, pairs[1:10])}) is None
