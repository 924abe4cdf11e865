"""``matchforge match-pairs``: match every pair of a test set once and store the matches (the export step).

Test sets: an entry of ``loftr.testsets`` (types ``dataset``, ``imc``, ``megadepth``, ``scannet``), of
``posfeat.testsets`` (types ``pose`` and ``homography``) or of ``localization.testsets`` (type ``localization``:
database and query pairs, :mod:`matchforge.evaluation.localization`). Matchers (``--matcher``, JSON, see
:func:`matchforge.matchers.get_matcher`): ``{"name": "loftr", "weights": ...}``, ``{"name": "sift", "ratio": 0.8,
"max_keypoints": 4096}`` or ``{"name": "features", "features": file.h5}`` (stored PoSFeat or SIFT features,
mutual nearest neighbours). LoFTR and SIFT see the test set's ``img_resize`` unless the matcher names its own.

Writes one match file (:mod:`matchforge.io.matches`); ``matchforge score-relpose`` / ``score-homography``
score it, so a scoring option changes nothing here.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Mapping

from matchforge.conf import load_conf
from matchforge.evaluation.config import PosePairs, testset_of
from matchforge.errors import MatchforgeError
from matchforge.evaluation.relpose import match
from matchforge.evaluation.testsets import homography_records, image_name, pose_records, testset_root
from matchforge.matchers import get_matcher

log = logging.getLogger(__name__)


def records_of(testset: Mapping[str, Any], dataset_json: str | Path | None = None, name: str = "") -> list[Any]:
    """The pairs of a test set (pose records with K and poses, or homography records with H)."""
    if testset.get("type") == "homography":
        return homography_records(testset["path"])
    if testset.get("type") == "localization":
        from matchforge.evaluation.localization import records

        return records(testset)
    return pose_records(testset, dataset_json, name)


def run_options(matcher_conf: Mapping[str, Any]) -> dict[str, Any] | None:
    """The options of the LoFTR run whose weights ``matcher_conf`` loads, from the ``model.json`` written beside them
    (None for a kornia name, another matcher, or weights without one)."""
    weights = matcher_conf.get("weights") if matcher_conf.get("name") == "loftr" else None
    record = Path(str(weights)).with_name("model.json") if weights else None
    return json.loads(record.read_text()).get("conf") if record is not None and record.is_file() else None


def trained_size(matcher_conf: Mapping[str, Any], name: str = "", options: Mapping[str, Any] | None = None) -> int:
    """The training ``img_resize`` of a LoFTR run's weights (``options``: :func:`run_options`, read when not given):
    what a test set's ``img_resize: run`` means when it is matched by hand."""
    options = options if options is not None else run_options(matcher_conf)
    if options is not None:
        return int(options["img_resize"])
    raise MatchforgeError(f"test set '{name or '--testset'}' has img_resize: run (the evaluated run's training size), "
                          "and these weights have no model.json that records it (a run writes one beside its weights.pt)",
                          path=matcher_conf.get("weights"), fix="give img_resize in pixels in the test set or the matcher")


def main(testset: Mapping[str, Any], matcher_conf: Mapping[str, Any], out: str | Path,
         dataset_json: str | Path | None = None, name: str = "") -> dict[str, Any]:
    """Match the pairs of ``testset`` with the matcher of ``matcher_conf``; write ``out`` (.h5)."""
    from matchforge.evaluation.testsets import matching_options

    ts = matching_options(testset_of(testset).to_dict())  # every default filled in, as the workflow's jobs get it
    conf = dict(matcher_conf)
    trained = run_options(conf)
    if ts.get("img_resize") == "run":  # the workflow resolves it; by hand, the weights' record says it
        ts["img_resize"] = conf.get("img_resize") or trained_size(conf, name, trained)
    records = records_of(ts, dataset_json, name)
    if conf["name"] in ("loftr", "sift") and conf.get("img_resize") is None:
        conf["img_resize"] = ts.get("img_resize")
    if conf["name"] == "loftr":
        sizing = PosePairs.pick(ts, "--testset")  # posfeat/localization sets give no pad or interpolation: defaults
        conf.update(pad=sizing.pad, interpolation=sizing.interpolation)
        if conf.get("model_conf") is None and trained is not None:
            conf["model_conf"] = trained
    if conf["name"] == "features":
        root = testset_root(ts, dataset_json)
        conf["name_of"] = lambda p: image_name(p, root)
        working = conf.pop("working_size", None)
    else:
        working = conf.get("img_resize")
    matcher = get_matcher(conf)
    described = {k: v for k, v in conf.items() if k != "name_of"}
    log.info("matching %d pairs of %s with %s", len(records), name or ts.get("type"), described)
    stats = match(matcher, records, out, described, working)
    log.info("%d pairs matched in %.2f s per pair -> %s", stats["num_pairs"], stats["seconds_per_pair"], out)
    return stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testset", required=True, help="test-set options: inline JSON or YAML file")
    parser.add_argument("--matcher", required=True, help="matcher options as JSON: {name: loftr|sift|features, ...}")
    parser.add_argument("--out", required=True, help="output match file (.h5)")
    parser.add_argument("--dataset", default=None, help="dataset.json, for test sets of a matchforge dataset")
    parser.add_argument("--name", default="", help="test-set name (for messages)")


def run(args: argparse.Namespace) -> None:
    conf = load_conf(args.matcher)
    if "name" not in conf:
        raise MatchforgeError("the matcher options need a name", fix="e.g. --matcher '{\"name\": \"sift\"}'")
    main(load_conf(args.testset), conf, args.out, args.dataset, args.name)
