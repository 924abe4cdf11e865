"""LoFTR on ScanNet-format data (LoFTR's training indices + python-exported scenes), built from real TUM RGB-D
frames laid out the way ScanNet is: colour at a larger size than the 640x480 its intrinsics refer to."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from testkit import real_data
from testkit.tum import K_FR1, tum_pair
from testkit.scannet import SCANNET_SCENE, scannet_conf
from matchforge.dataset.indices import read_scannet_list
from matchforge.loftr.data import PairDataset
from matchforge.loftr.supervision import coarse_supervision


def test_index_reader_and_ground_truth_match_the_original_frames(scannet_root, tmp_path):
    c = scannet_conf(scannet_root)
    recs = read_scannet_list(c["npz_root"], c["list"], c["intrinsics"], c["data_root"], min_overlap=0.4)
    assert len(recs) == 1 and recs[0].overlap == 0.6 and recs[0].scene == f"{SCANNET_SCENE}_0"  # score 0.3 dropped
    assert len(read_scannet_list(c["npz_root"], c["list"], c["intrinsics"], c["data_root"])) == 2
    rec, ref = recs[0], tum_pair(real_data("tum_rgbd"), tmp_path)
    assert rec.size0 == (640, 480) and np.array_equal(rec.K0, K_FR1)
    np.testing.assert_allclose(rec.T_0to1, ref.T_0to1, atol=1e-9)
    # the 1280x960 colour is brought to the 640x480 its K refers to: same scales, same ground truth
    ours = default_collate([PairDataset([rec], img_resize=320, pad=False, depth_max_size=None, interpolation="linear")[0]])
    theirs = default_collate([PairDataset([ref], img_resize=320, pad=False, depth_max_size=None, interpolation="linear")[0]])
    assert ours["image0"].shape == theirs["image0"].shape == (1, 1, 240, 320)
    assert torch.equal(ours["scale0"], theirs["scale0"]) and torch.equal(ours["K0"], theirs["K0"])
    assert (ours["image0"] - theirs["image0"]).abs().mean() < 0.02  # JPEG + two resizes
    a, b = coarse_supervision(ours, depth_check=False), coarse_supervision(theirs, depth_check=False)
    assert len(a["spv_i_ids"]) > 300
    # ScanNet depth is whole millimetres: a few borderline cells may round differently
    same = set(zip(a["spv_i_ids"].tolist(), a["spv_j_ids"].tolist())) & set(zip(b["spv_i_ids"].tolist(), b["spv_j_ids"].tolist()))
    assert len(same) >= 0.98 * len(b["spv_i_ids"])


def test_a_run_needs_one_data_source(tmp_path):
    from matchforge.errors import MatchforgeError
    from matchforge.loftr.train import main as train_main

    with pytest.raises(MatchforgeError, match="no training data"):
        train_main({"accelerator": "cpu"}, None, tmp_path / "run")
    with pytest.raises(MatchforgeError, match="ScanNet frames not found"):
        train_main({"scannet": {**_conf_missing(tmp_path)}, "accelerator": "cpu"}, None, tmp_path / "run")


def _conf_missing(tmp_path):
    (tmp_path / "idx").mkdir()
    np.savez(tmp_path / "idx" / "a.npz", name=np.array([[0, 0, 0, 1]], np.uint16), score=np.array([0.9]))
    (tmp_path / "idx" / "list.txt").write_text("a\n")
    np.savez(tmp_path / "idx" / "intrinsics.npz", **{SCANNET_SCENE: K_FR1})
    (tmp_path / "scans" / SCANNET_SCENE / "pose").mkdir(parents=True)
    for f in (0, 1):
        np.savetxt(tmp_path / "scans" / SCANNET_SCENE / "pose" / f"{f}.txt", np.eye(4))
    return {"npz_root": str(tmp_path / "idx"), "list": str(tmp_path / "idx" / "list.txt"),
            "intrinsics": str(tmp_path / "idx" / "intrinsics.npz"), "data_root": str(tmp_path / "scans")}
