"""Shared test fixtures (the demo scene's SfM and dataset, computed once per session) and the suite's rules: tests under
tests/integration/ are marked ``slow`` by their folder, skips are failures unless marked ``gpu``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from testkit import DEMO_IMAGES, REPO

pytest_plugins = ["testkit.fixtures"]  # fixtures both tiers use

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
    from matchforge.config_check import validate_config
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
    from matchforge.config_check import validate_config

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


INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config, items):
    """Tests under tests/integration/ are ``slow`` (they run the workflow, SfM or training; ``make test-unit`` leaves
    them out). Tests marked ``gpu`` need CUDA: without it they are skipped (and counted in the summary)."""
    import torch

    cuda = torch.cuda.is_available()
    for item in items:
        if INTEGRATION in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("gpu") and not cuda:
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
