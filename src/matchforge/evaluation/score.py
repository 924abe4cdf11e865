"""``matchforge score``: score stored matches (``matchforge match-pairs``) on their test set (the scoring step).

- Pose test sets (``loftr.testsets``, ``posfeat.testsets`` of type ``pose``), as
  :func:`matchforge.evaluation.relpose.score` defines: AUC@5/10/20, epipolar precision, RANSAC inlier ratio,
  matches. ``--before`` scores a second match file (a fine-tuning run's initial weights on the same pairs)
  into the key ``before`` (with its per-pair rows), and ``vs_before`` compares the two pair by pair per score:
  difference, its interval, sign-test p-value and verdict (:func:`matchforge.evaluation.relpose.compare`).
- Homography test sets: MMA (%) and homography-estimation AUC (:func:`matchforge.evaluation.homography.score`),
  with a plot of the MMA curves (``--compare`` adds other methods' results to it).

Every test-set number has its 95 % interval (photos as the unit, :mod:`matchforge.evaluation.stats`); ``few_pairs``
marks test sets under 10 pairs. The JSON written (``results/eval/<family>/<run>/<testset>.json`` in the workflow) has the aggregates,
the options, the matcher and one row per pair.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Mapping

from matchforge.conf import load_conf
from matchforge.evaluation.config import PoseScoring, testset_of
from matchforge.evaluation.match_pairs import records_of
from matchforge.evaluation.relpose import CI_KEYS, SUMMARY_KEYS, compare as compare_paired, score
from matchforge.evaluation.stats import describe
from matchforge.evaluation.testsets import matching_options
from matchforge.io.write import write_json

log = logging.getLogger(__name__)

def summary_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """The test-set numbers of a scored result (no rows), with their intervals."""
    return {k: result[k] for k in (*SUMMARY_KEYS, *(f"{c}_ci" for c in CI_KEYS), "few_pairs") if k in result}


def main(testset: Mapping[str, Any], matches: str | Path, out_json: str | Path, *, dataset_json: str | Path | None = None,
         name: str = "", label: str = "", before: str | Path | None = None, vis: str | Path | None = None,
         compare: Mapping[str, str | Path] | None = None) -> dict[str, Any]:
    """Score ``matches`` on ``testset``; write ``out_json`` (and, with ``vis``, the first pair's matches)."""
    if testset.get("type") == "homography":
        return homography(testset, matches, out_json, name=name, label=label, compare=compare)
    if testset.get("type") == "localization":
        return localization(testset, matches, out_json, name=name, label=label)
    parsed = testset_of(testset, f"test set {name}" if name else "--testset")
    scoring = {k: getattr(parsed, k) for k in PoseScoring.model_fields}
    records = records_of(matching_options(testset), dataset_json, name)
    res = score(records, matches, **scoring, vis=(vis, f"{label or 'matches'} on {name}") if vis else None)
    result: dict[str, Any] = {"testset": name, "label": label, "testset_conf": dict(testset), "scoring": scoring, **res}
    if before is not None:
        prior = score(records, before, **scoring)
        result["before"] = {"matches": str(before), "matcher": prior["matcher"], **summary_of(prior), "pairs": prior["pairs"]}
        if result["num_pairs"]:
            result["vs_before"] = compare_paired(prior, res)
        log.info("before: %s", _scores(result["before"]))
    write_json(out_json, result, default=str)
    log.info("%s on %s: %s%s", label, name, _scores(result),
             f"; vs before: {describe(result['vs_before']['auc@10'])}" if result.get("vs_before") else "")
    return result


def homography(testset: Mapping[str, Any], matches: str | Path, out_json: str | Path, *, name: str = "", label: str = "",
               compare: Mapping[str, str | Path] | None = None) -> dict[str, Any]:
    """MMA and homography accuracy of ``matches``; writes ``out_json`` and the MMA curves beside it (.png)."""
    import json

    from matchforge.evaluation.homography import plot_curves, score as score_homography
    from matchforge.evaluation.testsets import homography_records

    result = {"testset": name, "label": label, "testset_conf": dict(testset),
              **score_homography(homography_records(testset["path"]), matches)}
    write_json(out_json, result, default=str)
    curves = {label or "matches": result}
    for other, path in (compare or {}).items():
        curves[other] = json.loads(Path(path).read_text())
    plot_curves(curves, Path(out_json).with_suffix(".png"), f"MMA on {name or testset['path']}")
    o = result["overall"]
    log.info("%s on %s: MMA@1/3/5/10 = %.1f / %.1f / %.1f / %.1f %%, homography AUC@1/3/5 (RANSAC) = %.1f / %.1f / %.1f %%, "
             "%d pairs", label, name, o["mma@1"], o["mma@3"], o["mma@5"], o["mma@10"], o["h_ransac_auc@1"],
             o["h_ransac_auc@3"], o["h_ransac_auc@5"], o["num_pairs"])
    return result


def localization(testset: Mapping[str, Any], matches: str | Path, out_json: str | Path, *, name: str = "",
                 label: str = "") -> dict[str, Any]:
    """Triangulate the database and localize the queries from ``matches``; the work folder sits beside ``out_json``."""
    from matchforge.evaluation.localization import score as localize

    result = {"testset": name, "label": label, "testset_conf": dict(testset),
              **localize(testset, matches, Path(out_json).with_suffix(""))}
    write_json(out_json, result, default=str)
    if result["recall@1"] is None:
        log.info("%s on %s: %.0f %% of %d queries localized (no ground truth); submission %s", label, name,
                 result["localized"], result["num_queries"], result.get("submission"))
    else:
        log.info("%s on %s: recall %.1f / %.1f / %.1f %% at (%s), (%s), (%s); %d queries", label, name,
                 result["recall@1"], result["recall@2"], result["recall@3"], result["threshold@1"],
                 result["threshold@2"], result["threshold@3"], result["num_queries"])
    return result


def _scores(res: Mapping[str, Any]) -> str:
    ci = res.get("auc@10_ci", [float("nan")] * 2)
    return (f"AUC@5/10/20 = {res['auc@5']:.2f} / {res['auc@10']:.2f} [{ci[0]:.1f}, {ci[1]:.1f}] / {res['auc@20']:.2f}, "
            f"precision {res['precision']:.1f} %, inliers {res['inlier_ratio']:.1f} %, {res['num_matches']:.0f} matches/pair, "
            f"{res['num_pairs']} pairs{' (fewer than 10: wide intervals)' if res.get('few_pairs') else ''}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testset", required=True, help="test-set options: inline JSON or YAML file")
    parser.add_argument("--matches", required=True, help="match file from matchforge match-pairs")
    parser.add_argument("--out", required=True, help="output JSON")
    parser.add_argument("--dataset", default=None, help="dataset.json, for test sets of a matchforge dataset")
    parser.add_argument("--name", default="", help="test-set name")
    parser.add_argument("--label", default="", help="method name in the result (e.g. loftr/demo_ds)")
    parser.add_argument("--before", default=None, help="match file of the initial weights of a fine-tuned model, scored under `before`")
    parser.add_argument("--vis", default=None, help="also draw the first pair's matches here (.jpg)")
    parser.add_argument("--compare", nargs="*", default=[], metavar="LABEL=JSON",
                        help="homography: other methods' results drawn in the same MMA plot")


def run(args: argparse.Namespace) -> None:
    from matchforge.errors import MatchforgeError

    compare = {}
    for item in args.compare:
        if "=" not in item:
            raise MatchforgeError(f"--compare expects LABEL=JSON, got '{item}'", fix="e.g. --compare sift=results/eval/sift/mnn/homography.json")
        k, v = item.split("=", 1)
        compare[k] = v
    main(load_conf(args.testset), args.matches, args.out, dataset_json=args.dataset, name=args.name, label=args.label,
         before=args.before, vis=args.vis, compare=compare)
