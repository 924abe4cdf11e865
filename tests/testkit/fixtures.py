"""Fixtures shared by the unit and integration tiers (a pytest plugin: tests/conftest.py loads it). Each builds
real data once per module: a ScanNet layout from TUM frames, shift/focal training data and items, a LoFTR run to
fine-tune from."""

from __future__ import annotations

import json

import pytest
import torch

from testkit import real_data
from testkit.cli import mf
from testkit.scannet import make_scannet
from testkit.tum import LOFTR_BASE, TUM_ROOT, tiny_dataset


@pytest.fixture
def scannet_root(tmp_path):
    """index/ (scene_data/train/*.npz, train list, intrinsics.npz) and scans/<scene>/{color,depth,pose}."""
    return make_scannet(tmp_path)


@pytest.fixture(scope="module")
def tum_data(tmp_path_factory):
    """shiftfocal-data on the real TUM frames at 96 px, a quarter held out."""
    out = tmp_path_factory.mktemp("sf") / "data" / "tum"
    r = mf("shiftfocal-data", "--source", "tum", "--path", str(real_data("tum_rgbd")), "--out", str(out),
           "--conf", json.dumps({"type": "tum", "max_side": 96, "holdout": 0.25}))
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def no_denormals():
    """As the training and inference entry points do (subnormal floats make CPU training ~10x slower)."""
    from matchforge.shiftfocal.model import flush_denormals

    flush_denormals()
    yield
    torch.set_flush_denormal(False)


@pytest.fixture(scope="module")
def real_items():
    """Training items: one TUM frame per sequence (fr1, fr3) and the Middlebury motorcycle, at 160 px."""
    from matchforge.shiftfocal.readers import read_middlebury, read_tum, resize_item

    tum = read_tum(real_data("tum_rgbd"))
    mb = read_middlebury(real_data("middlebury_motorcycle"),
                         {"f": 994.978, "cx": 311.193, "cy": 254.877, "doffs": 31.086, "baseline_m": 0.193001})
    return [resize_item(i, 160) for i in (tum[0], tum[2], mb[0])]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A run trained for 2 steps: the weights the tests fine-tune from."""
    from matchforge.loftr.train import main as train_main

    tmp = tmp_path_factory.mktemp("ft")
    dataset = tiny_dataset(TUM_ROOT, tmp / "ds")
    train_main({**LOFTR_BASE, "temp_bug_fix": False}, dataset, tmp / "a", run="a")
    return dataset, tmp / "a"
