"""Localization (hloc's Aachen protocol): on the demo scene's held-out photos, and on a folder in the exact Aachen
Day-Night v1.1 layout built from the Reichstag photos, whose ground truth comes from the Image Matching Challenge
reconstruction (independent of anything matchforge computes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from testkit.aachen import make_aachen

SIFT = {"name": "sift", "ratio": 0.8, "max_keypoints": 4096}


def localize(spec: dict, tmp_path: Path) -> dict:
    from matchforge.evaluation import match_pairs, score

    spec = {"type": "localization", "img_resize": 640, **{k: str(v) for k, v in spec.items()}}
    match_pairs.main(spec, SIFT, tmp_path / "matches.h5", name="loc")
    return score.main(spec, tmp_path / "matches.h5", tmp_path / "loc.json", name="loc", label="sift")


def test_aachen_layout_localizes_reichstag_queries_against_independent_ground_truth(tmp_path):
    from matchforge.io.aachen import read_submission

    files = make_aachen(tmp_path / "aachen")
    res = localize(files, tmp_path)
    assert res["num_queries"] == 3 and res["num_db"] == 7 and res["num_points3D"] > 100
    # SIFT localizes these Flickr photos within a few tenths of a degree of the IMC reconstruction
    assert res["localized"] == 100.0
    assert all(q["R_error"] < 1.0 for q in res["queries"]), res["queries"]
    assert res["unit"] == "median baseline" and res["recall@2"] == 100.0
    # the submission: one line per query, file names without folders, world->camera poses as the result holds
    sub = read_submission(res["submission"])
    assert sorted(sub) == sorted(Path(q["query"]).name for q in res["queries"])
    for q in res["queries"]:
        np.testing.assert_allclose(sub[Path(q["query"]).name], np.array(q["pose"]), atol=1e-6)
    # the same file holds the ground truth: its poses are what the errors were measured against
    truth = read_submission(files["ground_truth"])
    from matchforge.evaluation.localization import errors

    for q in res["queries"]:
        t, R = errors(sub[Path(q["query"]).name], truth[Path(q["query"]).name])
        assert R == pytest.approx(q["R_error"], abs=1e-4) and t == pytest.approx(q["t_error"], rel=1e-4, abs=1e-9)


def test_aachen_layout_without_ground_truth_writes_the_submission_only(tmp_path):
    files = make_aachen(tmp_path / "aachen", queries=1)
    del files["ground_truth"]
    res = localize(files, tmp_path)
    assert res["recall@1"] is None and "no ground truth" in res["note"]
    line = Path(res["submission"]).read_text().split()
    assert len(line) == 8 and line[0].endswith(".jpg") and "/" not in line[0]
    q = np.array([float(v) for v in line[1:5]])
    assert q[0] >= 0 and np.linalg.norm(q) == pytest.approx(1.0)


def test_demo_queries_localize_from_the_training_photos_only(demo_sfm, demo_dataset, tmp_path):
    """The demo's 3 viewpoint-held-out photos against its 7 training photos: the database model never sees a query."""
    import pycolmap

    spec = {"dataset": demo_dataset, "sfm": demo_sfm, "db_k": 4, "query_k": 3, "retrieval": "covisibility"}
    res = localize(spec, tmp_path)
    meta = json.loads(Path(demo_dataset).read_text())
    images = meta["scenes"]["sacre_coeur"]["images"]
    assert sorted(q["query"] for q in res["queries"]) == sorted(images["test"])
    model = pycolmap.Reconstruction(str(tmp_path / "loc" / "triangulated"))
    observed = {model.images[i].name for i in model.reg_image_ids() if model.images[i].num_points3D > 0}
    assert observed and observed <= set(images["train"])
    assert res["unit"] == "median baseline" and "oracle" in res["retrieval"]
    assert sum(q["localized"] and q["R_error"] < 2.0 for q in res["queries"]) >= 2, res["queries"]
    assert 0 <= res["recall@1_ci"][0] <= res["recall@1"] <= res["recall@1_ci"][1] <= 100
    assert res["num_db"] == len(images["train"])  # the database, not the whole model
    # metres per SfM unit turns the thresholds into metres; Aachen's 0.25 m on a scene a few metres wide is loose
    from matchforge.evaluation.localization import summarize

    reference, options = pycolmap.Reconstruction(str(demo_sfm / "sparse")), res["options"]
    again = summarize(res["queries"], reference, {**options, "metres_per_unit": 2.0}, images["train"])
    assert again["unit"] == "m" and again["threshold@1"] == "0.25 m, 2 deg"
    assert "loose" in again["loose"]
    wide = summarize(res["queries"], reference, {**options, "metres_per_unit": 1000.0}, images["train"])
    assert "loose" not in wide  # the same cameras 1000x larger: 0.25 m is tight
    own = summarize(res["queries"], reference, {**options, "thresholds": [[0.01, 0.1]]}, images["train"])
    assert own["threshold@1"] == "0.01 median baseline, 0.1 deg" and "recall@2" not in own
    # a pose needs min_inliers RANSAC inliers: above every query's count, none is localized and each fails
    strict = localize({**spec, "min_inliers": 1 + max(q["num_inliers"] for q in res["queries"])}, tmp_path)
    assert strict["localized"] == 0 and strict["recall@3"] == 0 and strict["median_R_error"] is None
    assert strict["recall@3_ci"][1] > 40  # 0 of 3 queries: the interval stays open


def test_visual_retrieval_picks_database_photos_from_the_photos_alone(demo_sfm, demo_dataset, tmp_path):
    """Retrieval uses no ground truth: COLMAP's visual words trained on the database photos, re-ranked by verified SIFT
    matches. The result is the retrieved run, with the oracle (covisibility in the ground-truth model) beside it as an
    upper bound; the pair list repeats exactly."""
    from matchforge.evaluation import retrieval

    spec = {"dataset": str(demo_dataset), "sfm": str(demo_sfm), "query_k": 2, "db_k": 4}
    pairs = retrieval.main(spec, tmp_path / "a" / "pairs-query.txt")
    meta = json.loads(Path(demo_dataset).read_text())["scenes"]["sacre_coeur"]["images"]
    assert {q for q, _ in pairs} == set(meta["test"]) and {d for _, d in pairs} <= set(meta["train"])
    assert all(sum(q == qq for qq, _ in pairs) <= 2 for q in meta["test"])
    assert retrieval.main(spec, tmp_path / "b" / "pairs-query.txt") == pairs  # seeded and single-threaded
    res = localize({**spec, "query_pairs": tmp_path / "a" / "pairs-query.txt"}, tmp_path)
    assert res["retrieval"].startswith("visual") and res["oracle"]["retrieval"].startswith("oracle")
    assert res["num_query_pairs"] == len(pairs) and res["oracle"]["num_queries"] == res["num_queries"] == 3
