"""Helpers shared by the depth commands: their options parsed, the scene's views, image loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.images import read_image
from matchforge.io.colmap import Scene, View, load_scene
from matchforge.depth.config import DepthSection


def depth_options(conf: Mapping[str, Any] | None) -> dict[str, Any]:
    """A depth command's options: ``conf`` (the scene's ``depth`` section, or any part of it given by hand) parsed by
    :class:`~matchforge.depth.config.DepthSection`, every default filled in, as plain options."""
    return DepthSection.of(conf, "depth").to_dict()


def load_sfm(sfm_dir: str | Path, scene: str | None = None) -> Scene:
    """The undistorted model under ``sfm_dir/sparse`` (SfM stage layout), with a clear error if absent."""
    sparse = Path(sfm_dir) / "sparse"
    if not sparse.is_dir() or not any(sparse.glob("images.*")):
        raise MatchforgeError("no COLMAP model (images.bin/images.txt) found", scene=scene, path=sparse,
                              fix="run the sfm stage first (snakemake results/<scene>/sfm/stats.json) "
                                  "or pass --sfm pointing at a folder with sparse/ and images/")
    try:
        model = load_scene(sparse)
    except ValueError as err:
        raise MatchforgeError(str(err), scene=scene, path=sparse,
                              fix="use the undistorted PINHOLE model written by the sfm stage") from err
    if not model.views:
        raise MatchforgeError("the model has no registered images", scene=scene, path=sparse,
                              fix="check the SfM log; the scene needs overlapping photos")
    stems: dict[str, str] = {}
    for name in model.views:
        stem = Path(name).stem
        if stem in stems:
            raise MatchforgeError(f"images '{stems[stem]}' and '{name}' share the stem '{stem}', so their depth "
                                  "files would collide", scene=scene, path=sparse,
                                  fix="rename one of the photos so that file names without extension are unique")
        stems[stem] = name
    return model


def read_rgb(path: Path, view: View, scene: str | None = None) -> np.ndarray:
    """RGB uint8 image of ``view``; checks that it has the size the model says."""
    rgb = read_image(path, scene=scene, fix="rerun the sfm stage; the undistorted image is missing or corrupt")
    if rgb.shape[:2] != (view.height, view.width):
        raise MatchforgeError(f"image is {rgb.shape[1]}x{rgb.shape[0]} but the model says "
                              f"{view.width}x{view.height}", scene=scene, path=path,
                              fix="use the images/ folder written together with sparse/ by the sfm stage")
    return rgb
