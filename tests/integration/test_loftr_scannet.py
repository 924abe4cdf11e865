"""LoFTR on ScanNet-format data (LoFTR's training indices + python-exported scenes), built from real TUM RGB-D
frames laid out the way ScanNet is: colour at a larger size than the 640x480 its intrinsics refer to."""

from __future__ import annotations

import numpy as np

from testkit.tum import SMALL_MODEL
from testkit.scannet import scannet_conf
from matchforge.dataset.indices import read_scannet_list


def test_train_and_evaluate_on_scannet_format(scannet_root, tmp_path):
    from matchforge.evaluation.relpose import match, score
    from matchforge.evaluation.config import PoseScoring
    from matchforge.matchers import get_matcher
    from matchforge.loftr.train import main as train_main

    c = scannet_conf(scannet_root)
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
    res = score(val[:1], tmp_path / "m.h5", **PoseScoring().to_dict())
    assert res["num_pairs"] == 1 and len(seen[0][0]) > 0
    from matchforge.evaluation.relpose import to_intrinsics_frame

    k0 = seen[0][0]
    assert k0[:, 0].max() > 640  # the matcher's own output is in pixels of the 1280x960 file ...
    np.testing.assert_allclose(to_intrinsics_frame(k0, val[0].image0, val[0].size0), k0 / 2)  # ... evaluated at 640x480
    assert res["pairs"][0]["num_matches"] == len(k0)


def test_workflow_trains_a_scannet_run_without_a_dataset(scannet_root, tmp_path):
    import yaml

    from testkit import REPO
    from testkit.workflow import planned_jobs, snakemake

    work = tmp_path / "w"
    work.mkdir()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["loftr"]["runs"] = {"indoor": {"scannet": scannet_conf(scannet_root), "testsets": [],
                                          "train": {"pad": False, "depth_max_size": None, "min_overlap": 0.4}}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    (work / "resources").symlink_to(REPO / "resources")
    proc = snakemake(work, "-n", "results/models/loftr/indoor/weights.pt")
    assert planned_jobs(proc) == {"loftr_train": 1}  # no SfM, depth or dataset job: the indices and frames are the user's
    config["loftr"]["runs"]["indoor"]["dataset"] = "demo"
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", check=False)
    assert proc.returncode != 0 and "needs exactly one of `dataset`" in proc.stdout + proc.stderr
