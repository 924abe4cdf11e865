"""Feature extraction time per image: OpenCV SIFT (baseline) vs PoSFeat (ours, ResNet-50 + detector).

Uses the homography pairs shipped in ``resources/testsets/homography`` (8 real images), resized to
``--max-size``, with a randomly initialised PoSFeat model (the time does not depend on the weights).
Prints seconds per image for both, their ratio, and the device. On CUDA, times include synchronisation.

    .venv/bin/python bench/posfeat_extract.py [--max-size 640] [--repeat 1] [--arch resnet50]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from matchforge.posfeat.data import read_rgb
from matchforge.posfeat.extract import DEFAULTS, extract_one, list_images
from matchforge.posfeat.networks import PoSFeat, pick_device

ROOT = Path(__file__).resolve().parents[1] / "resources" / "testsets" / "homography"


def timed(fn, images, repeat: int, device: torch.device) -> float:
    fn(images[0])  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        for img in images:
            fn(img)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / (repeat * len(images))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-size", type=int, default=640)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--arch", default="resnet50")
    args = ap.parse_args()
    device = pick_device("auto")
    images = [read_rgb(p) for _, p in list_images(ROOT)]
    model = PoSFeat(args.arch).to(device).eval()
    conf = {**DEFAULTS, "max_size": args.max_size}
    sift = timed(lambda im: extract_one(im, {**conf, "method": "sift"}, None, device), images, args.repeat, device)
    ours = timed(lambda im: extract_one(im, {**conf, "method": "posfeat"}, model, device), images, args.repeat, device)
    print(f"device {device}, {len(images)} images, long side <= {args.max_size}px, torch threads {torch.get_num_threads()}")
    print(f"baseline SIFT      : {sift:7.3f} s/image")
    print(f"ours PoSFeat ({args.arch}): {ours:7.3f} s/image")
    print(f"ratio ours/baseline: {ours / sift:7.2f}x")


if __name__ == "__main__":
    main()
