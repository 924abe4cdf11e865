"""The ``mvs`` backend: COLMAP's PatchMatch stereo on the scene's own undistorted images (the MegaDepth recipe).

Depth comes out in SfM units (no alignment needed) and, with ``geom_consistency``, already checked
photometrically and geometrically across views; matchforge's own consistency filter then runs on it as on
every backend. PatchMatch needs CUDA: pycolmap must be a CUDA build (``pip install 'matchforge[gpu]'``,
the ``pycolmap-cuda12`` package), which :func:`require_cuda` checks before anything runs.

The COLMAP dense workspace is built from the SfM stage's outputs without copying: ``images/`` and
``sparse/`` are links, ``stereo/patch-match.cfg`` lists every image with ``__auto__, num_sources`` (COLMAP
picks the source views from the sparse model). The per-image ``.geometric.bin`` maps are read back with
``pycolmap.DepthMap``; the workspace is removed afterwards unless ``keep_workspace``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.colmap import Scene

log = logging.getLogger(__name__)

GPU_EXTRA = ("pip install 'matchforge[gpu]' (the pycolmap-cuda12 package, a CUDA build of pycolmap; run "
             "`pip uninstall -y pycolmap` first so that it replaces the CPU build) on a machine with an NVIDIA GPU, "
             "or choose depth.backend: sparse or depth_anything")


def require_cuda(scene: str | None = None) -> None:
    """Refuse the ``mvs`` backend on a CPU build of pycolmap, naming what to install."""
    import pycolmap

    if not getattr(pycolmap, "has_cuda", False):
        raise MatchforgeError(f"depth.backend 'mvs' runs COLMAP's PatchMatch stereo, which needs pycolmap built with "
                              f"CUDA; this pycolmap {pycolmap.__version__} is a CPU build", scene=scene, fix=GPU_EXTRA)


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink() if link.is_symlink() or link.is_file() else shutil.rmtree(link)
    link.symlink_to(os.path.relpath(target.resolve(), link.parent.resolve()), target_is_directory=target.is_dir())


def patch_match(conf: Mapping[str, Any], sfm_dir: str | Path, model: Scene, work: str | Path,
                scene: str | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(image name, depth (H, W) float, SfM units, NaN = invalid) for every view, from PatchMatch stereo.

    ``conf``: the ``depth.mvs`` options; ``work``: where the COLMAP workspace is built.
    """
    import pycolmap

    require_cuda(scene)
    sfm_dir, ws = Path(sfm_dir), Path(work) / "mvs"
    for sub in ("depth_maps", "normal_maps", "consistency_graphs"):
        (ws / "stereo" / sub).mkdir(parents=True, exist_ok=True)
    _link(sfm_dir / "images", ws / "images")
    _link(sfm_dir / "sparse", ws / "sparse")
    names = list(model.views)
    (ws / "stereo" / "patch-match.cfg").write_text("".join(f"{n}\n__auto__, {int(conf['num_sources'])}\n" for n in names))
    options = pycolmap.PatchMatchOptions()
    options.max_image_size = int(conf["max_image_size"])
    options.num_iterations = int(conf["num_iterations"])
    options.window_radius = int(conf["window_radius"])
    options.geom_consistency = bool(conf["geom_consistency"])
    options.filter_min_num_consistent = int(conf["filter_min_num_consistent"])
    options.gpu_index = str(conf["gpu_index"])
    t0 = time.perf_counter()
    pycolmap.patch_match_stereo(ws, workspace_format="COLMAP", pmvs_option_name="option-all", options=options)
    log.info("PatchMatch stereo of %d images in %.1f s (%.2f s per image)", len(names), time.perf_counter() - t0,
             (time.perf_counter() - t0) / max(1, len(names)))
    suffix = "geometric" if conf["geom_consistency"] else "photometric"
    for name in names:
        path = ws / "stereo" / "depth_maps" / f"{name}.{suffix}.bin"
        if not path.is_file():
            raise MatchforgeError(f"PatchMatch wrote no depth map for '{name}'", scene=scene, path=path,
                                  fix="see the job's log for COLMAP's message; check that the image registered with "
                                      "enough 3D points (sfm/stats.json)")
        dm = pycolmap.DepthMap()
        dm.read(str(path))
        depth = dm.to_array().astype(np.float64)
        view = model.views[name]
        if depth.shape != (view.height, view.width):  # max_image_size shrank it: back to the image, nearest
            import cv2

            depth = cv2.resize(depth, (view.width, view.height), interpolation=cv2.INTER_NEAREST)
        yield name, np.where(depth > 0, depth, np.nan)
    if not conf["keep_workspace"]:
        shutil.rmtree(ws, ignore_errors=True)
