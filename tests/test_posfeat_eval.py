"""Extraction and evaluation: MMA by hand, the homogr direction, SIFT on real homography pairs,
PoSFeat extraction from a checkpoint, pose evaluation through the shared metrics, reconstruction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import REPO, real_data
from matchforge.errors import MatchforgeError
from matchforge.evaluation.homography import SCORE_WEIGHTS, find_pairs, mma_curve, mma_score, project, score
from matchforge.matchers.features import mutual_nn
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


@pytest.mark.slow
def test_sift_on_shared_homography_pairs_gives_a_sensible_curve(tmp_path):
    from matchforge.evaluation.match_pairs import main as match_pairs
    from matchforge.evaluation.score import main as score_main
    from matchforge.evaluation.testsets import testset_images
    from matchforge.posfeat.extract import main as extract_main

    spec = {"type": "homography", "path": str(real_data("homography"))}
    feats = extract_main({"method": "sift", "max_size": 1024, "num_pts": 8192}, testset_images(spec),
                         tmp_path / "sift.h5")
    match_pairs(spec, {"name": "features", "features": str(feats), "working_size": 1024}, tmp_path / "m.h5")
    res = score_main(spec, tmp_path / "m.h5", tmp_path / "sift.json", label="sift")
    curve = np.array(res["overall"]["mma"])
    assert res["num_pairs"] == 9
    assert np.all(np.diff(curve) >= 0)  # cumulative in the threshold
    assert 5 < curve[0] < curve[2] < curve[9] < 95  # percent
    by_pair = {r["pair"]: r for r in res["pairs"]}
    assert by_pair["oxford_graf/img1-img2"]["mma"][4] > 50  # graf 1-2: easy for SIFT
    assert by_pair["homogr/adam"]["mma"][4] > 50
    # homography estimation from the same matches: RANSAC is far more accurate than DLT on all matches
    o = res["overall"]
    print({k: round(v, 1) for k, v in o.items() if k.startswith("h_") and not k.endswith("_ci")})
    assert o["h_ransac_auc@5"] > 20 and o["h_ransac_auc@5"] > 2 * o["h_dlt_auc@5"], o
    assert (tmp_path / "sift.png").stat().st_size > 10000
    stored = json.loads((tmp_path / "sift.json").read_text())
    assert stored["overall"]["mma_score"] == pytest.approx(res["overall"]["mma_score"])


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


def _reichstag_dataset(root, out, convention="world_to_camera"):
    """A matchforge dataset (dataset.json + MegaDepth scene info) of real Reichstag pairs with the poses of the
    IMC calibration files (independent of any matcher); ``camera_to_world`` stores the inverse poses instead."""
    import json
    import pickle

    from matchforge.dataset.indices import read_imc

    pairs = read_imc(root, "0.1")[:6]
    views = {}
    for p in pairs:
        views[p.image0], views[p.image1] = (p.K0, p.T0), (p.K1, p.T1)
    names = sorted(views)
    poses = [views[n][1] if convention == "world_to_camera" else np.linalg.inv(views[n][1]) for n in names]
    info = {"image_paths": np.array([str(n) for n in names], dtype=object),
            "depth_paths": np.array([None] * len(names), dtype=object),
            "intrinsics": np.array([views[n][0] for n in names] + [None], dtype=object)[:-1],
            "poses": np.array(poses + [None], dtype=object)[:-1],
            "pair_infos": [(np.array([names.index(p.image0), names.index(p.image1)]), 0.5, np.zeros(4)) for p in pairs]}
    (out / "index").mkdir(parents=True)
    with open(out / "index" / "reichstag.npz", "wb") as f:
        pickle.dump(info, f)
    (out / "index" / "test.txt").write_text("reichstag\n")
    split = {"list": "index/test.txt", "data_root": "."}
    (out / "dataset.json").write_text(json.dumps({"name": "reichstag", "npz_root": "index", "splits": {"test": split}}))
    return out / "dataset.json"


def test_pose_evaluation_of_real_sift_matches_against_imc_ground_truth(tmp_path):
    """SIFT matches of real Reichstag photos, scored against the IMC calibration poses through the shared
    metrics: a working matcher gets a high AUC, and the same matches against camera->world poses (a wrong
    convention) get a low one, so the evaluation's pose convention is checked by data it did not make."""
    from matchforge.evaluation.match_pairs import main as match_pairs
    from matchforge.evaluation.score import main as score_main
    from matchforge.evaluation.testsets import testset_images
    from matchforge.posfeat.extract import main as extract_main

    results = {}
    for convention in ("world_to_camera", "camera_to_world"):
        spec = {"type": "pose", "dataset": str(_reichstag_dataset(real_data("reichstag"), tmp_path / convention, convention))}
        feats = extract_main({"method": "sift", "max_size": 1024, "num_pts": 4096}, testset_images(spec),
                             tmp_path / f"{convention}.h5")
        match_pairs(spec, {"name": "features", "features": str(feats), "working_size": 1024}, tmp_path / f"{convention}_m.h5")
        results[convention] = score_main(spec, tmp_path / f"{convention}_m.h5", tmp_path / f"{convention}.json")
    good, wrong = results["world_to_camera"], results["camera_to_world"]
    assert good["num_pairs"] == wrong["num_pairs"] == 6 and good["num_matches"] > 100
    # plain mutual NN (no ratio test) at 1024 px: AUC@5/10/20 about 26 / 46 / 73, a third of the matches correct
    assert good["auc@5"] > 15 and good["auc@20"] > 50 and good["precision"] > 20, good  # precision in percent
    # inverted poses keep the relative rotation angle but not the translation: the strict thresholds collapse
    assert wrong["auc@5"] < 0.5 * good["auc@5"] and wrong["auc@10"] < 0.5 * good["auc@10"], (wrong, good)


@pytest.mark.slow
def test_reconstruction_from_sift_features_on_a_real_scene(tmp_path):
    from matchforge.evaluation.reconstruction import main as reconstruct
    from matchforge.io.features import read_features
    from matchforge.io.images import list_images
    from matchforge.posfeat.extract import main as extract_main

    images = real_data("reichstag", "images")
    listed = list_images(images)[:6]
    feats = extract_main({"method": "sift", "max_size": None, "num_pts": 4096}, listed, tmp_path / "f.h5")
    stats = reconstruct(images, [n for n, _ in listed], lambda n: read_features(feats, n), mutual_nn,
                        tmp_path / "rec", camera_mode="AUTO", sfm={"num_threads": 1})
    assert stats["num_images"] == 6 and stats["num_pairs"] == 15
    assert stats["num_registered"] == 6  # single-threaded mapping with a fixed seed repeats exactly
    assert stats["num_points3D"] > 200 and stats["mean_track_length"] > 2.5
    assert 0 < stats["mean_reprojection_error"] < 2.0
    assert (tmp_path / "rec" / "database.db").is_file()


@pytest.mark.slow
def test_eth_benchmark_layout_gives_the_benchmark_columns(tmp_path):
    """A dataset in the ETH local feature benchmark's layout, made here from 6 real Reichstag photos as the
    benchmark ships its datasets (images/, database.db with the images and cameras imported, match-list.txt):
    SIFT features are imported into a copy of that database, verified and mapped; the result has the
    benchmark's columns, uses only the listed pairs, and leaves the dataset's database untouched."""
    import hashlib
    import shutil

    import pycolmap

    from matchforge.evaluation.features import main as reconstruct_eval
    from matchforge.evaluation.reconstruction import ETH_COLUMNS
    from matchforge.evaluation.testsets import testset_images
    from matchforge.posfeat.extract import main as extract_main

    eth = tmp_path / "Reichstag"
    (eth / "images").mkdir(parents=True)
    photos = sorted(real_data("reichstag", "images").iterdir())[:6]
    for p in photos:
        shutil.copy(p, eth / "images" / p.name)
    pycolmap.Database.open(eth / "database.db").close()
    pycolmap.import_images(eth / "database.db", eth / "images", pycolmap.CameraMode.PER_IMAGE)
    names = [p.name for p in photos]
    listed = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if (i + names.index(b)) % 3]  # 10 of 15 pairs
    (eth / "match-list.txt").write_text("".join(f"{a} {b}\n" for a, b in listed))
    digest = hashlib.sha256((eth / "database.db").read_bytes()).hexdigest()
    spec = {"type": "reconstruction", "eth": str(eth)}
    feats = extract_main({"method": "sift", "max_size": None, "num_pts": 4096}, testset_images(spec), tmp_path / "f.h5")
    res = reconstruct_eval(spec, feats, tmp_path / "eth.json", "sift")
    assert set(ETH_COLUMNS) <= set(res) and ("num_dense_points" in res) == pycolmap.has_cuda
    assert res["num_images"] == 6 and res["num_pairs"] == len(listed) == 10
    assert res["num_registered"] >= 5 and res["num_points3D"] > 200 and res["mean_observations_per_image"] > 50
    assert 0 < res["num_verified_pairs"] <= 10 and res["num_inlier_matches"] > 100
    assert hashlib.sha256((eth / "database.db").read_bytes()).hexdigest() == digest
