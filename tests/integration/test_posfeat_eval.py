"""Extraction and evaluation: MMA by hand, the homogr direction, SIFT on real homography pairs,
PoSFeat extraction from a checkpoint, pose evaluation through the shared metrics, reconstruction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from testkit import real_data
from matchforge.matchers.stored import mutual_nn


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


def test_eth_benchmark_layout_gives_the_benchmark_columns(tmp_path):
    """A dataset in the ETH local feature benchmark's layout, made here from 6 real Reichstag photos as the
    benchmark ships its datasets (images/, database.db with the images and cameras imported, match-list.txt):
    SIFT features are imported into a copy of that database, verified and mapped; the result has the
    benchmark's columns, uses only the listed pairs, and leaves the dataset's database untouched."""
    import hashlib
    import shutil

    import pycolmap

    from matchforge.evaluation.reconstruct_eval import main as reconstruct_eval
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
