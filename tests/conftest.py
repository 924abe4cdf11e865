"""Shared test fixtures: where the repo and the real data are, and the demo scene's SfM (computed once)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_IMAGES = REPO / "resources" / "demo" / "sacre_coeur" / "images"


TESTSETS = REPO / "resources" / "testsets"
# SfM options for workflow tests: small and single-threaded (the model repeats exactly)
FAST_SFM = {"max_image_size": 640, "max_num_features": 2048, "camera_mode": "per_image", "num_threads": 1}


def real_data(*parts: str) -> Path:
    """Real test data bundled with the repo under ``resources/testsets/`` (each set with its SOURCE.md);
    a fresh clone has all of it, so a missing path is a failure, never a skip."""
    p = TESTSETS.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"real test data not found: {p} (it ships with the repo: check out resources/testsets)")
    return p


@pytest.fixture(scope="session")
def demo_sfm(tmp_path_factory) -> Path:
    """SfM of the demo scene (sacre_coeur) with the shipped config's options, run once per session.

    Returns the folder holding ``sparse/``, ``images/`` and ``stats.json`` (docs/artifacts.md).
    Set MATCHFORGE_DEMO_SFM to an existing such folder to skip the computation while developing.
    """
    if os.environ.get("MATCHFORGE_DEMO_SFM"):
        return Path(os.environ["MATCHFORGE_DEMO_SFM"])
    from matchforge.conf import scene_conf
    from matchforge.sfm.reconstruct import main as sfm_main
    from matchforge.config_schema import validate_config
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(config)
    out = tmp_path_factory.mktemp("demo") / "sacre_coeur" / "sfm"
    sfm_main(scene_conf(config, "sacre_coeur", "sfm"), DEMO_IMAGES, out, scene="sacre_coeur")
    return out


@pytest.fixture
def clean_copy(tmp_path):
    """Copy a folder into tmp_path (for tests that modify their inputs)."""

    def _copy(src: Path, name: str | None = None) -> Path:
        dst = tmp_path / (name or src.name)
        shutil.copytree(src, dst)
        return dst

    return _copy


@pytest.fixture(scope="session")
def demo_dataset(demo_sfm, tmp_path_factory) -> Path:
    """The demo scene as the shipped config builds it: sparse-backend depth aligned to the SfM, scene
    info with overlap buckets, and dataset 'demo' (7 training photos, 3 test photos). Returns dataset.json."""
    import yaml

    from matchforge.conf import scene_conf
    from matchforge.dataset import build, scene_info
    from matchforge.depth import align, consistency, predict
    from matchforge.config_schema import validate_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(config)
    root = tmp_path_factory.mktemp("demo_dataset")
    depth_conf = scene_conf(config, "sacre_coeur", "depth")
    predict.main(depth_conf, demo_sfm, root / "depth", scene="sacre_coeur")
    align.main(depth_conf, demo_sfm, root / "depth" / "raw", root / "depth" / "aligned", root / "depth" / "align.json",
               scene="sacre_coeur")
    consistency.main(depth_conf, demo_sfm, root / "depth" / "aligned", root / "depth" / "h5",
                     root / "depth" / "consistency.json", scene="sacre_coeur")
    scene_info.main(scene_conf(config, "sacre_coeur", "scene_info"), demo_sfm / "sparse", demo_sfm / "images",
                    root / "depth" / "h5", root / "si", "sacre_coeur")
    build.main(config["datasets"]["demo"], "demo", {"sacre_coeur": root / "si"}, {"sacre_coeur": demo_sfm / "images"},
               {"sacre_coeur": root / "depth" / "h5"}, root / "demo")
    return root / "demo" / "dataset.json"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: without it they are skipped (and counted in the summary)."""
    import torch

    if torch.cuda.is_available():
        return
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(pytest.mark.skip(reason="gpu: needs CUDA"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip is a failure unless the test is marked ``gpu``: every other test must run on a fresh clone
    (its data ships in resources/), so a skip would hide half a suite behind a green result."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not item.get_closest_marker("gpu") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped without a gpu marker (skips are failures here): {reason}"


def pytest_terminal_summary(terminalreporter):
    gpu = [r for r in terminalreporter.stats.get("skipped", []) if "gpu: needs CUDA" in str(r.longrepr)]
    if gpu:
        terminalreporter.write_line(f"{len(gpu)} GPU-only test(s) skipped: no CUDA device")
