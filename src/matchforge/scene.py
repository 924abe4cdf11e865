"""Read an undistorted COLMAP model into plain arrays that every later stage uses.

Conventions (the same in every matchforge module):

- ``T_cw`` is the 4x4 **world->camera** pose: ``X_cam = T_cw[:3, :3] @ X_world + T_cw[:3, 3]``.
- ``K`` is the 3x3 PINHOLE intrinsic matrix of the undistorted image at its full resolution, in pixels.
- 2D observations ``xy`` are COLMAP image coordinates in pixels: the image's top-left *corner* is
  (0, 0), so the centre of pixel ``(row r, col c)`` is ``(c + 0.5, r + 0.5)``. To sample a depth map
  stored as an array ``D[r, c]`` at ``xy``, use ``D[floor(y), floor(x)]`` (nearest) or interpolate at
  ``xy - 0.5``.
- OpenCV (and a pixel grid indexed by array position) puts pixel centres on integers: convert its
  coordinates, measured on an image resized by ``scale`` (new / original size per axis), with
  :func:`opencv_to_colmap`; forgetting the ``+ 0.5`` biases keypoints by half a resized pixel.
- Depths and translations are in **SfM units** (COLMAP's arbitrary gauge) unless a stage says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def opencv_sift(max_keypoints: int):
    """OpenCV SIFT whose keypoints follow OpenCV's pixel convention exactly: with the default
    ``enable_precise_upscale=False`` its upsampled first octave shifts every keypoint by +0.25 px."""
    import cv2

    return cv2.SIFT_create(max_keypoints, 3, 0.04, 10, 1.6, cv2.CV_32F, True)


def opencv_to_colmap(xy: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """OpenCV pixel coordinates (centres on integers) measured on an image resized by ``scale``
    (resized / original size, per axis (x, y) or one number) -> COLMAP coordinates of the original image
    (top-left corner at 0, centres at +0.5)."""
    return (np.asarray(xy, dtype=np.float64) + 0.5) / np.asarray(scale, dtype=np.float64)


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
        obs = [(p.point3D_id, p.xy) for p in image.points2D if p.has_point3D()]
        ids = np.array([o[0] for o in obs], dtype=np.int64)
        xy = np.array([o[1] for o in obs], dtype=np.float64).reshape(-1, 2)
        views[image.name] = View(image.name, int(image_id), int(cam.width), int(cam.height),
                                 np.asarray(cam.calibration_matrix(), dtype=np.float64), T, ids, xy)
    points = {int(pid): np.asarray(p.xyz, dtype=np.float64) for pid, p in rec.points3D.items()}
    return Scene(views, points)
