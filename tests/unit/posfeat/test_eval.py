"""Extraction and evaluation: MMA by hand, the homogr direction, SIFT on real homography pairs,
PoSFeat extraction from a checkpoint, pose evaluation through the shared metrics, reconstruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from testkit import REPO, real_data
from matchforge.errors import MatchforgeError
from matchforge.evaluation.homography import SCORE_WEIGHTS, find_pairs, mma_curve, mma_score, project, score
from matchforge.posfeat.detect import detect_keypoints


def _stored(tmp_path, record, kp0, kp1):
    """A match file holding ``kp0 <-> kp1`` for ``record``, as match-pairs writes it."""
    from matchforge.evaluation.relpose import pair_names
    from matchforge.io.matches import MatchWriter

    with MatchWriter(tmp_path / "m.h5", {"name": "by hand"}) as w:
        w.write(*pair_names([record])[0], kp0, kp1)
    return tmp_path / "m.h5"


def test_mma_and_homography_auc_of_known_matches_equal_the_hand_values(tmp_path):
    from matchforge.evaluation.testsets import homography_records

    record = next(r for r in homography_records(real_data("homography")) if r.name == "homogr/adam")
    rng = np.random.default_rng(0)
    kp0 = rng.uniform(50, 400, (6, 2))
    offsets = np.array([0.0, 0.5, 1.5, 2.5, 3.8, 12.0])  # known errors, along varied directions
    angle = rng.uniform(0, 2 * np.pi, 6)
    kp1 = project(record.H, kp0 - 0.5) + 0.5 + offsets[:, None] * np.c_[np.cos(angle), np.sin(angle)]
    res = score([record], _stored(tmp_path, record, kp0, kp1), thresholds=tuple(range(1, 11)))
    hand = [2 / 6, 3 / 6, 4 / 6, 5 / 6, 5 / 6, 5 / 6, 5 / 6, 5 / 6, 5 / 6, 5 / 6]  # errors <= 1, 2, ..., 10 px
    assert res["overall"]["mma"] == pytest.approx([100 * h for h in hand])  # percent
    assert res["overall"]["mma@3"] == pytest.approx(100 * 4 / 6)
    w = [1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.0]
    assert res["overall"]["mma_score"] == pytest.approx(100 * sum(a * b for a, b in zip(w, hand)) / sum(w))
    assert list(SCORE_WEIGHTS) == pytest.approx(w)
    assert res["overall"]["num_matches"] == 6 and res["overall"]["few_pairs"]
    assert mma_curve(np.zeros(0), (1, 2)).tolist() == [0.0, 0.0]  # no matches counts as 0
    assert mma_score([1.0] * 10) == pytest.approx(1.0)
    # exact matches: both estimates recover H (AUC 100 at 1 px); 4 exact + 2 far outliers: RANSAC still does,
    # DLT (least squares on every match) does not
    exact = project(record.H, kp0 - 0.5) + 0.5
    res = score([record], _stored(tmp_path, record, kp0, exact))
    assert res["overall"]["h_ransac_auc@1"] > 90 and res["overall"]["h_dlt_auc@1"] > 90
    grid = np.stack(np.meshgrid(np.linspace(60, 500, 4), np.linspace(60, 380, 4)), -1).reshape(-1, 2)
    bad = project(record.H, grid - 0.5) + 0.5
    from matchforge.io.images import image_size

    w1, h1 = image_size(record.image1)  # matches lie inside both images (the scorer refuses others)
    inside = (bad >= 0).all(1) & (bad[:, 0] <= w1 - 41) & (bad[:, 1] <= h1 - 41)
    grid, bad = grid[inside], bad[inside]
    assert len(grid) >= 8
    bad[:3] += 40.0
    res = score([record], _stored(tmp_path, record, grid, bad))
    assert res["overall"]["h_ransac_auc@1"] > 90 and res["overall"]["h_dlt_auc@5"] < 10, res["overall"]


def test_homogr_models_are_inverted_to_map_a_to_b():
    """The validation points shipped with homogr (A in rows 0-1, B in rows 3-4) confirm the direction."""
    from scipy.io import loadmat

    root = real_data("homography")
    pairs = {p.name: p for p in find_pairs(root)}
    assert len(pairs) == 9 and "oxford_graf/img1-img2" in pairs
    for name in ("adam", "boat", "WhiteBoard"):
        v = loadmat(root / "homogr" / f"{name}_vpts.mat")["validation"][0, 0][0]
        a, b = v[:2].T, v[3:5].T
        assert np.abs(project(pairs[f"homogr/{name}"].H, a) - b).max() < 0.01
        assert np.abs(project(pairs[f"homogr/{name}"].H, b) - a).max() > 20


def test_find_pairs_reads_the_hpatches_layout(tmp_path):
    import cv2

    seq = tmp_path / "v_test"
    seq.mkdir()
    img = np.zeros((40, 50, 3), np.uint8)
    for k in (1, 2, 3):
        cv2.imwrite(str(seq / f"{k}.ppm"), img)
    np.savetxt(seq / "H_1_2", np.eye(3))
    np.savetxt(seq / "H_1_3", np.diag([2.0, 2.0, 1.0]))
    (tmp_path / "i_dc").mkdir()  # excluded by the D2-Net protocol
    cv2.imwrite(str(tmp_path / "i_dc" / "1.ppm"), img)
    cv2.imwrite(str(tmp_path / "i_dc" / "2.ppm"), img)
    np.savetxt(tmp_path / "i_dc" / "H_1_2", np.eye(3))
    pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["v_test/1-2", "v_test/1-3"]
    assert pairs[1].category == "viewpoint" and pairs[1].image1 == "v_test/3.ppm"
    with pytest.raises(MatchforgeError, match="folder not found"):
        find_pairs(seq / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MatchforgeError, match="no image pairs"):
        find_pairs(tmp_path / "empty")


def test_detect_keypoints_nms_threshold_and_refinement():
    s = torch.zeros(1, 1, 20, 30)
    s[0, 0, 5, 7] = 2.0
    s[0, 0, 5, 8] = 1.0  # neighbour: suppressed, but pulls the refined position right
    s[0, 0, 15, 20] = 1.5
    s[0, 0, 2, 25] = 0.5  # below thr
    kp, sc = detect_keypoints(s, nms_radius=1, thr=0.9, num_pts=10, min_pts=0)
    assert sc.tolist() == [2.0, 1.5]
    assert kp[0].tolist() == pytest.approx([7.5 + 1 / 3, 5.5])
    assert kp[1].tolist() == pytest.approx([20.5, 15.5])
    kp, _ = detect_keypoints(s, nms_radius=1, thr=0.9, num_pts=10, min_pts=3)  # at least 3, even below thr
    assert len(kp) == 3


def test_posfeat_extraction_from_a_checkpoint(tmp_path):
    from matchforge.io.features import read_features
    from matchforge.posfeat.extract import main as extract_main
    from matchforge.posfeat.networks import PoSFeat

    torch.manual_seed(0)
    model = PoSFeat("resnet18", 32)
    conf = {"model": {"arch": "resnet18", "desc_dim": 32}}
    torch.save({"model": model.state_dict(), "conf": conf, "stage": "kp", "step": 1}, tmp_path / "model.pt")
    root = REPO / "resources" / "testsets" / "homography"
    images = [("adamA.png", root / "homogr" / "adamA.png")]
    out = extract_main({"max_size": 160, "num_pts": 300, "min_pts": 50}, images, tmp_path / "f.h5", tmp_path / "model.pt")
    f = read_features(out, "adamA.png")
    assert f["image_size"].tolist() == [600, 450]
    assert 50 <= len(f["keypoints"]) <= 300 and f["descriptors"].shape == (len(f["keypoints"]), 32)
    assert np.allclose(np.linalg.norm(f["descriptors"], axis=1), 1, atol=1e-4)
    # keypoints are reported in the original image's pixels (the network saw a 160 px version)
    assert f["keypoints"][:, 0].max() > 300 and f["keypoints"].min() >= 0 and f["keypoints"][:, 1].max() <= 450
    sift = extract_main({"max_size": 160, "use_sift": True}, images, tmp_path / "sift.h5", tmp_path / "model.pt")
    g = read_features(sift, "adamA.png")
    assert g["descriptors"].shape[1] == 32 and len(g["keypoints"]) == len(g["scores"]) > 10
    with pytest.raises(MatchforgeError, match="needs a trained model"):
        extract_main({}, images, tmp_path / "x.h5")
    with pytest.raises(MatchforgeError, match="one .h5 file"):
        extract_main({"use_sift": True}, images, tmp_path / "npz", tmp_path / "model.pt")
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "x.h5.part").exists()
