"""``matchforge export-gluefactory``: a built dataset in glue-factory's posed-images layout, for LightGlue users.

glue-factory's ``PosedImageDataset`` (``gluefactory/datasets/posed_images.py``) reads, per scene folder::

    <root>/<scene>/images/<name>          the photos (here: links to the dataset's undistorted images)
    <root>/<scene>/depths/<stem>.h5       float32 dataset ``depth`` at the image's size, 0 = invalid
    <root>/<scene>/views.txt              name R(9, row-major) t(3) MODEL width height params...
    <root>/<scene>/pairs.txt              name0 name1 (its ``view_groups``)

``R``, ``t``: world->camera (``x_cam = R x_world + t``, SfM units); the camera is COLMAP's PINHOLE
(``fx fy cx cy``, pixels, top-left corner at 0 as in matchforge and COLMAP; glue-factory converts from COLMAP's
convention itself). ``<stem>`` is the image name up to its first dot, as that reader builds it.

One root per split: ``<out>/<split>/<scene>/``, the split's images and the pairs of its scene-info files
(every overlap bucket, each unordered pair once). glue-factory config::

    data: {name: posed_images, root: <out>/train, image_dir: "{scene}/images", depth_dir: "{scene}/depths",
           views: "{scene}/views.txt", view_groups: "{scene}/pairs.txt", depth_format: h5}
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from matchforge.dataset.indices import load_scene_info, scene_of_subset
from matchforge.errors import MatchforgeError
from matchforge.io.depth import read_depth
from matchforge.io.images import image_size
from matchforge.io.write import atomic_h5, write_json, write_text

log = logging.getLogger(__name__)


def depth_stem(name: str) -> str:
    """glue-factory's depth file stem of an image name: up to the first dot."""
    return name.split(".")[0]


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target.resolve(), link.parent.resolve()), link)


def _depth_at_image_size(depth: np.ndarray, w: int, h: int) -> np.ndarray:
    """Nearest-neighbour resampling of a depth map to (h, w) when the H5 was stored smaller (h5.max_long_side)."""
    if depth.shape == (h, w):
        return depth
    rows = np.minimum((np.arange(h) + 0.5) * depth.shape[0] / h, depth.shape[0] - 1).astype(np.int64)
    cols = np.minimum((np.arange(w) + 0.5) * depth.shape[1] / w, depth.shape[1] - 1).astype(np.int64)
    return depth[rows[:, None], cols[None, :]]


def gluefactory(dataset_json: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the export of ``dataset_json`` into ``out`` (replaced); returns per split and scene the counts."""
    dataset_json = Path(dataset_json)
    meta = json.loads(dataset_json.read_text())
    base, out = dataset_json.parent, Path(out)
    tmp = out.with_name(out.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)
    summary: dict[str, Any] = {}
    for split, spec in meta["splits"].items():
        if spec.get("same_as"):  # val repeats test: one copy, named in the summary
            summary[split] = {"same_as": spec["same_as"]}
            continue
        data_root = base / spec["data_root"]
        scenes: dict[str, dict[str, Any]] = {}
        for stem in spec["scene_infos"]:
            info = load_scene_info(base / meta["npz_root"] / f"{stem}.npz")
            scene = scenes.setdefault(scene_of_subset(stem), {"views": {}, "pairs": set()})
            names = [None if p is None else Path(str(p)).name for p in info["image_paths"]]
            for (i, j), *_ in info["pair_infos"]:
                if names[i] is None or names[j] is None:
                    continue
                for k in (i, j):
                    if names[k] not in scene["views"]:
                        scene["views"][names[k]] = (data_root / str(info["image_paths"][k]), data_root / str(info["depth_paths"][k]),
                                                    np.asarray(info["intrinsics"][k], np.float64),
                                                    np.asarray(info["poses"][k], np.float64))
                scene["pairs"].add(tuple(sorted((names[i], names[j]))))
        summary[split] = {}
        for scene, content in scenes.items():
            folder = tmp / split / scene
            lines = []
            for name, (image, depth, K, T) in sorted(content["views"].items()):
                if not image.is_file() or not depth.is_file():
                    raise MatchforgeError(f"split {split}, scene {scene}: image or depth of {name} missing", path=image,
                                          fix="rebuild the dataset (snakemake --forcerun dataset)")
                w, h = image_size(image)
                _link(image, folder / "images" / name)
                d = _depth_at_image_size(read_depth(depth, scene=scene), w, h)
                with atomic_h5(folder / "depths" / f"{depth_stem(name)}.h5", "glue-factory depth file") as f:
                    f.create_dataset("depth", data=d.astype(np.float32), compression="gzip", compression_opts=1)
                R, t = T[:3, :3], T[:3, 3]
                params = (K[0, 0], K[1, 1], K[0, 2], K[1, 2])
                lines.append(" ".join([name, *(f"{v:.10g}" for v in (*R.ravel(), *t)), "PINHOLE", str(w), str(h),
                                       *(f"{v:.10g}" for v in params)]))
            write_text(folder / "views.txt", "\n".join(lines) + "\n", "views.txt")
            write_text(folder / "pairs.txt", "".join(f"{a} {b}\n" for a, b in sorted(content["pairs"])), "pairs.txt")
            summary[split][scene] = {"views": len(lines), "pairs": len(content["pairs"])}
    write_json(tmp / "export.json", {"dataset": meta["name"], "format": "glue-factory posed_images", "splits": summary})
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    log.info("glue-factory export of %s: %s", meta["name"], summary)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, type=Path, help="results/datasets/<name>/dataset.json")
    parser.add_argument("--out", required=True, type=Path, help="export folder (replaced), one root per split")


def run(args: argparse.Namespace) -> None:
    gluefactory(args.dataset, args.out)
