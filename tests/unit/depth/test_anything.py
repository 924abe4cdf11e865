"""The real transformers loading path (from_pretrained on a local directory, offline) with tiny randomly
initialised Depth-Anything models built here; no download."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from testkit import DEMO_IMAGES
from testkit.models import save_tiny_depth_anything
from matchforge.errors import MatchforgeError


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_da")
    save_tiny_depth_anything(root / "relative", "relative")
    save_tiny_depth_anything(root / "metric", "metric")
    return root


def demo_rgb(n: int = 3) -> list[tuple[str, np.ndarray]]:
    paths = sorted(DEMO_IMAGES.glob("*.jpg"))[:n]
    return [(p.name, cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)) for p in paths]


def test_local_dir_loads_offline_and_predicts_at_image_size(tiny_models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from matchforge.depth.anything import DepthAnything

    net = DepthAnything({"model": str(tiny_models / "relative"), "batch_size": 2, "device": "cpu"})
    assert net.kind == "disparity"
    images = demo_rgb(3)
    out = dict(net.predict(images))
    assert set(out) == {k for k, _ in images}
    for key, rgb in images:
        assert out[key].shape == rgb.shape[:2] and out[key].dtype == np.float32
        assert np.isfinite(out[key]).all() and (out[key] >= 0).all()
        assert out[key].std() > 0  # a real forward pass, not a constant


def test_batching_does_not_change_the_output(tiny_models):
    from matchforge.depth.anything import DepthAnything

    key, rgb = demo_rgb(1)[0]
    items = [("a", rgb), ("b", rgb[:, ::-1].copy()), ("c", rgb)]
    one = dict(DepthAnything({"model": str(tiny_models / "relative"), "batch_size": 1, "device": "cpu"}).predict(items))
    three = dict(DepthAnything({"model": str(tiny_models / "relative"), "batch_size": 3, "device": "cpu"}).predict(items))
    for k in "abc":
        np.testing.assert_allclose(one[k], three[k], rtol=1e-4, atol=1e-5)
    assert not np.allclose(one["a"], one["b"])


def test_metric_model_is_recognised(tiny_models):
    from matchforge.depth.anything import DepthAnything

    net = DepthAnything({"model": str(tiny_models / "metric"), "device": "cpu"})
    assert net.kind == "metric"
    (_, d), = net.predict(demo_rgb(1))
    assert 0 <= d.min() and d.max() <= 20.0 * 1.05  # sigmoid * max_depth, plus bicubic overshoot


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from matchforge.depth.anything import DepthAnything

    (tmp_path / "empty").mkdir()
    with pytest.raises(MatchforgeError, match="depth.depth_anything.model"):
        DepthAnything({"model": str(tmp_path / "empty")})
    with pytest.raises(MatchforgeError, match="cannot load depth model"):
        DepthAnything({"model": "no-such-org/no-such-depth-model", "local_files_only": True})
