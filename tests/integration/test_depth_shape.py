"""The depth stage's shape step (focal + point cloud from a shift/focal model) and scenes without SfM."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from testkit import DEMO_IMAGES, REPO
from testkit.workflow import planned_jobs, snakemake
from testkit.models import save_shape_model
from testkit.photos import sideways_photo_folder


SHAPE = {"shape": {"run": "r", "num_points": 1024, "ply_points": 5000}}


def test_shape_of_demo_scene_against_sfm(demo_sfm, tmp_path):
    from matchforge.depth.predict import main as predict
    from matchforge.depth.shape import main as shape
    from matchforge.io.colmap import load_scene
    from matchforge.io.ply import read_ply

    predict({"backend": "sparse"}, demo_sfm, tmp_path / "depth", scene="sacre_coeur")
    save_shape_model(tmp_path / "model")
    res = shape(SHAPE, tmp_path / "depth" / "raw", tmp_path / "model", tmp_path / "shape.json", tmp_path / "shape",
                tmp_path / "shape.png", sparse=demo_sfm / "sparse", images=demo_sfm / "images", scene="sacre_coeur")
    views = {v.stem: v for v in load_scene(demo_sfm / "sparse").views.values()}
    assert res["summary"]["num_images"] == len(views) == 10 and (tmp_path / "shape.png").stat().st_size > 5000
    assert json.loads((tmp_path / "shape.json").read_text())["summary"] == res["summary"]
    for row in res["images"]:
        view = views[row["stem"]]
        assert row["focal_sfm_px"] == pytest.approx(view.K[1, 1])
        assert row["focal_err"] == pytest.approx(abs(row["focal_px"] / view.K[1, 1] - 1))
        # two focal steps, each ratio clamped to [0.5, 1.5]
        assert row["focal_guess_px"] / 1.5**2 - 1e-6 <= row["focal_px"] <= row["focal_guess_px"] / 0.5**2 + 1e-6
        with np.load(tmp_path / "shape" / f"{row['stem']}.npz") as z:
            depth, K = z["depth"], z["K"]
        assert depth.shape == (view.height, view.width) and np.allclose(K, row["K"])
        assert K[0, 2] == view.width / 2 and K[1, 2] == view.height / 2 and K[0, 0] == pytest.approx(row["focal_px"])
        points, colours = read_ply(tmp_path / "shape" / f"{row['stem']}.ply")
        assert len(points) == min(int((depth > 0).sum()), 5000) and colours is not None
        # every point projects back onto a pixel centre with valid recovered depth
        uv = points[:, :2] / points[:, 2:] * K[0, 0] + K[:2, 2]
        col, lin = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
        assert np.allclose(uv - np.floor(uv), 0.5, atol=2e-3)
        np.testing.assert_allclose(depth[lin, col], points[:, 2], rtol=1e-5)


def _config_with(tmp_path, extra_scene: dict, **sections) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["scenes"]["photos"] = extra_scene
    config.update(sections)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "resources").symlink_to(REPO / "resources")


def test_workflow_plans_no_sfm_for_single_images(tmp_path):
    photos, _, _ = sideways_photo_folder(tmp_path)
    scene = {"images": str(photos), "single_images": True,
             "depth": {"backend": "depth_anything", "depth_anything": {"model": str(tmp_path / "da")}, "shape": {"run": "demo"}}}
    _config_with(tmp_path, scene)
    proc = snakemake(tmp_path, "-n", "results/photos/depth/shape.json")
    jobs = planned_jobs(proc)
    assert jobs["depth_predict_single"] == 1 and jobs["depth_shape"] == 1
    assert jobs["sfm"] == jobs["depth_align"] == 1  # the demo scene's, whose depth the shift/focal run trains on
    text = proc.stdout + proc.stderr
    assert "results/sacre_coeur/sfm/stats.json" in text and "results/photos/sfm" not in text and "results/photos/depth/h5" not in text
    jobs = planned_jobs(snakemake(tmp_path, "-n"))
    assert jobs["depth_shape"] == 2 and jobs["depth_predict_single"] == 1 and jobs["sfm"] == 1


@pytest.mark.parametrize("case, message", [
    ("sparse", "no SfM points for the 'sparse' depth backend"),
    ("dataset", "without SfM (single_images: true); datasets need poses"),
    ("run", "depth.shape.run names unknown shift/focal run 'nope'"),
])
def test_single_images_config_errors(tmp_path, case, message):
    scene = {"images": str(DEMO_IMAGES), "single_images": True, "depth": {"backend": "depth_anything"}}
    sections = {}
    if case == "sparse":
        scene["depth"] = {"backend": "sparse"}
    elif case == "dataset":
        config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        sections["datasets"] = {**config["datasets"], "bad": {"scenes": ["photos"]}}
    else:
        scene["depth"]["shape"] = {"run": "nope"}
    _config_with(tmp_path, scene, **sections)
    proc = snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr and "Fix:" in proc.stdout + proc.stderr
