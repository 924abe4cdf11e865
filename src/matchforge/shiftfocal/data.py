"""``matchforge shiftfocal-data``: one source (RGB-D dataset or matchforge scene) -> training items.

Output folder (Train-3D layout, plus what the later stages need)::

    depths/<k>.npz       np.savez_compressed: ``arr_0`` depth (float32, 0 = invalid; metres, or SfM
                         units for matchforge scenes), ``rgb`` (uint8, optional)
    intrinsics/<k>.npy   3x3 K of that depth map (pixels)
    focals.npy           (N,) focal length fx per item (pixels)
    scales.npy           (N,) depth scale per item: max valid depth (metres or SfM units)
    index.json           items (key, name, size, fov, metric, split) and the options used
    histograms.png       histograms of focal length, field of view and depth scale
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from matchforge.conf import load_conf
from matchforge.errors import MatchforgeError
from matchforge.config_check import require_config_path
from matchforge.shiftfocal.config import ShiftFocalData, ShiftFocalSource
from matchforge.geometry.camera import vfov_deg
from matchforge.shiftfocal.readers import Item, iter_source, resize_item
from matchforge.io.write import write_json, save_figure

log = logging.getLogger(__name__)



def source_options(conf: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """A source's options as the data job reads them: the source's own (:class:`ShiftFocalSource`), with
    ``shiftfocal.data``'s (:class:`ShiftFocalData`) where the source sets none; every default filled in."""
    where = f"shiftfocal.sources.{source}" if source else "--conf"
    data_only = ShiftFocalData.model_fields.keys() - ShiftFocalSource.model_fields.keys()
    own = ShiftFocalSource.of({k: v for k, v in conf.items() if k not in data_only}, where).to_dict()
    return {**ShiftFocalData.pick(conf, where).to_dict(), **{k: v for k, v in own.items() if v is not None}}


def assign_splits(names: list[str], holdout: float, seed: int) -> list[str]:
    """Deterministic train/test split: ``round(holdout * N)`` items (at least 1 when holdout > 0 and N > 1) are test."""
    n = len(names)
    n_test = 0 if holdout <= 0 or n < 2 else min(n - 1, max(1, round(holdout * n)))
    order = np.random.default_rng(seed).permutation(n)
    test = set(order[:n_test].tolist())
    return ["test" if i in test else "train" for i in range(n)]


def write_items(items: list[Item], out: str | Path, conf: dict, source: str) -> dict:
    """Write items in the Train-3D layout under ``out``; returns the index dict (also written)."""
    out = Path(out)
    (out / "depths").mkdir(parents=True, exist_ok=True)
    (out / "intrinsics").mkdir(parents=True, exist_ok=True)
    kept: list[Item] = []
    skipped = []
    for item in tqdm(items, desc=f"shiftfocal-data {source}", disable=None):
        item = resize_item(item, conf["max_side"])
        valid = float((item.depth > 0).mean())
        if valid < conf["min_valid"]:
            skipped.append({"name": item.name, "reason": f"valid depth {valid:.1%} < min_valid"})
            continue
        kept.append(item)
    if not kept:
        raise MatchforgeError(f"source '{source}': no item has enough valid depth ({len(skipped)} skipped)",
                              fix="lower shiftfocal.data.min_valid or check the depth files", path=out)
    splits = assign_splits([i.name for i in kept], conf["holdout"], conf["seed"])
    entries, focals, scales = [], [], []
    for k, (item, split) in enumerate(zip(kept, splits)):
        key = f"{k:06d}"
        payload = {"arr_0": item.depth.astype(np.float32)}
        if item.rgb is not None:
            payload["rgb"] = item.rgb
        np.savez_compressed(out / "depths" / f"{key}.npz", **payload)
        np.save(out / "intrinsics" / f"{key}.npy", item.K.astype(np.float64))
        h, w = item.shape
        fx = float(item.K[0, 0])
        scale = float(item.depth[item.depth > 0].max())
        focals.append(fx)
        scales.append(scale)
        entries.append({"key": key, "name": item.name, "height": h, "width": w, "focal": fx,
                        "vfov_deg": vfov_deg(float(item.K[1, 1]), h),
                        "scale": scale, "valid": float((item.depth > 0).mean()), "metric": item.metric, "split": split})
    np.save(out / "focals.npy", np.array(focals))
    np.save(out / "scales.npy", np.array(scales))
    index = {"source": source, "conf": conf, "items": entries, "skipped": skipped}
    write_json(out / "index.json", index, indent=1)
    plot_histograms(entries, out / "histograms.png", source)
    log.info("%s: %d items (%d test), %d skipped -> %s", source, len(entries), splits.count("test"), len(skipped), out)
    return index


def plot_histograms(entries: list[dict], path: Path, source: str) -> None:
    """Histograms of focal length (px), vertical field of view (deg) and depth scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    metric = all(e["metric"] for e in entries)
    for ax, key, label in zip(axes, ("focal", "vfov_deg", "scale"),
                              ("focal length fx (px)", "vertical FOV (deg)", "max depth (m)" if metric else "max depth (SfM units)")):
        ax.hist([e[key] for e in entries], bins=min(30, max(5, len(entries))), color="tab:blue")
        ax.set_xlabel(label)
    axes[0].set_ylabel("items")
    fig.suptitle(f"{source}: {len(entries)} items")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def main(conf: dict, out: str | Path, source: str, paths: dict[str, str]) -> dict:
    """Read the source described by ``conf`` (``type``, ``max_items``, ...) at ``paths`` and write ``out``."""
    if paths.get("path"):
        require_config_path(paths["path"], f"shiftfocal.sources.{source}.path", f"the {conf.get('type')} data folder",
                            "the dataset's root folder (docs/shiftfocal.md lists each layout)")
    conf = source_options(conf, source)
    items = iter_source(conf, paths)
    return write_items(items, out, conf, source)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="name of the source (used in item names and logs)")
    parser.add_argument("--path", help="dataset root / folder (scannet, kenburns, taskonomy, tum, middlebury)")
    parser.add_argument("--h5", help="matchforge scene: results/{scene}/depth/h5")
    parser.add_argument("--sparse", help="matchforge scene: results/{scene}/sfm/sparse")
    parser.add_argument("--images", help="matchforge scene: results/{scene}/sfm/images (colour, optional)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--conf", help="JSON or YAML: type, max_items, max_side, min_valid, holdout, seed, intrinsics, calib")


def run(args: argparse.Namespace) -> None:
    conf = load_conf(args.conf)
    paths = {k: v for k, v in {"path": args.path, "h5": args.h5, "sparse": args.sparse, "images": args.images}.items() if v}
    main(conf, args.out, args.source, paths)
