"""The multi-view consistency filter on real data with known depth: the TUM RGB-D fr1 pair (Kinect depth,
motion-capture poses) and Middlebury Motorcycle (subpixel ground-truth disparity), each with a corrupted
region injected into one view; and the demo scene with one image's depth scaled by 1.5."""

from __future__ import annotations

import json
import shutil
import pytest


def test_demo_image_scaled_by_half_again_is_filtered_the_others_kept(demo_sfm, demo_dataset, tmp_path):
    from testkit import REPO
    from matchforge.depth import consistency
    from matchforge.io.depth import read_depth, write_depth

    aligned = tmp_path / "aligned"
    shutil.copytree(demo_dataset.parents[1] / "depth" / "aligned", aligned)
    victim = sorted(aligned.glob("*.h5"))[3]
    write_depth(victim, read_depth(victim) * 1.5)
    import yaml

    from matchforge.conf import scene_conf
    from matchforge.config_check import validate_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(config)
    report = consistency.main(scene_conf(config, "sacre_coeur", "depth"), demo_sfm, aligned, tmp_path / "h5",
                              tmp_path / "consistency.json", scene="sacre_coeur")
    saved = json.loads((tmp_path / "consistency.json").read_text())
    assert saved == json.loads(json.dumps(report))
    kept = {stem: e["retained"] for stem, e in saved["images"].items()}
    print("retained per image:", {k: round(v, 3) for k, v in kept.items()})
    assert kept.pop(victim.stem) < 0.2
    assert min(kept.values()) > 0.8
    for stem, e in saved["images"].items():
        assert e["valid_after"] == pytest.approx(float((read_depth(tmp_path / "h5" / f"{stem}.h5") > 0).mean()))
