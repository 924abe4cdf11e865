"""Matching of stored local features (PoSFeat, SIFT described by any network): mutual nearest neighbours.

:class:`FeatureMatcher` turns a feature file (:mod:`matchforge.io.features`) into a pair matcher with the
same interface as LoFTR's, so relative-pose, homography and reconstruction evaluations treat extracted
features and dense matchers alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from matchforge.io.features import read_features


def mutual_nn(desc0: np.ndarray | torch.Tensor, desc1: np.ndarray | torch.Tensor) -> np.ndarray:
    """Mutual nearest neighbours by descriptor dot product: (M, 2) index pairs (i in 0, j in 1)."""
    d0 = torch.as_tensor(np.asarray(desc0, np.float32) if not torch.is_tensor(desc0) else desc0).float()
    d1 = torch.as_tensor(np.asarray(desc1, np.float32) if not torch.is_tensor(desc1) else desc1).float()
    if len(d0) == 0 or len(d1) == 0:
        return np.zeros((0, 2), np.int64)
    sim = d0 @ d1.T
    nn01 = sim.argmax(1)
    nn10 = sim.argmax(0)
    i = torch.arange(len(d0))
    ok = nn10[nn01] == i
    return torch.stack([i[ok], nn01[ok]], 1).numpy().astype(np.int64)


class FeatureMatcher:
    """``matcher(path0, path1) -> (kpts0, kpts1)`` from stored features, matched by mutual NN.

    Options: ``features`` (the ``.h5`` file) and ``name_of`` (image path -> its name in the file; default:
    the file name). Features are read once per image.
    """

    name = "features"

    def __init__(self, conf: Mapping[str, Any]) -> None:
        self.path = Path(conf["features"])
        self.name_of: Callable[[Path], str] = conf.get("name_of") or (lambda p: Path(p).name)
        self._cache: dict[str, dict[str, np.ndarray]] = {}

    def features(self, name: str) -> dict[str, np.ndarray]:
        if name not in self._cache:
            self._cache[name] = read_features(self.path, name)
        return self._cache[name]

    def __call__(self, path0: str | Path, path1: str | Path) -> tuple[np.ndarray, np.ndarray]:
        f0, f1 = self.features(self.name_of(Path(path0))), self.features(self.name_of(Path(path1)))
        m = mutual_nn(f0["descriptors"], f1["descriptors"])
        return f0["keypoints"][m[:, 0]].astype(np.float64), f1["keypoints"][m[:, 1]].astype(np.float64)
