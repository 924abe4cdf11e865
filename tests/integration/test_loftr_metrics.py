"""Relative-pose metrics on hand-computable cases, and the evaluation loop on the shipped Reichstag test set."""

from __future__ import annotations
import numpy as np
import pytest

from testkit import REPO
from matchforge.evaluation.relpose import match, score
from matchforge.evaluation.config import PoseScoring

SCORING = PoseScoring().to_dict()  # the defaults of every pose test set
from matchforge.evaluation.testsets import load_testset

REICHSTAG = REPO / "resources" / "testsets" / "reichstag"


def test_poselib_estimator_scores_the_same_matches_on_reichstag(tmp_path, monkeypatch):
    """`estimator: poselib` (LO-RANSAC, glue-factory's) rescores stored SIFT matches on the 10 Reichstag pairs against
    the IMC poses: its per-pair errors track OpenCV's and no pair fails; without poselib the error names the extra."""
    import sys

    from matchforge.errors import MatchforgeError
    from matchforge.matchers.sift import SiftMatcher

    records = load_testset({"type": "imc", "root": str(REICHSTAG), "max_pairs": 10})
    match(SiftMatcher({"max_keypoints": 2048, "ratio": 0.8, "img_resize": 640}), records, tmp_path / "m.h5", {"name": "sift"}, 640)
    cv = score(records, tmp_path / "m.h5", **SCORING)
    pl = score(records, tmp_path / "m.h5", **{**SCORING, "estimator": "poselib"})
    assert pl["failed"] == 0 and pl["auc@20"] > 40 and abs(pl["auc@20"] - cv["auc@20"]) < 20, (pl["auc@20"], cv["auc@20"])
    both = [(a["pose_error"], b["pose_error"]) for a, b in zip(cv["pairs"], pl["pairs"]) if a["pose_error"] is not None]
    assert np.median([abs(a - b) for a, b in both]) < 2.0  # degrees: the same geometry from the same matches
    assert all(0 < r["inlier_ratio"] <= 1 for r in pl["pairs"])
    monkeypatch.setitem(sys.modules, "poselib", None)
    with pytest.raises(MatchforgeError, match=r"matchforge\[poselib\]"):
        score(records[:1], tmp_path / "m.h5", **{**SCORING, "estimator": "poselib"})
