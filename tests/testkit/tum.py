"""Real pairs with known geometry for the LoFTR tests (TUM RGB-D fr1: depth + motion-capture poses)."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from types import SimpleNamespace

import cv2
import h5py
import numpy as np
from scipy.spatial.transform import Rotation

from testkit import TESTSETS

TUM_ROOT = TESTSETS / "tum_rgbd"


def read_tum_groundtruth(root: Path) -> list[tuple[str, str, list[float]]]:
    """(rgb stem, depth stem, [tx ty tz qx qy qz qw] camera -> world) per ground-truth line of TUM's
    ``groundtruth_excerpt.txt``; the comment line before each pose names its rgb and depth frames."""
    rows, frames = [], None
    for line in (root / "groundtruth_excerpt.txt").read_text().splitlines():
        m = re.match(r"#\s*rgb\s+(\S+)\.png\s+\(depth\s+(\S+)\.png\)", line)
        if m:
            frames = m.groups()
        elif line.strip() and not line.startswith("#"):
            assert frames is not None, f"pose line without its frames: {line}"
            rows.append((*frames, [float(v) for v in line.split()[1:8]]))
            frames = None
    return rows


def read_tum_intrinsics(root: Path, sequence: str = "freiburg1") -> np.ndarray:
    """K of ``sequence`` from TUM's ``INTRINSICS.txt`` (official calibration)."""
    line = next(x for x in (root / "INTRINSICS.txt").read_text().splitlines() if x.startswith(sequence))
    v = {k: float(x) for k, x in re.findall(r"(fx|fy|cx|cy)=([-\d.]+)", line)}
    return np.array([[v["fx"], 0, v["cx"]], [0, v["fy"], v["cy"]], [0, 0, 1.0]])


# the fr1 pair: rgb frame, depth frame, mocap pose (camera -> world), parsed from the shipped files
TUM_FR1 = read_tum_groundtruth(TUM_ROOT)
K_FR1 = read_tum_intrinsics(TUM_ROOT)

SMALL_MODEL = {"block_dims": [32, 48, 64], "initial_dim": 32, "coarse_layers": 1, "train_pad_num_gt_min": 20}
# LoFTR training on tiny_dataset: the small network, 2 steps at 192 px on CPU
LOFTR_BASE = {"dataset": "tiny", **SMALL_MODEL, "img_resize": 192, "depth_max_size": 640, "n_samples_per_subset": 2,
              "max_epochs": 1, "warmup_step": 0, "num_workers": 0, "accelerator": "cpu", "canonical_bs": 1, "canonical_lr": 1e-3}


def world_to_camera(line: list[float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(line[3:7]).as_matrix()
    T[:3, 3] = line[:3]
    return np.linalg.inv(T)


def tum_pair(root: Path, tmp: Path) -> SimpleNamespace:
    """The fr1 pair as a PairRecord-like object; depth converted to metres in H5 files under ``tmp``."""
    paths = []
    for rgb, depth, _ in TUM_FR1:
        d = cv2.imread(str(root / "depth" / f"{depth}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 5000.0
        h5 = tmp / f"{depth}.h5"
        with h5py.File(h5, "w") as f:
            f["depth"] = d
        paths.append((root / "rgb" / f"{rgb}.png", h5))
    T0, T1 = world_to_camera(TUM_FR1[0][2]), world_to_camera(TUM_FR1[1][2])
    return SimpleNamespace(scene="tum_fr1", image0=paths[0][0], image1=paths[1][0], depth0=paths[0][1], depth1=paths[1][1],
                           K0=K_FR1, K1=K_FR1, T0=T0, T1=T1, T_0to1=T1 @ np.linalg.inv(T0), overlap=float("nan"))


def tiny_dataset(root: Path, tmp: Path) -> Path:
    """A matchforge dataset (dataset.json + MegaDepth scene-info) holding the fr1 pair in train, val and test."""
    tmp.mkdir(parents=True, exist_ok=True)
    rec = tum_pair(root, tmp)
    info = {"image_paths": np.array([str(rec.image0), str(rec.image1)], dtype=object),
            "depth_paths": np.array([str(rec.depth0), str(rec.depth1)], dtype=object),
            "intrinsics": np.array([rec.K0, rec.K1], dtype=object), "poses": np.array([rec.T0, rec.T1], dtype=object),
            "pair_infos": [(np.array([0, 1]), 0.5, np.zeros(4))]}
    (tmp / "index" / "scene_info").mkdir(parents=True, exist_ok=True)
    (tmp / "index" / "lists").mkdir(parents=True, exist_ok=True)
    with open(tmp / "index" / "scene_info" / "tum_fr1.npz", "wb") as f:
        pickle.dump(info, f)
    (tmp / "index" / "lists" / "all.txt").write_text("tum_fr1\n")
    split = {"list": "index/lists/all.txt", "data_root": "."}
    meta = {"name": "tiny", "npz_root": "index/scene_info", "splits": {"train": split, "val": split, "test": split}}
    (tmp / "dataset.json").write_text(json.dumps(meta))
    return tmp / "dataset.json"
