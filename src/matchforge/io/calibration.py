"""Image Matching Challenge (IMC / phototourism) scenes: per-image calibration and co-visible pairs.

A scene folder holds ``images/<stem>.jpg``, ``calibration/calibration_<stem>.h5`` with ``K`` (3x3,
pixels of the stored image), ``R`` (3x3) and ``T`` (3,) of the **world->camera** pose, and
``new-vis-pairs/keys-th-<t>.npy`` listing ``"stemA-stemB"`` pairs whose co-visibility is at least t.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.safe import load_array_file


def read_imc_camera(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(K, T_cw)``: 3x3 intrinsics and 4x4 world->camera pose, float64, from one calibration H5."""
    path = Path(path)
    if not path.is_file():
        raise MatchforgeError("calibration file missing", path=path,
                              fix="every image needs calibration/calibration_<stem>.h5 beside images/")
    with h5py.File(path, "r") as f:
        K = np.asarray(f["K"], dtype=np.float64)
        T = np.eye(4)
        T[:3, :3] = np.asarray(f["R"], dtype=np.float64)
        T[:3, 3] = np.asarray(f["T"], dtype=np.float64).ravel()
    return K, T


def read_imc_pairs(root: str | Path, vis_threshold: float | str = 0.1) -> list[tuple[str, str]]:
    """Co-visible ``(stemA, stemB)`` pairs of an IMC scene folder at threshold ``vis_threshold``."""
    path = Path(root) / "new-vis-pairs" / f"keys-th-{vis_threshold}.npy"
    if not path.is_file():
        raise MatchforgeError("co-visible pair list not found", path=path,
                              fix="point the test set at an IMC scene folder holding new-vis-pairs/keys-th-<t>.npy")
    return [tuple(str(key).split("-")) for key in load_array_file(path, "IMC pair list")]  # type: ignore[misc]


class ImcScene:
    """Cameras of one IMC scene folder, read once per image."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._cams: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def camera(self, stem: str) -> tuple[np.ndarray, np.ndarray]:
        if stem not in self._cams:
            self._cams[stem] = read_imc_camera(self.root / "calibration" / f"calibration_{stem}.h5")
        return self._cams[stem]

    def image(self, stem: str) -> Path:
        hits = [p for p in (self.root / "images").glob(f"{stem}.*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
        if not hits:
            raise MatchforgeError(f"no image for '{stem}'", path=self.root / "images",
                                  fix="every pair's stems need an image in images/")
        return hits[0]
