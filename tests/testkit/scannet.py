"""ScanNet's layout built from real TUM RGB-D frames: LoFTR's training index (scene_data/train/*.npz, a list,
intrinsics.npz) and python-exported scans (colour at 1280x960, larger than the 640x480 its intrinsics refer to;
depth in mm; poses camera -> world)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from testkit import real_data
from testkit.tum import K_FR1, TUM_FR1, world_to_camera

SCANNET_SCENE = "scene0000_00"  # the scene name the index and scans use


def make_scannet(tmp_path: Path) -> Path:
    """index/ (scene_data/train/*.npz, train list, intrinsics.npz) and scans/<scene>/{color,depth,pose}."""
    tum = real_data("tum_rgbd")
    scans = tmp_path / "scans" / SCANNET_SCENE
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
    np.savez(index / "scene_data" / "train" / f"{SCANNET_SCENE}_0.npz", name=np.array([[0, 0, 0, 1], [0, 0, 1, 0]], np.uint16),
             score=np.array([0.6, 0.3]))
    (index / "scene_data" / "train_list" / "all.txt").write_text(f"{SCANNET_SCENE}_0.npz\n")
    np.savez(index / "intrinsics.npz", **{SCANNET_SCENE: K_FR1})
    return tmp_path


def scannet_conf(root: Path) -> dict[str, str]:
    """The `scannet:` options of a LoFTR run on the layout :func:`make_scannet` writes."""
    return {"npz_root": str(root / "index/scene_data/train"), "list": str(root / "index/scene_data/train_list/all.txt"),
            "intrinsics": str(root / "index/intrinsics.npz"), "data_root": str(root / "scans")}
