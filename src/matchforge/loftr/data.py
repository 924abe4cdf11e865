"""Training/evaluation pairs for LoFTR on top of :mod:`matchforge.dataset.indices` records.

Image pre-processing is upstream's MegaDepth loader: grayscale; the long side resized to
``img_resize`` (rounded), each side floored to a multiple of ``df``; zero-padded bottom-right to a
``img_resize`` square with a validity mask; ``scale = original size / resized size`` (x, y). The
depth map stays at the original resolution, zero-padded bottom-right to ``depth_max_size`` (so pairs
of different sizes batch together), or, in the training loaders, to the batch's largest map plus one
(:func:`collate_pairs`; the same supervision, a fraction of the copies). Masks are returned at coarse resolution (1/8, nearest), which
is what the coarse transformer and the matcher use.

Depth files: MegaDepth-style HDF5 (dataset ``depth``, 0 = invalid) or 16-bit PNG in millimetres
(ScanNet). ``K`` are the original-resolution intrinsics (a record's ``size0/1`` when K refers to another
size than the file's, as for ScanNet); ``T_0to1`` maps camera 0 to camera 1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from matchforge.errors import MatchforgeError
from matchforge.io.depth import read_depth_padded
from matchforge.io.images import read_image, resized_wh


def divisible_wh(w: int, h: int, df: int | None) -> tuple[int, int]:
    """Each side floored to a multiple of ``df``."""
    if not df:
        return w, h
    return w // df * df, h // df * df


INTERPOLATION = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}


def read_gray(path: str | Path, resize: int | None, df: int, pad: bool, size: tuple[int, int] | None = None, *,
              interpolation: str) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, tuple[int, int]]:
    """Image (1, H, W) float in [0, 1], pixel mask (H, W) bool or None, scale (2,) and original (w, h).

    ``size`` (w, h): the size the image's K refers to, when it is not the file's (ScanNet); the image
    is first resized to it, and it counts as the original size. ``interpolation``: ``linear``
    (``cv2.resize``'s default, as the official loaders, so a model sees the same pixels) or ``area``
    (anti-aliased downsizing; upsizing stays linear).
    """
    img = read_image(path, "gray")
    flag = INTERPOLATION[interpolation]
    if size is not None and (img.shape[1], img.shape[0]) != tuple(size):
        img = cv2.resize(img, tuple(size), interpolation=flag)
    h, w = img.shape
    w_new, h_new = divisible_wh(*resized_wh(w, h, resize), df)
    if (w_new, h_new) != (w, h):
        img = cv2.resize(img, (w_new, h_new), interpolation=flag if w_new < w else cv2.INTER_LINEAR)
    scale = torch.tensor([w / w_new, h / h_new], dtype=torch.float32)
    mask = None
    if pad:
        size = max(h_new, w_new, resize or 0)
        padded = np.zeros((size, size), dtype=img.dtype)
        padded[:h_new, :w_new] = img
        mask = torch.zeros(size, size, dtype=torch.bool)
        mask[:h_new, :w_new] = True
        img = padded
    return torch.from_numpy(img)[None].float().div_(255.0), mask, scale, (w, h)


def read_depth(path: str | Path, pad_to: int | None, square: bool = True) -> torch.Tensor:
    """Depth (H, W) float32, 0 = invalid, zero-padded to ``pad_to`` square (:func:`matchforge.io.depth.read_depth_padded`;
    ``square=False``: at its own size, checked against ``pad_to``)."""
    return torch.from_numpy(read_depth_padded(path, pad_to, square))


def collate_pairs(samples: list[dict[str, Any]], depth_max_size: int | None) -> dict[str, Any]:
    """``default_collate`` of samples whose depth maps have their own sizes (``PairDataset(depth_padding="batch")``):
    each is zero-padded bottom-right to the batch's largest height and width plus one, at most ``depth_max_size``.

    The supervision reads exactly what it reads in the ``depth_max_size`` square: cell centres lie inside their
    map, and a warp beyond a map's last pixel reads padding (0, no valid depth) or falls outside in both layouts,
    while a warp just past the last pixel (x in (W - 1, W)) is inside both and reads the same column. At 840 px on
    MegaDepth that is about 1.3 MB per map instead of 16 MB, zero-filled, copied and moved to the GPU every step."""
    from torch.utils.data import default_collate

    if samples and samples[0]["depth0"].ndim == 2:
        cap = depth_max_size or 10**9
        h = min(cap, 1 + max(s[k].shape[0] for s in samples for k in ("depth0", "depth1")))
        w = min(cap, 1 + max(s[k].shape[1] for s in samples for k in ("depth0", "depth1")))
        samples = [{**s, **{k: torch.nn.functional.pad(s[k], (0, w - s[k].shape[1], 0, h - s[k].shape[0]))
                            for k in ("depth0", "depth1")}} for s in samples]
    return default_collate(samples)


class PairDataset(Dataset):
    """LoFTR training/evaluation samples from ``PairRecord``s (see module docstring)."""

    def __init__(self, records: Sequence[Any], img_resize: int | None, df: int = 8, *, pad: bool,
                 load_depth: bool = True, depth_max_size: int | None, coarse_stride: int = 8,
                 interpolation: str, depth_padding: str = "square") -> None:
        if depth_padding not in ("square", "batch"):
            raise ValueError(f"depth_padding is 'square' or 'batch', not {depth_padding!r}")
        self.depth_padding = depth_padding
        self.records = list(records)
        self.img_resize, self.df, self.pad, self.interpolation = img_resize, df, pad, interpolation
        self.load_depth, self.depth_max_size, self.coarse_stride = load_depth, depth_max_size, coarse_stride

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        rec = self.records[idx]
        img0, mask0, scale0, _ = read_gray(rec.image0, self.img_resize, self.df, self.pad, getattr(rec, "size0", None),
                                           interpolation=self.interpolation)
        img1, mask1, scale1, _ = read_gray(rec.image1, self.img_resize, self.df, self.pad, getattr(rec, "size1", None),
                                           interpolation=self.interpolation)
        if self.load_depth:
            if rec.depth0 is None or rec.depth1 is None:
                raise MatchforgeError("pair has no depth maps, which training needs", scene=rec.scene, path=rec.image0,
                                      fix="build the dataset with depth (matchforge depth / align-depth)")
            square = self.depth_padding == "square"
            depth0, depth1 = (read_depth(d, self.depth_max_size, square) for d in (rec.depth0, rec.depth1))
        else:
            depth0 = depth1 = torch.zeros(0)
        T_0to1 = torch.as_tensor(np.asarray(rec.T_0to1), dtype=torch.float32)
        sample = {
            "image0": img0, "image1": img1, "depth0": depth0, "depth1": depth1,
            "T_0to1": T_0to1, "T_1to0": torch.linalg.inv(T_0to1),
            "K0": torch.as_tensor(np.asarray(rec.K0), dtype=torch.float32),
            "K1": torch.as_tensor(np.asarray(rec.K1), dtype=torch.float32),
            "scale0": scale0, "scale1": scale1,
            "scene_id": str(rec.scene), "pair_id": idx,
            "pair_names": (Path(rec.image0).name, Path(rec.image1).name),
        }
        if mask0 is not None:
            s = self.coarse_stride
            sample["mask0"], sample["mask1"] = mask0[::s, ::s].clone(), mask1[::s, ::s].clone()
        return sample


class SceneBalancedSampler(Sampler[int]):
    """Upstream's random concat sampler: each epoch draws ``n_per_scene`` pairs from every scene.

    Draws are with replacement when ``replacement`` (upstream default) and then shuffled; the
    sequence depends only on ``seed`` and the epoch (``set_epoch``). Under DDP every rank takes
    every ``world_size``-th index of the same sequence, so ranks see disjoint samples.
    """

    def __init__(self, scenes: Sequence[str], n_per_scene: int, replacement: bool = True, *, shuffle: bool,
                 seed: int, rank: int = 0, world_size: int = 1) -> None:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(scenes):
            groups[s].append(i)
        self.groups = [groups[k] for k in sorted(groups)]
        self.n_per_scene, self.replacement, self.shuffle = n_per_scene, replacement, shuffle
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0
        self.total = n_per_scene * len(self.groups)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.total / self.world_size) if self.world_size > 1 else self.total

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        out = []
        for idx in self.groups:
            idx_t = torch.tensor(idx)
            if self.replacement:
                pick = torch.randint(len(idx), (self.n_per_scene,), generator=g)
            else:
                perm = torch.randperm(len(idx), generator=g)
                pick = perm.repeat(math.ceil(self.n_per_scene / len(idx)))[: self.n_per_scene]
            out.append(idx_t[pick])
        seq = torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
        if self.shuffle:
            seq = seq[torch.randperm(len(seq), generator=g)]
        if self.world_size > 1:
            seq = seq.repeat(2)[: len(self) * self.world_size][self.rank::self.world_size]
        return iter(seq.tolist())
