"""``matchforge loftr-eval``: relative-pose evaluation of a LoFTR model (or the SIFT baseline) on a test set.

Per pair: matches in original-image pixels -> RANSAC essential matrix (0.5 px normalised by the mean
focal) -> pose error = max(rotation, translation-direction angle) in degrees, a failed estimate
counting as infinite; epipolar precision = share of matches whose squared symmetric epipolar
distance (normalised coordinates) is below ``epi_err_thr``. Over the test set: AUC@5/10/20 (%,
trapezoid), mean precision (%), mean number of matches. Definitions: ``matchforge.evaluation.pose``.

The JSON written has the aggregate numbers, the options, timing and one row per pair.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Mapping


from matchforge.conf import load_conf
from matchforge.errors import MatchforgeError
from matchforge.evaluation.relpose import SUMMARY_KEYS, evaluate
from matchforge.matchers import get_matcher
from matchforge.io.write import write_json

log = logging.getLogger(__name__)


def testset_defaults(testset: Mapping[str, Any]) -> dict[str, Any]:
    """A test set's options with the schema defaults filled in (``loftr.testsets`` entries)."""
    from matchforge.workflow import with_defaults

    return with_defaults("loftr", {"testsets": {"testset": dict(testset)}})["testsets"]["testset"]


def main(testset: Mapping[str, Any], out_json: str | Path, *, weights: str | Path | None = None,
         model_conf: Mapping[str, Any] | None = None, baseline: Mapping[str, Any] | None = None,
         dataset_json: str | Path | None = None, name: str = "", device: str | None = None,
         vis: str | Path | None = None, before: str | Path | None = None,
         before_result: str | Path | None = None) -> dict[str, Any]:
    """Evaluate LoFTR ``weights`` (or, with ``baseline``, SIFT) on ``testset``; write ``out_json``
    (and, with ``vis``, a picture of the first pair's matches).

    ``before``: the weights a fine-tuning started from (a file or a kornia name), evaluated on the same
    pairs with the same options; their aggregate metrics go under the key ``before``. ``before_result``:
    instead, the initial weights' own evaluation JSON on this test set (another run's), used when it was
    made with the same test-set options and pairs (otherwise the weights it names are evaluated again).
    """
    from matchforge.evaluation.testsets import load_testset

    ts = testset_defaults(testset)
    records = load_testset(ts, dataset_json, name)

    def loftr_conf(w: str | Path) -> dict[str, Any]:
        return {"name": "loftr", "weights": str(w), "model_conf": model_conf, "img_resize": ts["img_resize"],
                "pad": bool(ts["pad"]), "device": device, "interpolation": ts["interpolation"]}

    if baseline is not None:
        matcher: Any = get_matcher({"name": "sift", **baseline, "img_resize": baseline.get("img_resize") or ts["img_resize"]})
        what = {"matcher": "sift", "baseline": dict(baseline)}
    elif weights is not None:
        matcher = get_matcher(loftr_conf(weights))
        what = {"matcher": "loftr", "weights": str(weights), "match_type": matcher.model.coarse_matching.match_type,
                "device": matcher.device}
    else:
        raise MatchforgeError("nothing to evaluate", fix="pass --weights (LoFTR) or --baseline sift")
    log.info("evaluating %s on %s (%d pairs)", what["matcher"], name or ts["kind"], len(records))
    res = evaluate(matcher, records, float(ts["ransac_thresh"]), float(ts["epi_err_thr"]),
                   vis=(vis, f"{what['matcher']} on {name or ts['kind']}") if vis else None)
    result = {"testset": name, "testset_conf": ts, **what, **res}
    if baseline is None and (before is not None or before_result is not None):
        reused = _reuse(before_result, ts, res) if before_result is not None else None
        if reused is not None:
            result["before"] = reused
            log.info("initial weights %s: scores read from %s (same test set and pairs)", reused["weights"], before_result)
        else:
            initial = before if before is not None else json.loads(Path(before_result).read_text())["weights"]
            log.info("evaluating the initial weights %s on the same pairs", initial)
            res0 = evaluate(get_matcher(loftr_conf(initial)), records, float(ts["ransac_thresh"]), float(ts["epi_err_thr"]))
            result["before"] = {"weights": str(initial), **{k: res0[k] for k in SUMMARY_KEYS}}
        log.info("before fine-tuning: %s", _scores(result["before"]))
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    write_json(out_json, result, indent=1, default=str)
    log.info("%s on %s: %s", what["matcher"], name, _scores(result))
    return result


def _scores(res: Mapping[str, Any]) -> str:
    return (f"AUC@5/10/20 = {res['auc@5']:.2f} / {res['auc@10']:.2f} / {res['auc@20']:.2f}, "
            f"precision {res['precision']:.1f} %, {res['num_matches']:.0f} matches/pair")


def _reuse(prior_json: str | Path, ts: Mapping[str, Any], res: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``before`` entry from another run's evaluation JSON, when it used the same test-set options and pairs."""
    prior = json.loads(Path(prior_json).read_text())
    pairs = [(p["image0"], p["image1"]) for p in res["pairs"]]
    if prior["testset_conf"] != json.loads(json.dumps(ts, default=str)) or \
            [(p["image0"], p["image1"]) for p in prior["pairs"]] != pairs:
        return None
    return {"weights": prior["weights"], "from": str(prior_json), **{k: prior[k] for k in SUMMARY_KEYS}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testset", required=True, help="test-set options: inline JSON or YAML file (one entry of loftr.testsets)")
    parser.add_argument("--name", default="", help="test-set name (for the report)")
    parser.add_argument("--out", required=True, help="output JSON")
    parser.add_argument("--weights", default=None, help="LoFTR weights: weights.pt of a run, an official checkpoint, or outdoor/indoor/indoor_new")
    parser.add_argument("--model-conf", default=None, help="model options for weights without stored options (JSON/YAML)")
    parser.add_argument("--baseline", default=None, choices=["sift"], help="evaluate the SIFT baseline instead of LoFTR")
    parser.add_argument("--baseline-conf", default=None, help="baseline options (JSON/YAML; loftr.baseline)")
    parser.add_argument("--dataset", default=None, help="dataset.json, for test sets of kind 'dataset'")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--vis", default=None, help="also write a picture of the first pair's matches here (.jpg)")
    parser.add_argument("--before", default=None, help="also evaluate these initial weights (file or kornia name) of a "
                        "fine-tuned model; written under `before`")
    parser.add_argument("--before-result", default=None, help="the initial weights' own evaluation JSON on this test set "
                        "(another run's): its scores go under `before` when its options and pairs match")


def run(args: argparse.Namespace) -> None:
    model_conf = load_conf(args.model_conf) if args.model_conf else None
    weights = args.weights
    if weights and model_conf is None:
        meta = Path(weights).with_name("model.json")
        if meta.is_file():
            model_conf = json.loads(meta.read_text()).get("conf")
    main(load_conf(args.testset), args.out, weights=weights, model_conf=model_conf,
         baseline=load_conf(args.baseline_conf) if args.baseline else None, dataset_json=args.dataset,
         name=args.name, device=args.device, vis=args.vis, before=args.before, before_result=args.before_result)
