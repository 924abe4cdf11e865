"""Training pairs for PoSFeat: images + K + world->camera poses, nothing else (weak supervision).

Sources:
- a matchforge dataset (``results/datasets/<name>/dataset.json``, pairs from its scene-info files);
- the CAPS MegaDepth layout: ``<root>/**/img_cam.txt`` + ``pairs.txt`` + ``images/``; ``img_cam.txt`` lines are
  ``name w h fx fy cx cy R11..R33 tx ty tz`` with [R|t] world->camera;
- an Image Matching Challenge scene (:func:`matchforge.dataset.indices.read_imc`), or any list of
  :class:`~matchforge.dataset.indices.PairRecord` (only images, K and poses are used).

Every item is resized to the fixed training size (W, H) (independently per axis, K rescaled to match),
so batches collate; pairs whose relative rotation exceeds ``rot_thr`` degrees are dropped up front.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from matchforge.errors import MatchforgeError
from matchforge.dataset.indices import PairRecord, read_dataset
from matchforge.io.images import read_image, resize_with_K
from matchforge.geometry.pose import relative_rotation_deg

log = logging.getLogger(__name__)


def filter_rotation(pairs: Sequence[PairRecord], rot_thr: float) -> list[PairRecord]:
    """Pairs whose relative rotation is at most ``rot_thr`` degrees."""
    return [p for p in pairs if relative_rotation_deg(p.T0, p.T1) <= rot_thr]


def pairs_from_dataset(dataset_json: str | Path, split: str, min_overlap: float) -> list[PairRecord]:
    """Pairs of a matchforge dataset split (``dataset.json`` written by ``matchforge dataset``)."""
    return read_dataset(dataset_json, split, min_overlap)


def read_img_cam(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CAPS ``img_cam.txt``: image name -> (K 3x3, T 4x4 world->camera)."""
    cams = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split()
        if len(f) != 19:
            raise MatchforgeError(f"line {n} has {len(f)} fields, expected 19 (name w h fx fy cx cy R(9) t(3))",
                                  fix="check the CAPS MegaDepth download", path=path)
        vals = np.array(f[1:], dtype=np.float64)
        K = np.array([[vals[2], 0, vals[4]], [0, vals[3], vals[5]], [0, 0, 1]])
        T = np.eye(4)
        T[:3, :3] = vals[6:15].reshape(3, 3)
        T[:3, 3] = vals[15:18]
        cams[f[0]] = (K, T)
    return cams


def pairs_from_caps(root: str | Path, max_pairs_per_folder: int = 5000, seed: int = 234) -> list[PairRecord]:
    """Pairs of the CAPS MegaDepth subset under ``root`` (every folder holding img_cam.txt + pairs.txt)."""
    root = Path(root)
    folders = sorted(p.parent for p in root.rglob("img_cam.txt"))
    if not folders:
        raise MatchforgeError("no img_cam.txt found (CAPS layout <root>/<scene>/dense*/aligned/img_cam.txt)",
                              fix="point caps_root at the CAPS MegaDepth 'train' folder", path=root)
    out: list[PairRecord] = []
    rng = np.random.default_rng(seed)
    for folder in folders:
        cams = read_img_cam(folder / "img_cam.txt")
        pairs_txt = folder / "pairs.txt"
        if not pairs_txt.is_file():
            raise MatchforgeError("pairs.txt missing beside img_cam.txt", fix="check the CAPS download", path=pairs_txt)
        lines = [ln.split() for ln in pairs_txt.read_text().splitlines() if ln.strip()]
        if len(lines) > max_pairs_per_folder:
            lines = [lines[i] for i in sorted(rng.choice(len(lines), max_pairs_per_folder, replace=False))]
        scene = str(folder.relative_to(root))
        for a, b in lines:
            if a not in cams or b not in cams:
                continue
            (K0, T0), (K1, T1) = cams[a], cams[b]
            out.append(PairRecord(scene, folder / "images" / a, folder / "images" / b, None, None, K0, K1, T0, T1,
                                  T1 @ np.linalg.inv(T0), float("nan")))
    return out


class PairDataset(Dataset):
    """Items: image0/1 (3, H, W) float in [0, 1], K0/K1 (3, 3), T0/T1 (4, 4) world->camera (float32)."""

    def __init__(self, pairs: Sequence[PairRecord], image_size: tuple[int, int], rot_thr: float):
        W, H = image_size
        if W % 16 or H % 16:
            raise MatchforgeError(f"training image size {W}x{H} is not a multiple of 16",
                                  fix="set posfeat data.image_size to multiples of 16, e.g. [640, 480]")
        kept = filter_rotation(pairs, rot_thr)
        if not kept:
            raise MatchforgeError(f"no training pair left after the rotation filter ({len(pairs)} pairs, "
                                  f"rot_thr {rot_thr} deg)", fix="check the dataset, or raise data.rot_thr")
        log.info("PoSFeat data: %d pairs (%d dropped by the %.0f deg rotation filter)", len(kept),
                 len(pairs) - len(kept), rot_thr)
        self.pairs, self.size = kept, (W, H)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        p = self.pairs[i]
        out: dict[str, torch.Tensor] = {}
        for k, (path, K, T) in enumerate(((p.image0, p.K0, p.T0), (p.image1, p.K1, p.T1))):
            img, Ks = resize_with_K(read_image(path), K, self.size)
            out[f"image{k}"] = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
            out[f"K{k}"] = torch.from_numpy(Ks).float()
            out[f"T{k}"] = torch.from_numpy(np.asarray(T)).float()
        out["index"] = torch.tensor(i)
        return out


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches of indices for steps ``start..steps-1``, reproducible from (seed, step), so resuming repeats
    exactly the batches an uninterrupted run would have seen."""

    def __init__(self, n: int, batch_size: int, start: int, steps: int, seed: int):
        self.n, self.batch_size, self.start, self.steps, self.seed = n, batch_size, start, steps, seed

    def __len__(self) -> int:
        return max(self.steps - self.start, 0)

    def __iter__(self):
        for step in range(self.start, self.steps):
            rng = np.random.default_rng([self.seed, step])
            yield rng.choice(self.n, self.batch_size, replace=self.n < self.batch_size).tolist()


