"""COLMAP models as plain arrays: :class:`Scene` and its :class:`View` s (undistorted PINHOLE cameras).

Poses are world->camera, intrinsics are pixels of the image at full resolution, observations are in
matchforge's pixel convention (which is COLMAP's; :mod:`matchforge.geometry.pixels`), depths and
translations in SfM units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class View:
    """One registered image of a model."""

    name: str
    image_id: int
    width: int
    height: int
    K: np.ndarray  # (3, 3) float64, pixels
    T_cw: np.ndarray  # (4, 4) float64, world -> camera
    point_ids: np.ndarray = field(repr=False)  # (N,) int64, ids of observed 3D points
    xy: np.ndarray = field(repr=False)  # (N, 2) float64, COLMAP pixel coords of those observations

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates (SfM units)."""
        R, t = self.T_cw[:3, :3], self.T_cw[:3, 3]
        return -R.T @ t


@dataclass
class Scene:
    """Registered views and 3D points of one (undistorted, PINHOLE) sparse model."""

    views: dict[str, View]  # by image name, in name order
    point_xyz: dict[int, np.ndarray] = field(repr=False)  # point3D id -> (3,) world coords

    def points_of(self, view: View) -> np.ndarray:
        """(N, 3) world coordinates of the points ``view`` observes, aligned with ``view.xy``."""
        if len(view.point_ids) == 0:
            return np.zeros((0, 3))
        return np.stack([self.point_xyz[int(i)] for i in view.point_ids])

    def camera_points(self, view: View) -> np.ndarray:
        """(N, 3) observed points in ``view``'s camera frame; column 2 is the SfM depth z."""
        X = self.points_of(view)
        return X @ view.T_cw[:3, :3].T + view.T_cw[:3, 3]


def load_scene(sparse_dir: str | Path) -> Scene:
    """Load a COLMAP model (binary or text) whose cameras are PINHOLE, SIMPLE_PINHOLE or equivalent.

    Raises ``ValueError`` for a camera model with distortion: undistort first (the SfM stage does).
    """
    import pycolmap

    rec = pycolmap.Reconstruction(str(sparse_dir))
    views: dict[str, View] = {}
    for image_id, image in sorted(rec.images.items(), key=lambda kv: kv[1].name):
        if not image.has_pose:
            continue
        cam = rec.cameras[image.camera_id]
        model = cam.model.name
        if model not in ("PINHOLE", "SIMPLE_PINHOLE"):
            raise ValueError(f"{sparse_dir}: camera {cam.camera_id} is {model}; expected an undistorted PINHOLE model")
        pose = image.cam_from_world() if callable(image.cam_from_world) else image.cam_from_world
        T = np.eye(4)
        T[:3, :4] = pose.matrix()
        observed = image.get_observation_points2D()  # only keypoints with a 3D point: ~2x faster than all
        ids = np.fromiter((p.point3D_id for p in observed), np.int64, len(observed))
        xy = np.array([p.xy for p in observed], dtype=np.float64).reshape(-1, 2)
        views[image.name] = View(image.name, int(image_id), int(cam.width), int(cam.height),
                                 np.asarray(cam.calibration_matrix(), dtype=np.float64), T, ids, xy)
    points = {int(pid): np.asarray(p.xyz, dtype=np.float64) for pid, p in rec.points3D.items()}
    return Scene(views, points)
