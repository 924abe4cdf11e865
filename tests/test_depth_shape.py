"""The depth stage's shape step (focal + point cloud from a shift/focal model) and scenes without SfM."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import DEMO_IMAGES, REPO
from matchforge.errors import MatchforgeError
from test_depth_anything import save_tiny_depth_anything
from test_workflow import planned_jobs, snakemake


def save_shape_model(run_dir, seed: int = 0) -> None:
    """A randomly initialised focal/shift pair in the format `shiftfocal-train` writes."""
    from matchforge.shiftfocal.model import ModelConfig, build_model

    run_dir.mkdir(parents=True, exist_ok=True)
    for target, channels, bias in (("focal", 5, 0.925), ("shift", 3, 0.275)):
        torch.manual_seed(seed)
        cfg = ModelConfig(in_channels=channels, resolution=16, channels=[4, 4, 8, 8, 16], bias_init=bias)
        torch.save({"target": target, "model_config": cfg.to_dict(), "state_dict": build_model(cfg).state_dict()},
                   run_dir / f"{target}.pt")


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


def _photo_folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    first, second = sorted(DEMO_IMAGES.glob("*.jpg"))[:2]
    shutil.copy(first, photos / "a.jpg")
    # the same photo stored sideways with an EXIF tag saying so: depth must come out upright
    img = Image.open(second)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.transpose(Image.Transpose.ROTATE_90).save(photos / "b.jpg", exif=exif)
    (photos / "broken.jpg").write_bytes(first.read_bytes()[:2000])
    return photos, Image.open(first).size, Image.open(second).size


def test_single_images_get_depth_and_shape_without_sfm(tmp_path):
    from matchforge.depth.predict import predict_photos
    from matchforge.depth.rawpng import read_raw
    from matchforge.depth.shape import main as shape

    photos, size_a, size_b = _photo_folder(tmp_path)
    save_tiny_depth_anything(tmp_path / "da")
    conf = {"backend": "depth_anything", "depth_anything": {"model": str(tmp_path / "da"), "device": "cpu"}}
    out = tmp_path / "depth"
    summary = predict_photos(conf, photos, out, scene="photos")
    inputs = json.loads((out / "inputs.json").read_text())
    assert summary["num_images"] == 2 and inputs["images"] == ["a.jpg", "b.jpg"] and inputs["rotated_from_exif"] == ["b.jpg"]
    assert [s["file"] for s in inputs["skipped"]] == ["broken.jpg"]
    values, meta = read_raw(out / "raw" / "b.png")
    assert meta["kind"] == "disparity" and values.shape == (size_b[1], size_b[0])  # upright, not as stored
    assert read_raw(out / "raw" / "a.png")[0].shape == (size_a[1], size_a[0])

    save_shape_model(tmp_path / "model")
    res = shape(SHAPE, out / "raw", tmp_path / "model", tmp_path / "shape.json", tmp_path / "shape", tmp_path / "shape.png",
                images=out / "images", scene="photos")
    assert [r["stem"] for r in res["images"]] == ["a", "b"]
    for r in res["images"]:
        raw = read_raw(out / "raw" / f"{r['stem']}.png")[0]
        assert "focal_err" not in r and 0 < r["vfov_deg"] < 180 and r["valid"] == pytest.approx(np.mean(raw > 0))
        assert r["vfov_deg"] == pytest.approx(np.degrees(2 * np.arctan(r["height"] / 2 / r["focal_px"])))


def test_single_images_need_a_network_backend(tmp_path):
    from matchforge.depth.predict import predict_photos

    photos, _, _ = _photo_folder(tmp_path)
    with pytest.raises(MatchforgeError, match="depth.backend: depth_anything"):
        predict_photos({"backend": "sparse"}, photos, tmp_path / "depth", scene="photos")


def _config_with(tmp_path, extra_scene: dict, **sections) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["scenes"]["photos"] = extra_scene
    config.update(sections)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "resources").symlink_to(REPO / "resources")


def test_workflow_plans_no_sfm_for_single_images(tmp_path):
    photos, _, _ = _photo_folder(tmp_path)
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
