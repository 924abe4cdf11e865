"""Real pairs with known geometry for the LoFTR tests (TUM RGB-D fr1: depth + motion-capture poses)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import SimpleNamespace

import cv2
import h5py
import numpy as np
from scipy.spatial.transform import Rotation

# rgb frame, depth frame, ground-truth line (TUM format: t tx ty tz qx qy qz qw, camera -> world);
# see ../shared/data/tum_rgbd/groundtruth_excerpt.txt (the nearest stamps to the rgb frames).
TUM_FR1 = [
    ("1305031102.175304", "1305031102.160407", [1.3405, 0.6266, 1.6575, 0.6574, 0.6126, -0.2949, -0.3248]),
    ("1305031102.275326", "1305031102.262886", [1.3160, 0.6254, 1.6302, 0.6609, 0.6199, -0.2893, -0.3086]),
]
K_FR1 = np.array([[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1.0]])

SMALL_MODEL = {"block_dims": [32, 48, 64], "initial_dim": 32, "coarse_layers": 1, "train_pad_num_gt_min": 20}


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
