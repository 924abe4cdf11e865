"""``matchforge posfeat-eval``: evaluate stored features (PoSFeat, SIFT or any extractor) on a test set.

Test sets (``posfeat.testsets`` in the config; paths relative to the working directory):

- ``{type: homography, path: DIR}``: HPatches-protocol MMA (``matchforge.evaluation.homography``), with a
  plot of the MMA curves next to the JSON.
- ``{type: pose, dataset: results/datasets/<name>/dataset.json, split: test, ...}``: mutual-NN matches
  (:class:`matchforge.matchers.features.FeatureMatcher`) scored by :mod:`matchforge.evaluation.relpose`
  (AUC@5/10/20, precision in %), the same code the LoFTR evaluation uses.
- ``{type: reconstruction, images: DIR[, sparse: DIR]}``: COLMAP mapping from the features, with the cameras of
  ``sparse`` (a matchforge scene's undistorted model) as known PINHOLE intrinsics when given
  (``matchforge.evaluation.reconstruction``): registered images, points, track length, reprojection error.

The features come from ``matchforge extract`` on ``matchforge.evaluation.testsets.testset_images(spec)`` (same names).
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
from matchforge.errors import MatchforgeError
from matchforge.evaluation.relpose import evaluate as evaluate_relpose
from matchforge.matchers import get_matcher
from matchforge.matchers.features import mutual_nn
from matchforge.evaluation.testsets import POSE_DEFAULTS, image_name, pose_pairs
from matchforge.io.images import list_images
from matchforge.io.write import write_json

log = logging.getLogger(__name__)


def evaluate_pose(spec: dict[str, Any], features_path: str | Path) -> dict[str, Any]:
    """Relative pose (:func:`matchforge.evaluation.relpose.evaluate`) of the stored features, matched by
    mutual NN, over the pairs of a dataset split."""
    spec = {**POSE_DEFAULTS, **spec}
    pairs, root = pose_pairs(spec)
    if not pairs:
        log.warning("pose test set has no pairs (split '%s' of %s)", spec["split"], spec["dataset"])
    matcher = get_matcher({"name": "features", "features": features_path, "name_of": lambda p: image_name(p, root)})
    return evaluate_relpose(matcher, pairs, spec["ransac_thresh"])


def _finite(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf (failed estimates) to null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def main(spec: dict[str, Any], features_path: str | Path, out_json: str | Path, label: str = "",
         compare: dict[str, str | Path] | None = None) -> dict[str, Any]:
    """Evaluate the features in ``features_path`` on test set ``spec``; write ``out_json`` (+ a plot)."""
    features_path, out_json = Path(features_path), Path(out_json)
    if not features_path.exists():
        raise MatchforgeError("feature file not found", fix="run matchforge extract first", path=features_path)
    features = get_matcher({"name": "features", "features": features_path}).features  # read once per image
    kind = spec.get("type")
    result: dict[str, Any] = {"label": label, "testset": spec, "features": str(features_path)}
    if kind == "homography":
        from matchforge.evaluation.homography import evaluate, find_pairs, plot_curves

        result.update(evaluate(find_pairs(spec["path"]), features, mutual_nn))
        curves = {label or "features": result}
        for other_label, path in (compare or {}).items():
            curves[other_label] = json.loads(Path(path).read_text())
        plot_curves(curves, out_json.with_suffix(".png"), f"MMA on {spec['path']}")
    elif kind == "pose":
        result.update(evaluate_pose(spec, features_path))
    elif kind == "reconstruction":
        from matchforge.evaluation.reconstruction import main as reconstruct

        names = [n for n, _ in list_images(spec["images"])]
        intrinsics = None
        if spec.get("sparse"):  # a matchforge scene: its undistorted cameras are known
            from matchforge.io.colmap import load_scene

            intrinsics = {v.name: v.K for v in load_scene(spec["sparse"]).views.values()}
            names = [n for n in names if n in intrinsics]
        result.update(reconstruct(spec["images"], names, features, mutual_nn, out_json.with_suffix(""),
                                  camera_mode="PER_IMAGE" if intrinsics else spec.get("camera_mode", "AUTO"),
                                  intrinsics=intrinsics))
    else:
        raise MatchforgeError(f"unknown test set type '{kind}'", fix="use homography, pose or reconstruction")
    out_json.parent.mkdir(parents=True, exist_ok=True)
    write_json(out_json, _finite(result), indent=1)
    summary = {k: v for k, v in result.items() if k not in ("pairs", "testset", "features")}
    log.info("%s on %s: %s", label, kind, json.dumps(summary.get("overall", summary), default=float)[:800])
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testset", required=True, help="test set as inline JSON or YAML file")
    parser.add_argument("--features", required=True, help=".h5 from matchforge extract")
    parser.add_argument("--out", required=True, help="result JSON (a .png plot is written beside it)")
    parser.add_argument("--label", default="", help="method name in the result and the plot")
    parser.add_argument("--compare", nargs="*", default=[], metavar="LABEL=JSON",
                        help="other homography results to draw in the same plot")


def run(args: argparse.Namespace) -> None:
    compare = {}
    for item in args.compare:
        if "=" not in item:
            raise MatchforgeError(f"--compare expects LABEL=JSON, got '{item}'", fix="e.g. --compare sift=results/eval/sift/baseline/homography.json")
        k, v = item.split("=", 1)
        compare[k] = v
    main(load_conf(args.testset), args.features, args.out, args.label, compare)
