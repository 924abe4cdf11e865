"""Relative-pose evaluation of any matcher, in two steps: export the matches, then score them.

:func:`match` runs a matcher over a test set's pairs and writes one match file (:mod:`matchforge.io.matches`,
keyed by pair names as hloc does); :func:`score` reads it back and scores each pair: RANSAC essential matrix,
pose error = max(rotation, translation-direction angle) in degrees (a failed estimate counts as infinite),
epipolar precision = share of matches whose squared symmetric epipolar distance (normalised coordinates) is
below ``epi_err_thr``, RANSAC inlier ratio. Over the pairs: AUC@5/10/20 (%, trapezoid), mean precision and
inlier ratio (%), mean number of matches, failed estimates, each with a 95 % interval that treats photos as the unit
(:mod:`matchforge.evaluation.stats`); :func:`compare` compares two results on the same pairs, pair by pair. Definitions: :mod:`matchforge.evaluation.pose_metrics`. Changing a scoring
option rescores the stored matches without matching again.

RANSAC threshold (``ransac_frame``): ``evaluated`` (default) applies ``ransac_thresh`` (0.5 px, the official
value) in pixels of the images the matcher actually saw, so it is multiplied by (long side of the frame K
refers to) / (the matcher's working long side) before RANSAC; ``original`` applies it in the K frame, as
the official LoFTR test code does (there the images are evaluated near full size).

Estimator (``estimator``): ``opencv`` (default, the official test code's RANSAC, for parity with published LoFTR
numbers) or ``poselib`` (LO-RANSAC + refinement, as glue-factory evaluates; the optional extra ``poselib``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from matchforge.evaluation.pose_metrics import auc_curve, capped_score, evaluate_pair, pose_auc
from matchforge.evaluation.stats import FEW_PAIRS, intervals, num_photos, paired, weighted_mean
from matchforge.io.images import image_size
from matchforge.io.matches import MatchReader, MatchWriter

SUMMARY_KEYS = ("auc@5", "auc@10", "auc@20", "precision", "inlier_ratio", "num_matches", "failed", "num_pairs", "num_photos",
                "seconds_per_pair")
AUC_THRESHOLDS = (5.0, 10.0, 20.0)
AUC_KEYS = ("auc@5", "auc@10", "auc@20")
CI_KEYS = ("auc@5", "auc@10", "auc@20", "precision", "inlier_ratio", "num_matches")
Matcher = Callable[[Any, Any], tuple[np.ndarray, np.ndarray]]


def pair_names(records: Sequence[Any]) -> list[tuple[str, str]]:
    """Names of each pair's images, relative to the folder all of a test set's images share (match-file keys)."""
    paths = [os.path.abspath(p) for r in records for p in (r.image0, r.image1)]
    if not paths:
        return []
    root = os.path.commonpath(paths) if len(set(paths)) > 1 else os.path.dirname(paths[0])
    rel = [os.path.relpath(p, root) for p in paths]
    return list(zip(rel[0::2], rel[1::2]))


def to_intrinsics_frame(kpts: np.ndarray, path: str | Path, size: tuple[int, int] | None) -> np.ndarray:
    """Keypoints in pixels of the image file -> pixels of the ``size`` (w, h) its K refers to (if given)."""
    if size is None:
        return kpts
    w, h = image_size(path)
    return kpts * np.array([size[0] / w, size[1] / h])


def match(matcher: Matcher, records: Sequence[Any], out_h5: str | Path, matcher_conf: Mapping[str, Any],
          working_size: int | None = None) -> dict[str, Any]:
    """Match every pair of ``records`` and write ``out_h5``; ``working_size`` is the long side (px) the matcher
    sees (None: full size), stored for the scorer's RANSAC threshold. Returns the number of pairs and time."""
    t0 = time.time()
    with MatchWriter(out_h5, {**matcher_conf, "working_size": working_size}) as writer:
        for rec, (n0, n1) in zip(tqdm(records, desc="matching pairs", mininterval=5), pair_names(records)):
            k0, k1 = matcher(rec.image0, rec.image1)
            writer.write(n0, n1, k0, k1)
        seconds = (time.time() - t0) / max(len(records), 1)
        writer.set("seconds_per_pair", seconds)
    return {"num_pairs": len(records), "seconds_per_pair": seconds}


def _frame_long_side(path: Path, size: tuple[int, int] | None) -> float:
    return float(max(size) if size is not None else max(image_size(path)))


def score(records: Sequence[Any], matches: str | Path, *, ransac_thresh: float, epi_err_thr: float,
          ransac_frame: str, estimator: str, vis: tuple[str | Path, str] | None = None) -> dict[str, Any]:
    """Aggregate (with 95 % intervals) and per-pair metrics of the matches in ``matches`` on ``records``.

    ``vis = (path, title)`` also draws the first pair's matches coloured by epipolar error.
    """
    from matchforge.evaluation.visualize import draw_pair

    rows = []
    with MatchReader(matches) as reader:
        working = reader.matcher.get("working_size")
        for n, (rec, (n0, n1)) in enumerate(zip(records, pair_names(records))):
            k0, k1 = reader(n0, n1, sizes=(image_size(rec.image0), image_size(rec.image1)))
            k0 = to_intrinsics_frame(k0, rec.image0, getattr(rec, "size0", None))
            k1 = to_intrinsics_frame(k1, rec.image1, getattr(rec, "size1", None))
            if vis is not None and n == 0:
                draw_pair(rec, k0, k1, epi_err_thr, vis[1], vis[0])
            thresh = ransac_thresh
            if ransac_frame == "evaluated" and working:
                frames = [_frame_long_side(Path(rec.image0), getattr(rec, "size0", None)),
                          _frame_long_side(Path(rec.image1), getattr(rec, "size1", None))]
                thresh = ransac_thresh * float(np.mean(frames)) / float(working)
            r = evaluate_pair(k0, k1, np.asarray(rec.K0), np.asarray(rec.K1), np.asarray(rec.T_0to1), thresh, epi_err_thr,
                              estimator)
            r["inlier_ratio"] = r["num_inliers"] / r["num_matches"] if r["num_matches"] else 0.0
            rows.append({"image0": n0, "image1": n1, "scene": str(rec.scene), "ransac_thresh_px": thresh,
                         **{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}})
    return {**aggregate(rows), "seconds_per_pair": reader.seconds_per_pair, "matches": str(matches),
            "matcher": reader.matcher, "pairs": rows}


def photos_of(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Each pair's two photos: the units of the intervals. The names are paths below the folder all of the test set's
    images share (:func:`pair_names`), so one photo has one name in every pair (a scene's scene-info files name
    its pairs' ``scene`` by bucket, which must not split a photo in two)."""
    return [(r["image0"], r["image1"]) for r in rows]


def _errors(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array([np.inf if r["pose_error"] is None else r["pose_error"] for r in rows], dtype=np.float64)


def _per_pair(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array([[r["precision"] * 100, r.get("inlier_ratio", 0.0) * 100, r["num_matches"]] for r in rows],
                    dtype=np.float64).reshape(-1, 3)


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Test-set numbers from per-pair rows: AUCs, precision and inlier ratio in percent, each with its 95 %
    interval (``<key>_ci``, photos as the unit: :mod:`matchforge.evaluation.stats`), the number of photos, and
    ``few_pairs`` when there are fewer than 10 pairs."""
    errors, per_pair = _errors(rows), _per_pair(rows)
    units = photos_of(rows)
    out: dict[str, Any] = {"num_pairs": len(rows), "num_photos": num_photos(units), **pose_auc(errors),
                           "precision": float(per_pair[:, 0].mean()) if rows else 0.0,
                           "inlier_ratio": float(per_pair[:, 1].mean()) if rows else 0.0,
                           "num_matches": float(per_pair[:, 2].mean()) if rows else 0.0,
                           "failed": int(np.sum(~np.isfinite(errors))), "few_pairs": len(rows) < FEW_PAIRS}
    if rows:
        aucs = intervals(errors, units, lambda e, w: auc_curve(e, w, AUC_THRESHOLDS), [True] * 3)
        means = intervals(per_pair, units, weighted_mean, [True, True, False])
        for key, ci in zip((*AUC_KEYS, "precision", "inlier_ratio", "num_matches"), aucs + means):
            out[f"{key}_ci"] = ci
    return out


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Paired comparison of result ``b`` against ``a`` (two :func:`score` results on the same pairs): per score
    (AUC@5/10/20, precision) the difference, its interval, the sign test and the verdict
    (:func:`matchforge.evaluation.stats.paired`). None when the two were not scored on the same pairs."""
    key = lambda r: (str(r["scene"]), r["image0"], r["image1"])  # noqa: E731
    rows_a, rows_b = {key(r): r for r in a.get("pairs", [])}, {key(r): r for r in b.get("pairs", [])}
    if not rows_a or set(rows_a) != set(rows_b):
        return None
    order = sorted(rows_a)
    ra, rb = [rows_a[k] for k in order], [rows_b[k] for k in order]
    ea, eb, units = _errors(ra), _errors(rb), photos_of(ra)
    out = {}
    for th, name in zip(AUC_THRESHOLDS, AUC_KEYS):
        auc = lambda e, w, th=th: auc_curve(e, w, (th,))[:, 0]  # noqa: E731
        out[name] = paired(name.upper(), ea, eb, units, auc, per_unit_a=capped_score(ea, th),
                           per_unit_b=capped_score(eb, th), share=True)
    pa, pb = _per_pair(ra)[:, 0], _per_pair(rb)[:, 0]
    out["precision"] = paired("precision", pa, pb, units, weighted_mean, per_unit_a=pa, per_unit_b=pb, share=True)
    return out
