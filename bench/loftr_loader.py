"""LoFTR training loader: matchforge's ``PairDataset`` against the official reading path, same pairs.

The baseline is the official MegaDepth loader's reading path written out plainly here (cv2 grayscale
read, long side to ``img_resize`` rounded, sides floored to multiples of 8, ``cv2.resize`` with its
default interpolation, zero padding to a square with a mask, nearest 1/8 mask; depth read whole
from the H5 file and zero-padded to 2000 x 2000; poses and intrinsics). Both produce the same
tensors; the bench checks that they agree before timing.

Timed per pair, alternating the two loaders over several rounds: image reading (both images), depth
reading (both maps) and the whole sample. Prints ms per pair and the speed-up of matchforge over
the baseline. Target (exit status 1 when missed): the whole sample at least as fast as the baseline
(ratio >= 1.0); the aim is 1.5.

    .venv/bin/python bench/loftr_loader.py [--dataset results/datasets/demo/dataset.json] [--rounds 5]
        [--img-resize 640]

Build the dataset first: ``snakemake --cores 2 results/datasets/demo/dataset.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from matchforge.dataset.indices import read_dataset  # noqa: E402
from matchforge.loftr.data import PairDataset, read_depth, read_gray  # noqa: E402


def plain_gray(path: str, resize: int, df: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    h, w = image.shape
    s = resize / max(h, w)
    w_new, h_new = int(round(w * s)) // df * df, int(round(h * s)) // df * df
    image = cv2.resize(image, (w_new, h_new))
    scale = torch.tensor([w / w_new, h / h_new], dtype=torch.float)
    size = max(h_new, w_new)
    padded = np.zeros((size, size), dtype=image.dtype)
    padded[:h_new, :w_new] = image
    mask = np.zeros((size, size), dtype=bool)
    mask[:h_new, :w_new] = True
    return torch.from_numpy(padded).float()[None] / 255, torch.from_numpy(mask), scale


def plain_depth(path: str, pad_to: int = 2000) -> torch.Tensor:
    with h5py.File(path, "r") as f:
        depth = np.array(f["depth"])
    padded = np.zeros((pad_to, pad_to), dtype=depth.dtype)
    padded[: depth.shape[0], : depth.shape[1]] = depth
    return torch.from_numpy(padded).float()


def plain_sample(rec, resize: int) -> dict:
    img0, m0, s0 = plain_gray(rec.image0, resize)
    img1, m1, s1 = plain_gray(rec.image1, resize)
    d0, d1 = plain_depth(rec.depth0), plain_depth(rec.depth1)
    T0, T1 = np.asarray(rec.T0, dtype=np.float64), np.asarray(rec.T1, dtype=np.float64)
    T_0to1 = torch.tensor(np.matmul(T1, np.linalg.inv(T0)), dtype=torch.float)[:4, :4]
    masks = torch.nn.functional.interpolate(torch.stack([m0, m1])[None].float(), scale_factor=0.125, mode="nearest",
                                            recompute_scale_factor=False)[0].bool()
    return {"image0": img0, "image1": img1, "depth0": d0, "depth1": d1, "T_0to1": T_0to1, "T_1to0": T_0to1.inverse(),
            "K0": torch.tensor(np.asarray(rec.K0), dtype=torch.float), "K1": torch.tensor(np.asarray(rec.K1), dtype=torch.float),
            "scale0": s0, "scale1": s1, "mask0": masks[0], "mask1": masks[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(REPO / "results/datasets/demo/dataset.json"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--img-resize", type=int, default=640)
    args = ap.parse_args()
    if not Path(args.dataset).is_file():
        sys.exit(f"{args.dataset} not found: build it first (snakemake --cores 2 results/datasets/demo/dataset.json)")
    torch.set_num_threads(1)
    records = read_dataset(args.dataset, "train", 0.0)
    ours = PairDataset(records, img_resize=args.img_resize, pad=True, depth_max_size=2000, interpolation="linear")

    for i, rec in enumerate(records[:3]):  # same tensors before timing
        a, b = ours[i], plain_sample(rec, args.img_resize)
        for k, v in b.items():
            assert torch.allclose(a[k], v, rtol=1e-6, atol=1e-6), f"{k} differs from the official path"

    t = {k: [] for k in ("ours_img", "plain_img", "ours_depth", "plain_depth", "ours_pair", "plain_pair")}
    for _ in range(args.rounds):
        for i, rec in enumerate(records):
            t0 = time.perf_counter()
            gray = {"df": 8, "pad": True, "interpolation": "linear"}
            read_gray(rec.image0, args.img_resize, **gray), read_gray(rec.image1, args.img_resize, **gray)
            t1 = time.perf_counter()
            plain_gray(rec.image0, args.img_resize), plain_gray(rec.image1, args.img_resize)
            t2 = time.perf_counter()
            read_depth(rec.depth0, 2000), read_depth(rec.depth1, 2000)
            t3 = time.perf_counter()
            plain_depth(rec.depth0), plain_depth(rec.depth1)
            t4 = time.perf_counter()
            ours[i]
            t5 = time.perf_counter()
            plain_sample(rec, args.img_resize)
            t6 = time.perf_counter()
            for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
                t[k].append(dt)
    med = {k: 1000 * float(np.median(v)) for k, v in t.items()}
    print(f"{len(records)} pairs x {args.rounds} rounds, {args.img_resize} px, depth padded to 2000, 1 thread; "
          f"median ms per pair")
    print(f"{'':8} {'matchforge':>10} {'official':>9} {'speed-up':>9}")
    for part in ("img", "depth", "pair"):
        print(f"{part:8} {med['ours_' + part]:10.2f} {med['plain_' + part]:9.2f} {med['plain_' + part] / med['ours_' + part]:8.2f}x")
    ratio = med["plain_pair"] / med["ours_pair"]
    print(f"target: whole sample >= 1.0x the official path (aim 1.5x): {'met' if ratio >= 1.0 else 'MISSED'} ({ratio:.2f}x)")
    sys.exit(0 if ratio >= 1.0 else 1)


if __name__ == "__main__":
    main()
