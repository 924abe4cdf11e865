"""Localization (hloc's Aachen protocol): on the demo scene's held-out photos, and on a folder in the exact Aachen
Day-Night v1.1 layout built from the Reichstag photos, whose ground truth comes from the Image Matching Challenge
reconstruction (independent of anything matchforge computes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import real_data
from matchforge.errors import MatchforgeError

SIFT = {"name": "sift", "ratio": 0.8, "max_keypoints": 4096}


def make_aachen(root: Path, queries: int = 3) -> dict[str, Path]:
    """Reichstag in the Aachen v1.1 layout: database images with their IMC poses and intrinsics as the model
    (no points, as hloc's triangulation discards them anyway), the other photos as day queries with intrinsics,
    exhaustive pair lists, and the queries' IMC poses as a ground-truth file in the submission format."""
    import pycolmap

    from matchforge.io import aachen
    from matchforge.io.calibration import ImcScene

    src = real_data("reichstag")
    scene = ImcScene(src)
    stems = sorted(p.stem for p in (src / "images").glob("*.jpg"))
    query_stems = stems[1::3][:queries]
    model = pycolmap.Reconstruction()
    query_lines, truth, names = [], {}, {}
    for k, stem in enumerate(stems, 1):
        K, T = scene.camera(stem)
        w, h = Image.open(scene.image(stem)).size
        camera = pycolmap.Camera(model="PINHOLE", width=w, height=h, params=[K[0, 0], K[1, 1], K[0, 2], K[1, 2]], camera_id=k)
        if stem in query_stems:
            name = f"query/day/nexus5x/{stem}.jpg"
            query_lines.append(f"{name} PINHOLE {w} {h} {K[0, 0]} {K[1, 1]} {K[0, 2]} {K[1, 2]}")
            truth[name] = T
        else:
            name = f"db/{stem}.jpg"
            model.add_camera_with_trivial_rig(camera)
            model.add_image_with_trivial_frame(pycolmap.Image(name=name, camera_id=k, image_id=k),
                                               pycolmap.Rigid3d(pycolmap.Rotation3d(T[:3, :3]), T[:3, 3]))
        names[stem] = name
        (root / aachen.IMAGES / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(scene.image(stem), root / aachen.IMAGES / name)
    (root / aachen.MODEL).mkdir(parents=True)
    model.write_binary(str(root / aachen.MODEL))
    (root / "queries").mkdir()
    (root / "queries" / aachen.QUERY_FILES[0]).write_text("\n".join(query_lines) + "\n")
    db = [names[s] for s in stems if s not in query_stems]
    aachen.write_pairs(root / "pairs-db.txt", [(a, b) for i, a in enumerate(db) for b in db[i + 1:]])
    aachen.write_pairs(root / "pairs-query.txt", [(q, d) for q in truth for d in db])
    aachen.write_submission(root / "ground_truth.txt", truth)
    return {"aachen": root, "db_pairs": root / "pairs-db.txt", "query_pairs": root / "pairs-query.txt",
            "ground_truth": root / "ground_truth.txt"}


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


def test_aachen_layout_errors_name_the_file_and_the_fix(tmp_path):
    from matchforge.evaluation.localization import problem

    files = make_aachen(tmp_path / "aachen", queries=1)
    spec = {k: str(v) for k, v in files.items()}
    Path(files["query_pairs"]).write_text("query/day/nexus5x/missing.jpg db/x.jpg\n")
    with pytest.raises(MatchforgeError, match="unknown names") as err:
        problem(spec)
    assert "pairs-query.txt" in str(err.value)
    with pytest.raises(MatchforgeError, match="no 3D points"):
        problem({**spec, "query_pairs": _first_query_pair(files, tmp_path), "db_pairs": None})
    shutil.rmtree(tmp_path / "aachen" / "3D-models")
    with pytest.raises(MatchforgeError, match="aachen_v_1_1"):
        problem(spec)


def _first_query_pair(files: dict, tmp_path: Path) -> str:
    query = (Path(files["aachen"]) / "queries" / "day_time_queries_with_intrinsics.txt").read_text().split()[0]
    db = next((Path(files["aachen"]) / "images" / "images_upright" / "db").iterdir()).name
    (tmp_path / "ok.txt").write_text(f"{query} db/{db}\n")
    return str(tmp_path / "ok.txt")


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


def test_dense_keypoints_are_gathered_over_pairs_and_assigned_within_the_tolerance():
    """hloc's assignment for dense matchers: the same scene point matched in two pairs at slightly different
    sub-pixel positions is one keypoint (one cell); a query pair's database point joins the nearest database
    keypoint within max_error_px, else the match is dropped. Pixels are of the size the matcher saw."""
    from matchforge.evaluation.localization import assign_matches

    stored = {("db1", "db2"): (np.array([[10.2, 10.3], [50.0, 50.0]]), np.array([[20.0, 20.0], [60.0, 60.0]])),
              ("db1", "db3"): (np.array([[11.1, 10.9], [90.0, 90.0]]), np.array([[30.0, 30.0], [70.0, 70.0]])),
              ("q", "db1"): (np.array([[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]]), np.array([[10.5, 10.5], [51.0, 49.5], [80.0, 80.0]]))}
    reader = lambda a, b, sizes=None: stored[(a, b)]  # noqa: E731
    kps, db, q = assign_matches(reader, [("db1", "db2"), ("db1", "db3")], [("q", "db1")], 4.0, 2.0, lambda n: 1.0)
    assert len(kps.array("db1")) == 3  # (10.2, 10.3) and (11.1, 10.9) share a 4-px cell: 3 keypoints, not 4
    assert db[("db1", "db2")][0, 0] == db[("db1", "db3")][0, 0]  # the same keypoint in both pairs: a track
    assert len(q[("q", "db1")]) == 2  # (80, 80) is over 2 px from every database keypoint: dropped
    _, _, one_px = assign_matches(reader, [("db1", "db2"), ("db1", "db3")], [("q", "db1")], 1.0, 1.0, lambda n: 1.0)
    assert len(one_px[("q", "db1")]) == 1  # 1 px: (51, 49.5) is 1.1 px from (50, 50), dropped
    # the matcher saw the images at half size: cells and tolerance scale with the image
    kps2, _, q2 = assign_matches(reader, [("db1", "db2"), ("db1", "db3")], [("q", "db1")], 2.0, 1.0, lambda n: 2.0)
    assert len(kps2.array("db1")) == 3 and len(q2[("q", "db1")]) == 2
