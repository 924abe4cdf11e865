"""depth.backend: mvs (COLMAP PatchMatch stereo). On a CPU build of pycolmap the config is refused before
anything runs; with CUDA (marked gpu) it runs on the demo scene and must beat the sparse backend's coverage
with equally transferable depth."""

from __future__ import annotations

import pycolmap
import pytest

from testkit import DEMO_IMAGES, REPO
from matchforge.errors import MatchforgeError


def _config(**depth) -> dict:
    return {"scenes": {"demo": {"images": str(DEMO_IMAGES), "depth": {"backend": "mvs", **depth}}}}


def test_cpu_pycolmap_refuses_the_mvs_backend_before_anything_runs(tmp_path):
    from matchforge.depth import predict
    from matchforge.config_check import check_references, validate_config

    config = _config()
    validate_config(config)
    if pycolmap.has_cuda:  # a CUDA build accepts it
        check_references(config)
        return
    with pytest.raises(MatchforgeError) as err:
        check_references(config)
    assert "needs pycolmap built with CUDA" in str(err.value) and "matchforge[gpu]" in str(err.value)
    assert "pycolmap-cuda12" in str(err.value) and "scene 'demo'" in str(err.value)
    # a stage run by hand says the same, before touching its output folder
    with pytest.raises(MatchforgeError, match="matchforge\\[gpu\\]"):
        predict.main({"backend": "mvs"}, REPO / "nope", tmp_path / "depth", scene="demo")
    assert not (tmp_path / "depth").exists()
