"""``matchforge extract``: keypoints, scores and descriptors for a set of images.

Methods: ``posfeat`` (detector + descriptor of a trained model), ``posfeat`` with ``use_sift`` (SIFT
keypoints described by PoSFeat), ``sift`` (OpenCV SIFT, the baseline). Images are resized so that the
long side is at most ``max_size`` (null: full size), cropped right/bottom to a multiple of 16 for the
network, and keypoints are reported in the **original** image's pixels (matchforge convention: the
centre of pixel (r, c) is (c + 0.5, r + 0.5)).

Output: one ``.h5`` (a group per image name with ``keypoints`` (N, 2) float32, ``scores`` (N,),
``descriptors`` (N, D) float32 L2-normalised, ``image_size`` (W, H)), or a folder of ``<name>.npz`` with
the same arrays (PoSFeat's own format).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np
import torch
from tqdm import tqdm

from matchforge.conf import load_conf
from matchforge.errors import MatchforgeError
from matchforge.posfeat.config import ExtractJob
from matchforge.io.features import FeatureWriter
from matchforge.io.images import list_images, read_image
from matchforge.posfeat.detect import describe, detect_keypoints, sift_keypoints
from matchforge.device import pick_device
from matchforge.posfeat.networks import PoSFeat, load_checkpoint, normalize

log = logging.getLogger(__name__)


def _resized(rgb: np.ndarray, max_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Image with long side <= ``max_size`` and the per-axis factors (x, y) from original to resized pixels."""
    h, w = rgb.shape[:2]
    scale = 1.0 if not max_size or max(h, w) <= max_size else max_size / max(h, w)
    if scale == 1.0:
        return rgb, np.ones(2)
    W, H = round(w * scale), round(h * scale)
    return cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA), np.array([W / w, H / h])


@torch.no_grad()
def extract_one(rgb: np.ndarray, conf: dict[str, Any], model: PoSFeat | None,
                device: torch.device) -> dict[str, np.ndarray]:
    """Features of one RGB uint8 image (H, W, 3); keypoints in its pixels."""
    H0, W0 = rgb.shape[:2]
    small, scale = _resized(rgb, conf["max_size"])
    if conf["method"] == "sift":
        kp, scores, desc = sift_keypoints(small, conf["num_pts"])
    else:
        if model is None:
            raise MatchforgeError("method 'posfeat' needs a model", fix="pass --model <run>/kp/model.pt")
        h, w = (small.shape[0] // 16) * 16, (small.shape[1] // 16) * 16
        if h < 32 or w < 32:
            raise MatchforgeError(f"image too small for the network ({small.shape[1]}x{small.shape[0]})",
                                  fix="use larger images or a larger extract.max_size")
        crop = small[:h, :w]
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float().to(device) / 255.0
        out = model(normalize(x), with_score=not conf["use_sift"])
        if conf["use_sift"]:
            kp, scores, _ = sift_keypoints(crop, conf["num_pts"])
            kpt = torch.from_numpy(kp).to(device)
        else:
            kpt, st = detect_keypoints(out["score_map"], conf["nms_radius"], conf["thr"], conf["num_pts"],
                                       conf["min_pts"])
            scores = st.cpu().numpy()
        desc = describe(out["local_map"], kpt, w, h).cpu().numpy() if len(kpt) else np.zeros((0, model.desc.desc_dim))
        kp = kpt.cpu().numpy()
    return {"keypoints": (np.asarray(kp, np.float32).reshape(-1, 2) / scale[None]).astype(np.float32),
            "scores": np.asarray(scores, np.float32).ravel(), "descriptors": np.asarray(desc, np.float32),
            "image_size": np.array([W0, H0], np.int32)}


def main(conf: dict[str, Any], images: Iterable[tuple[str, Path]], out: str | Path,
         model_path: str | Path | None = None) -> Path:
    """Extract features of ``images`` ((name, path) pairs) to ``out`` (``.h5`` file, or a folder of ``.npz``)."""
    conf = ExtractJob.of(conf, "--conf").to_dict()
    device = pick_device(conf["device"])
    model = None
    if conf["method"] == "posfeat":
        if not model_path:
            raise MatchforgeError("method 'posfeat' needs a trained model", fix="pass --model <run>/kp/model.pt "
                                  "(or --conf '{\"method\": \"sift\"}' for the SIFT baseline)")
        model, _ = load_checkpoint(model_path, device)
    out = Path(out)
    images = list(images)
    if not images:
        raise MatchforgeError("no images to extract", fix="check the image folder / test set", path=out)
    if out.suffix != ".h5":
        raise MatchforgeError("features are written to one .h5 file", path=out, fix="give --out <file>.h5")
    with FeatureWriter(out) as writer:
        for name, path in tqdm(images, desc=f"extract {conf['method']}", mininterval=5):
            writer.write(name, extract_one(read_image(path), conf, model, device))
    log.info("extracted %s features of %d images to %s", conf["method"], len(images), out)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", help="folder of images (all below it)")
    parser.add_argument("--testset", help="evaluation test set as JSON/YAML (its images are extracted)")
    parser.add_argument("--out", required=True, help="<file>.h5 (one group per image)")
    parser.add_argument("--model", help="PoSFeat model.pt (needed unless method is sift)")
    parser.add_argument("--conf", help="options as inline JSON or YAML file: " + ", ".join(ExtractJob.model_fields))


def run(args: argparse.Namespace) -> None:
    conf = load_conf(args.conf)
    if bool(args.images) == bool(args.testset):
        raise MatchforgeError("give exactly one of --images and --testset", fix="see matchforge extract -h")
    if args.images:
        images = list_images(args.images)
    else:
        from matchforge.evaluation.testsets import testset_images

        images = testset_images(load_conf(args.testset))
    main(conf, images, args.out, args.model)
