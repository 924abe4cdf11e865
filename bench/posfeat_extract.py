"""Feature extraction time per image: OpenCV SIFT (baseline) vs PoSFeat (ours, ResNet-50 + detector).

Uses the homography pairs shipped in ``resources/testsets/homography`` (8 real images), resized to
``--max-size``, with a randomly initialised PoSFeat model (the time does not depend on the weights).
Prints seconds per image for both, their ratio, and the device. On CUDA, times include synchronisation.

A CNN costs more than SIFT by nature, so the target is on what matchforge adds: the whole PoSFeat
extraction (resize, network, NMS, descriptor sampling, copies back) against the bare network forward
on the same crops, in the same run. Target (exit status 1 when missed): extraction <= 1.3x the bare
forward.

    .venv/bin/python bench/posfeat_extract.py [--max-size 640] [--repeat 1] [--arch resnet50]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from matchforge.io.images import read_image as read_rgb
from matchforge.io.images import list_images  # noqa: E402
from matchforge.posfeat.config import PoSFeatModel  # noqa: E402
from matchforge.posfeat.extract import DEFAULTS, _resized, extract_one
from matchforge.device import pick_device
from matchforge.posfeat.networks import PoSFeat, normalize

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


OVERHEAD_MAX = 1.3


def to_input(rgb, max_size: int, device: torch.device) -> torch.Tensor:
    """The crop extraction feeds the network: resized to ``max_size``, cut to multiples of 16, in [0, 1]."""
    small, _ = _resized(rgb, max_size)
    h, w = (small.shape[0] // 16) * 16, (small.shape[1] // 16) * 16
    return torch.from_numpy(small[:h, :w].copy()).permute(2, 0, 1)[None].float().to(device) / 255.0


@torch.no_grad()
def bare_forward(model: PoSFeat, x: torch.Tensor) -> None:
    model(normalize(x), with_score=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-size", type=int, default=640)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--arch", default="resnet50")
    args = ap.parse_args()
    device = pick_device("auto")
    images = [read_rgb(p) for _, p in list_images(ROOT)]
    model = PoSFeat(args.arch, PoSFeatModel().desc_dim).to(device).eval()
    conf = {**DEFAULTS, "max_size": args.max_size}
    sift = timed(lambda im: extract_one(im, {**conf, "method": "sift"}, None, device), images, args.repeat, device)
    ours = timed(lambda im: extract_one(im, {**conf, "method": "posfeat"}, model, device), images, args.repeat, device)
    print(f"device {device}, {len(images)} images, long side <= {args.max_size}px, torch threads {torch.get_num_threads()}")
    print(f"baseline SIFT      : {sift:7.3f} s/image")
    print(f"ours PoSFeat ({args.arch}): {ours:7.3f} s/image")
    print(f"ratio ours/baseline: {ours / sift:7.2f}x")
    bare = timed(lambda x: bare_forward(model, x), [to_input(im, args.max_size, device) for im in images],
                 args.repeat, device)
    ok = ours <= OVERHEAD_MAX * bare
    print(f"bare network forward: {bare:7.3f} s/image; extraction / bare forward {ours / bare:5.2f}x "
          f"(target <= {OVERHEAD_MAX}: {'met' if ok else 'MISSED'})")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
