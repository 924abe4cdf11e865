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
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from tqdm import tqdm

from matchforge.conf import load_conf
from matchforge.device import pick_device
from matchforge.errors import MatchforgeError
from matchforge.evaluation.pose import evaluate_pair, pose_auc
from matchforge.evaluation.visualize import draw_pair
from matchforge.io.images import image_size

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("auc@5", "auc@10", "auc@20", "precision", "num_matches", "failed", "num_pairs")


def testset_defaults(testset: Mapping[str, Any]) -> dict[str, Any]:
    """A test set's options with the schema defaults filled in (``loftr.testsets`` entries)."""
    from matchforge.workflow import with_defaults

    return with_defaults("loftr", {"testsets": {"testset": dict(testset)}})["testsets"]["testset"]


class LoFTRMatcher:
    """``matcher(path0, path1) -> (kpts0, kpts1)`` with a trained LoFTR, original-image pixels."""

    name = "loftr"

    def __init__(self, weights: str | Path, model_conf: Mapping[str, Any] | None = None, img_resize: int | None = 640,
                 pad: bool = True, device: str | None = None, interpolation: str = "linear") -> None:
        from matchforge.loftr.model import load_weights

        self.device = str(pick_device(device))
        self.model = load_weights(str(weights), model_conf, self.device)
        self.img_resize, self.pad, self.interpolation = img_resize, pad, interpolation

    def __call__(self, path0: str | Path, path1: str | Path) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from matchforge.loftr.data import read_gray
        from matchforge.loftr.model import forward

        data: dict[str, Any] = {}
        for i, path in enumerate((path0, path1)):
            img, mask, scale, _ = read_gray(path, self.img_resize, 8, self.pad, interpolation=self.interpolation)
            data[f"image{i}"] = img[None].to(self.device)
            data[f"scale{i}"] = scale[None].to(self.device)
            if mask is not None:
                data[f"mask{i}"] = mask[::8, ::8][None].to(self.device)
        if self.pad and data["image0"].shape != data["image1"].shape:
            data.pop("mask0"), data.pop("mask1")
        with torch.inference_mode():
            forward(self.model, data)
        return data["mkpts0_f"].float().cpu().numpy().astype(np.float64), data["mkpts1_f"].float().cpu().numpy().astype(np.float64)


def to_intrinsics_frame(kpts: np.ndarray, path: str | Path, size: tuple[int, int] | None) -> np.ndarray:
    """Keypoints in pixels of the image file -> pixels of the ``size`` (w, h) its K refers to (if given)."""
    if size is None:
        return kpts
    w, h = image_size(path)
    return kpts * np.array([size[0] / w, size[1] / h])


def evaluate(matcher: Callable[[Any, Any], tuple[np.ndarray, np.ndarray]], records: list[Any],
             ransac_thresh: float = 0.5, epi_err_thr: float = 5e-4, vis: tuple[str | Path, str] | None = None) -> dict[str, Any]:
    """Aggregate and per-pair relative-pose metrics of ``matcher`` on ``records``.

    ``vis = (path, title)`` also draws the first pair's matches (see :func:`draw_pair`).
    """
    rows = []
    t0 = time.time()
    for n, rec in enumerate(tqdm(records, desc="pairs", mininterval=5)):
        k0, k1 = matcher(rec.image0, rec.image1)
        k0 = to_intrinsics_frame(k0, rec.image0, getattr(rec, "size0", None))
        k1 = to_intrinsics_frame(k1, rec.image1, getattr(rec, "size1", None))
        if vis is not None and n == 0:
            draw_pair(rec, k0, k1, epi_err_thr, vis[1], vis[0])
        r = evaluate_pair(k0, k1, np.asarray(rec.K0), np.asarray(rec.K1), np.asarray(rec.T_0to1), ransac_thresh, epi_err_thr)
        rows.append({"image0": Path(rec.image0).name, "image1": Path(rec.image1).name, "scene": str(rec.scene),
                     **{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}})
    seconds = time.time() - t0
    errors = [np.inf if r["pose_error"] is None else r["pose_error"] for r in rows]
    out: dict[str, Any] = {"num_pairs": len(rows), **pose_auc(errors)}
    out["precision"] = float(np.mean([r["precision"] for r in rows]) * 100) if rows else 0.0
    out["num_matches"] = float(np.mean([r["num_matches"] for r in rows])) if rows else 0.0
    out["failed"] = int(sum(not np.isfinite(e) for e in errors))
    out["seconds_per_pair"] = seconds / max(len(rows), 1)
    out["pairs"] = rows
    return out


def main(testset: Mapping[str, Any], out_json: str | Path, *, weights: str | Path | None = None,
         model_conf: Mapping[str, Any] | None = None, baseline: Mapping[str, Any] | None = None,
         dataset_json: str | Path | None = None, name: str = "", device: str | None = None,
         vis: str | Path | None = None, before: str | Path | None = None) -> dict[str, Any]:
    """Evaluate LoFTR ``weights`` (or, with ``baseline``, SIFT) on ``testset``; write ``out_json``
    (and, with ``vis``, a picture of the first pair's matches).

    ``before``: the weights a fine-tuning started from (a file or a kornia name), evaluated on the same
    pairs with the same options; their aggregate metrics go under the key ``before``.
    """
    from matchforge.matchers.sift import SiftMatcher
    from matchforge.evaluation.testsets import load_testset

    ts = testset_defaults(testset)
    records = load_testset(ts, dataset_json, name)
    if baseline is not None:
        matcher: Any = SiftMatcher(baseline, img_resize=ts["img_resize"])
        what = {"matcher": "sift", "baseline": dict(baseline)}
    elif weights is not None:
        matcher = LoFTRMatcher(weights, model_conf, ts["img_resize"], bool(ts["pad"]), device, ts["interpolation"])
        what = {"matcher": "loftr", "weights": str(weights), "match_type": matcher.model.coarse_matching.match_type,
                "device": matcher.device}
    else:
        raise MatchforgeError("nothing to evaluate", fix="pass --weights (LoFTR) or --baseline sift")
    log.info("evaluating %s on %s (%d pairs)", what["matcher"], name or ts["kind"], len(records))
    res = evaluate(matcher, records, float(ts["ransac_thresh"]), float(ts["epi_err_thr"]),
                   vis=(vis, f"{what['matcher']} on {name or ts['kind']}") if vis else None)
    result = {"testset": name, "testset_conf": ts, **what, **res}
    if before is not None and baseline is None:
        initial = LoFTRMatcher(before, model_conf, ts["img_resize"], bool(ts["pad"]), device, ts["interpolation"])
        log.info("evaluating the initial weights %s on the same pairs", before)
        res0 = evaluate(initial, records, float(ts["ransac_thresh"]), float(ts["epi_err_thr"]))
        result["before"] = {"weights": str(before), **{k: res0[k] for k in SUMMARY_KEYS}}
        log.info("before fine-tuning: AUC@5/10/20 = %.2f / %.2f / %.2f, precision %.1f %%, %.0f matches/pair",
                 res0["auc@5"], res0["auc@10"], res0["auc@20"], res0["precision"], res0["num_matches"])
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1, default=str))
    log.info("%s on %s: AUC@5/10/20 = %.2f / %.2f / %.2f, precision %.1f %%, %.0f matches/pair",
             what["matcher"], name, result["auc@5"], result["auc@10"], result["auc@20"], result["precision"], result["num_matches"])
    return result


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


def run(args: argparse.Namespace) -> None:
    model_conf = load_conf(args.model_conf) if args.model_conf else None
    weights = args.weights
    if weights and model_conf is None:
        meta = Path(weights).with_name("model.json")
        if meta.is_file():
            model_conf = json.loads(meta.read_text()).get("conf")
    main(load_conf(args.testset), args.out, weights=weights, model_conf=model_conf,
         baseline=load_conf(args.baseline_conf) if args.baseline else None, dataset_json=args.dataset,
         name=args.name, device=args.device, vis=args.vis, before=args.before)
