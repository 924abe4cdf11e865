"""``matchforge reconstruct-eval``: reconstruction from stored features (PoSFeat, SIFT or any extractor).

A ``{type: reconstruction, images: DIR[, sparse: DIR]}`` test set (``posfeat.testsets``): COLMAP mapping from the
features matched by mutual nearest neighbours, with the cameras of ``sparse`` (a matchforge scene's undistorted
model) as known PINHOLE intrinsics when given (:mod:`matchforge.evaluation.reconstruction`), reported with the
ETH local feature benchmark's columns. ``{type: reconstruction, eth: DIR}`` runs a dataset of that benchmark in
its own layout (``images/``, ``database.db`` with the images and cameras, optional ``match-list.txt``). The features come from ``matchforge extract`` on
:func:`matchforge.evaluation.testsets.testset_images` (same names).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from matchforge.conf import load_conf
from matchforge.evaluation.config import testset_of
from matchforge.errors import MatchforgeError
from matchforge.io.images import list_images
from matchforge.io.write import write_json
from matchforge.matchers import get_matcher
from matchforge.matchers.stored import mutual_nn

log = logging.getLogger(__name__)


def finite(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf (failed estimates) to null."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def main(spec: dict[str, Any], features_path: str | Path, out_json: str | Path, label: str = "") -> dict[str, Any]:
    """Reconstruct the test set ``spec`` from the features in ``features_path``; write ``out_json``."""
    from matchforge.evaluation.reconstruction import main as reconstruct

    spec = testset_of(spec).to_dict()
    features_path, out_json = Path(features_path), Path(out_json)
    if not features_path.exists():
        raise MatchforgeError("feature file not found", fix="run matchforge extract first", path=features_path)
    if spec.get("type") != "reconstruction":
        raise MatchforgeError(f"test set type '{spec.get('type')}' is not a reconstruction",
                              fix="score pose and homography test sets with matchforge match-pairs + matchforge score")
    from matchforge.evaluation.reconstruction import eth_dataset

    features = get_matcher({"name": "features", "features": features_path}).features  # read once per image
    result: dict[str, Any] = {"label": label, "testset": spec, "features": str(features_path)}
    if spec.get("eth"):  # a benchmark dataset: its own database (images, cameras) and pairs
        images, database, names, pairs = eth_dataset(spec["eth"])
        result.update(reconstruct(images, names, features, mutual_nn, out_json.with_suffix(""), pairs=pairs,
                                  database=database, camera_mode=spec["camera_mode"]))
    else:
        names = [n for n, _ in list_images(spec["images"])]
        intrinsics = None
        if spec.get("sparse"):  # a matchforge scene: its undistorted cameras are known
            from matchforge.io.colmap import load_scene

            intrinsics = {v.name: v.K for v in load_scene(spec["sparse"]).views.values()}
            names = [n for n in names if n in intrinsics]
        result.update(reconstruct(spec["images"], names, features, mutual_nn, out_json.with_suffix(""),
                                  camera_mode="PER_IMAGE" if intrinsics else spec["camera_mode"],
                                  intrinsics=intrinsics))
    write_json(out_json, finite(result))
    log.info("%s: %s", label, json.dumps({k: v for k, v in result.items() if k not in ("testset", "features")},
                                         default=float)[:800])
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testset", required=True, help="test set as inline JSON or YAML file (type reconstruction)")
    parser.add_argument("--features", required=True, help=".h5 from matchforge extract")
    parser.add_argument("--out", required=True, help="result JSON")
    parser.add_argument("--label", default="", help="method name in the result")


def run(args: argparse.Namespace) -> None:
    main(load_conf(args.testset), args.features, args.out, args.label)
