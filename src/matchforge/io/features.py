"""Local features of many images in one H5 file (hloc's layout).

One group per image name (the name may contain ``/``), holding ``keypoints`` (N, 2) float pixels in
the original image (matchforge convention: pixel corners at 0, :mod:`matchforge.geometry.pixels`),
``descriptors`` (N, D) and optionally ``scores`` (N,). Files are written to ``<name>.part`` and renamed
when complete, so an interrupted extraction never leaves a file that looks finished.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import h5py
import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.write import atomic_h5


class FeatureWriter:
    """``with FeatureWriter(path) as w: w.write(name, {"keypoints": ..., "descriptors": ...})``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __enter__(self) -> "FeatureWriter":
        self._context = atomic_h5(self.path, "feature file")
        self._file = self._context.__enter__()
        return self

    def write(self, name: str, features: dict[str, np.ndarray]) -> None:
        group = self._file.create_group(name)
        for key, value in features.items():
            group.create_dataset(key, data=value)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool | None:
        return self._context.__exit__(exc_type, exc, tb)


def read_features(path: str | Path, name: str) -> dict[str, np.ndarray]:
    """All arrays stored for image ``name``."""
    with h5py.File(path, "r") as f:
        if name not in f:
            raise MatchforgeError(f"no features for image '{name}'", path=path,
                                  fix="extract features again on the same images (the file belongs to another image set)")
        return {k: f[name][k][()] for k in f[name]}

