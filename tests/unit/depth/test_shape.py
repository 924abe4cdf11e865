"""The depth stage's shape step (focal + point cloud from a shift/focal model) and scenes without SfM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matchforge.errors import MatchforgeError
from testkit.models import save_tiny_depth_anything
from testkit.models import save_shape_model
from testkit.photos import sideways_photo_folder


SHAPE = {"shape": {"run": "r", "num_points": 1024, "ply_points": 5000}}


def test_single_images_get_depth_and_shape_without_sfm(tmp_path):
    from matchforge.depth.predict import predict_photos
    from matchforge.depth.rawpng import read_raw
    from matchforge.depth.shape import main as shape

    photos, size_a, size_b = sideways_photo_folder(tmp_path)
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

    photos, _, _ = sideways_photo_folder(tmp_path)
    with pytest.raises(MatchforgeError, match="depth.backend: depth_anything"):
        predict_photos({"backend": "sparse"}, photos, tmp_path / "depth", scene="photos")
