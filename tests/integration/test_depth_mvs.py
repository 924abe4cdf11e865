"""depth.backend: mvs (COLMAP PatchMatch stereo). On a CPU build of pycolmap the config is refused before
anything runs; with CUDA (marked gpu) it runs on the demo scene and must beat the sparse backend's coverage
with equally transferable depth."""

from __future__ import annotations

import json

import pycolmap
import pytest
import yaml

from testkit import REPO


@pytest.mark.gpu
@pytest.mark.skipif(not pycolmap.has_cuda, reason="gpu: needs CUDA (pycolmap-cuda12)")
def test_mvs_depth_on_the_demo_scene(demo_sfm, tmp_path):
    from matchforge.conf import scene_conf
    from matchforge.depth import align, consistency, predict, qa
    from matchforge.config_check import validate_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(config)
    base = scene_conf(config, "sacre_coeur", "depth")
    results = {}
    for backend in ("sparse", "mvs"):
        conf = {**base, "backend": backend}
        out = tmp_path / backend
        predict.main(conf, demo_sfm, out, scene="sacre_coeur")
        align.main(conf, demo_sfm, out / "raw", out / "aligned", out / "align.json", scene="sacre_coeur")
        consistency.main(conf, demo_sfm, out / "aligned", out / "h5", out / "consistency.json", scene="sacre_coeur")
        results[backend] = qa.main(conf, demo_sfm, out / "raw", out / "h5", out / "qa.json", scene="sacre_coeur",
                                   consistency_report=out / "consistency.json")
    print(json.dumps({b: {k: r[k] for k in ("coverage_mean", "track_transfer_holdout", "consistency")}
                      for b, r in results.items()}, indent=1))
    assert results["mvs"]["coverage_mean"] > 2 * results["sparse"]["coverage_mean"]
    assert results["mvs"]["track_transfer_holdout"]["median_px"] < 2.0
