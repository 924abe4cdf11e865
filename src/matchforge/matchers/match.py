"""``matchforge match``: match two images with LoFTR (or SIFT) and draw the matches; or a video/webcam.

Pair mode writes ``OUT/matches.npz`` (``kpts0``, ``kpts1``: (M, 2) pixels of the original images;
``confidence``) and ``OUT/matches.jpg``. Video mode (``--video FILE_OR_CAMERA_INDEX``) matches every
``--stride``-th frame against a reference frame (the first, or re-anchored every ``--reanchor``
frames) and writes annotated frames ``OUT/frames/000000.jpg`` ... without any window (headless).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from matchforge.evaluation.config import PosePairs
from matchforge.errors import MatchforgeError
from matchforge.evaluation.visualize import draw_matches
from matchforge.io.images import read_image, write_image
from matchforge.matchers import get_matcher

log = logging.getLogger(__name__)


def make_matcher(weights: str | None, img_resize: int | None, device: str | None, sift: bool = False) -> Any:
    if sift:
        return get_matcher({"name": "sift", "img_resize": img_resize})
    if not weights:
        raise MatchforgeError("no weights given", fix="pass --weights results/models/loftr/<run>/weights.pt (or outdoor/indoor with network), or --sift")
    model_conf = None
    meta = Path(weights).with_name("model.json")
    if meta.is_file():
        model_conf = json.loads(meta.read_text()).get("conf")
    return get_matcher({"name": "loftr", "weights": weights, "model_conf": model_conf, "img_resize": img_resize,
                        "pad": False, "device": device})


def main(image0: str | Path, image1: str | Path, out_dir: str | Path, weights: str | None = None, *,
         img_resize: int | None, device: str | None = None, sift: bool = False) -> dict[str, Any]:
    """Match one pair; write ``matches.npz`` and ``matches.jpg`` into ``out_dir``."""
    matcher = make_matcher(weights, img_resize, device, sift)
    k0, k1 = matcher(image0, image1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "matches.npz", kpts0=k0, kpts1=k1)
    write_image(out_dir / "matches.jpg", draw_matches(read_image(image0), read_image(image1), k0, k1,
                                                      f"{matcher.name}: {len(k0)} matches"))
    return {"num_matches": int(len(k0)), "out": str(out_dir)}


def video(source: str, out_dir: str | Path, weights: str | None = None, *, img_resize: int | None,
          device: str | None = None, stride: int = 1, reanchor: int = 0, max_frames: int | None = None, sift: bool = False) -> int:
    """Annotate frames of a video file or camera (integer index) against a reference frame; returns frames written."""
    import tempfile

    matcher = make_matcher(weights, img_resize, device, sift)
    cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        raise MatchforgeError("cannot open video source", path=source, fix="pass a readable video file or a camera index (0, 1, ...)")
    frames_dir = Path(out_dir) / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    written, idx, ref = 0, 0, None
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = Path(tmp) / "ref.png", Path(tmp) / "cur.png"
        while max_frames is None or written < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            if idx % stride == 0:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                if ref is None or (reanchor and idx % reanchor == 0):
                    ref = frame
                    write_image(ref_path, ref)
                write_image(cur_path, frame)
                k0, k1 = matcher(ref_path, cur_path)
                write_image(frames_dir / f"{written:06d}.jpg", draw_matches(ref, frame, k0, k1, f"frame {idx}: {len(k0)} matches"))
                written += 1
            idx += 1
    cap.release()
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", help="IMG0 IMG1 (pair mode)")
    parser.add_argument("--weights", default=None, help="weights.pt of a run, an official checkpoint, or outdoor/indoor/indoor_new (download)")
    parser.add_argument("--sift", action="store_true", help="use the SIFT baseline instead of LoFTR")
    parser.add_argument("--out", default="matches", help="output folder")
    parser.add_argument("--resize", type=int, default=PosePairs().img_resize,
                        help="long side (px) the matcher sees (0 = original size; default: loftr.testsets' img_resize)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--video", default=None, help="video file or camera index: annotate frames instead of a pair")
    parser.add_argument("--stride", type=int, default=1, help="video: match every n-th frame")
    parser.add_argument("--reanchor", type=int, default=0, help="video: new reference frame every n frames (0 = keep the first)")
    parser.add_argument("--max-frames", type=int, default=None, help="video: stop after this many annotated frames")


def run(args: argparse.Namespace) -> None:
    resize = args.resize or None
    if args.video is not None:
        n = video(args.video, args.out, args.weights, img_resize=resize, device=args.device, stride=args.stride,
                  reanchor=args.reanchor, max_frames=args.max_frames, sift=args.sift)
        log.info("wrote %d annotated frames to %s/frames", n, args.out)
        return
    if len(args.images) != 2:
        raise MatchforgeError("pair mode needs exactly two images", fix="matchforge match IMG0 IMG1 --weights W (or --video SRC)")
    res = main(args.images[0], args.images[1], args.out, args.weights, img_resize=resize, device=args.device, sift=args.sift)
    log.info("%d matches -> %s", res["num_matches"], res["out"])
