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
from matchforge.io.write import disk_errors


class FeatureWriter:
    """``with FeatureWriter(path) as w: w.write(name, {"keypoints": ..., "descriptors": ...})``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".part")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: h5py.File | None = None

    def __enter__(self) -> "FeatureWriter":
        self._errors = disk_errors(self.tmp, "feature file")
        self._errors.__enter__()
        self._file = h5py.File(self.tmp, "w")
        return self

    def write(self, name: str, features: dict[str, np.ndarray]) -> None:
        assert self._file is not None, "use FeatureWriter as a context manager"
        group = self._file.create_group(name)
        for key, value in features.items():
            group.create_dataset(key, data=value)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._file is not None
        close_error = None
        try:
            self._file.close()
        except Exception as err:  # noqa: BLE001 - the close flushes: a full disk shows here
            close_error = err
        error = exc if exc is not None else close_error
        if error is None:
            self._errors.__exit__(None, None, None)
            self.tmp.replace(self.path)
        # removes the .part file; a disk error is raised as a MatchforgeError naming the cause
        elif not self._errors.__exit__(type(error), error, error.__traceback__) and exc is None:
            raise close_error


def read_features(path: str | Path, name: str) -> dict[str, np.ndarray]:
    """All arrays stored for image ``name``."""
    with h5py.File(path, "r") as f:
        if name not in f:
            raise MatchforgeError(f"no features for image '{name}'", path=path,
                                  fix="extract features again on the same images (the file belongs to another image set)")
        return {k: f[name][k][()] for k in f[name]}

