"""LoFTR on ScanNet-format data (LoFTR's training indices + python-exported scenes), built from real TUM RGB-D
frames laid out the way ScanNet is: colour at a larger size than the 640x480 its intrinsics refer to."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from conftest import real_data
from loftr_helpers import K_FR1, SMALL_MODEL, TUM_FR1, tum_pair, world_to_camera
from matchforge.dataset.indices import read_scannet_list
from matchforge.loftr.data import PairDataset
from matchforge.loftr.supervision import coarse_supervision

SCENE = "scene0000_00"


@pytest.fixture
def scannet_root(tmp_path):
    """index/ (scene_data/train/*.npz, train list, intrinsics.npz) and scans/<scene>/{color,depth,pose}."""
    tum = real_data("tum_rgbd")
    scans = tmp_path / "scans" / SCENE
    for sub in ("color", "depth", "pose"):
        (scans / sub).mkdir(parents=True)
    for frame, (rgb, depth, line) in enumerate(TUM_FR1):
        colour = cv2.imread(str(tum / "rgb" / f"{rgb}.png"))
        cv2.imwrite(str(scans / "color" / f"{frame}.jpg"), cv2.resize(colour, (1280, 960), interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 97])
        d = cv2.imread(str(tum / "depth" / f"{depth}.png"), cv2.IMREAD_UNCHANGED)  # 1/5000 m
        cv2.imwrite(str(scans / "depth" / f"{frame}.png"), np.round(d / 5.0).astype(np.uint16))  # mm, as ScanNet
        np.savetxt(scans / "pose" / f"{frame}.txt", np.linalg.inv(world_to_camera(line)))  # camera -> world
    index = tmp_path / "index"
    (index / "scene_data" / "train").mkdir(parents=True)
    (index / "scene_data" / "train_list").mkdir(parents=True)
    np.savez(index / "scene_data" / "train" / f"{SCENE}_0.npz", name=np.array([[0, 0, 0, 1], [0, 0, 1, 0]], np.uint16),
             score=np.array([0.6, 0.3]))
    (index / "scene_data" / "train_list" / "all.txt").write_text(f"{SCENE}_0.npz\n")
    np.savez(index / "intrinsics.npz", **{SCENE: K_FR1})
    return tmp_path


def _conf(root):
    return {"npz_root": str(root / "index/scene_data/train"), "list": str(root / "index/scene_data/train_list/all.txt"),
            "intrinsics": str(root / "index/intrinsics.npz"), "data_root": str(root / "scans")}


def test_index_reader_and_ground_truth_match_the_original_frames(scannet_root, tmp_path):
    c = _conf(scannet_root)
    recs = read_scannet_list(c["npz_root"], c["list"], c["intrinsics"], c["data_root"], min_overlap=0.4)
    assert len(recs) == 1 and recs[0].overlap == 0.6 and recs[0].scene == f"{SCENE}_0"  # score 0.3 dropped
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


@pytest.mark.slow
def test_train_and_evaluate_on_scannet_format(scannet_root, tmp_path):
    from matchforge.evaluation.relpose import match, score
    from matchforge.evaluation.score import SCORING_DEFAULTS
    from matchforge.matchers import get_matcher
    from matchforge.loftr.train import main as train_main

    c = _conf(scannet_root)
    conf = {"scannet": {**c, "val": c}, **SMALL_MODEL, "img_resize": 256, "pad": False, "depth_max_size": None,
            "min_overlap": 0.4, "n_samples_per_subset": 2, "max_epochs": 1, "warmup_step": 1, "num_workers": 0,
            "accelerator": "cpu"}
    summary = train_main(conf, None, tmp_path / "run", run="scannet")
    assert summary["global_step"] == 2 and summary["train_pairs"] == 1 and summary["val_pairs"] == 2
    assert (tmp_path / "run" / "weights.pt").is_file()
    # keypoints come back in the 640x480 frame of K although the files are 1280x960
    val = read_scannet_list(c["npz_root"], c["list"], c["intrinsics"], c["data_root"])
    matcher = get_matcher({"name": "loftr", "weights": tmp_path / "run" / "weights.pt", "model_conf": summary["conf"],
                           "img_resize": 256, "pad": False, "device": "cpu"})
    matcher.model.coarse_matching.thr = 0.0  # an untrained model: keep every mutual match
    seen = []
    match(lambda p0, p1: seen.append(matcher(p0, p1)) or seen[-1], val[:1], tmp_path / "m.h5", {"name": "loftr"}, 256)
    res = score(val[:1], tmp_path / "m.h5", **SCORING_DEFAULTS)
    assert res["num_pairs"] == 1 and len(seen[0][0]) > 0
    from matchforge.evaluation.relpose import to_intrinsics_frame

    k0 = seen[0][0]
    assert k0[:, 0].max() > 640  # the matcher's own output is in pixels of the 1280x960 file ...
    np.testing.assert_allclose(to_intrinsics_frame(k0, val[0].image0, val[0].size0), k0 / 2)  # ... evaluated at 640x480
    assert res["pairs"][0]["num_matches"] == len(k0)


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
    np.savez(tmp_path / "idx" / "intrinsics.npz", **{SCENE: K_FR1})
    (tmp_path / "scans" / SCENE / "pose").mkdir(parents=True)
    for f in (0, 1):
        np.savetxt(tmp_path / "scans" / SCENE / "pose" / f"{f}.txt", np.eye(4))
    return {"npz_root": str(tmp_path / "idx"), "list": str(tmp_path / "idx" / "list.txt"),
            "intrinsics": str(tmp_path / "idx" / "intrinsics.npz"), "data_root": str(tmp_path / "scans")}


def test_workflow_trains_a_scannet_run_without_a_dataset(scannet_root, tmp_path):
    import yaml

    from conftest import REPO
    from test_workflow import planned_jobs, snakemake

    work = tmp_path / "w"
    work.mkdir()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["loftr"]["runs"] = {"indoor": {"scannet": _conf(scannet_root), "testsets": [],
                                          "train": {"pad": False, "depth_max_size": None, "min_overlap": 0.4}}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    (work / "resources").symlink_to(REPO / "resources")
    proc = snakemake(work, "-n", "results/models/loftr/indoor/weights.pt")
    assert planned_jobs(proc) == {"loftr_train": 1}  # no SfM, depth or dataset job: the indices and frames are the user's
    config["loftr"]["runs"]["indoor"]["dataset"] = "demo"
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", check=False)
    assert proc.returncode != 0 and "needs exactly one of `dataset`" in proc.stdout + proc.stderr
