"""Test sets for relative-pose evaluation, all read into ``PairRecord``s.

Kinds (``loftr.testsets`` in the config):

- ``dataset``: a split of a dataset built by ``matchforge dataset`` (``results/datasets/<name>/dataset.json``).
- ``reichstag``: photos + Image Matching Challenge calibration files (``calibration_<stem>.h5`` with
  ``K``, world->camera ``R``, ``T``) and co-visible pairs ``new-vis-pairs/keys-th-<t>.npy``
  (``"stemA-stemB"``); shipped in ``resources/testsets/reichstag``.
- ``megadepth``: official MegaDepth-1500 scene-info files + a list, with the user's images.
- ``scannet``: official ScanNet-1500 ``test.npz`` + ``intrinsics.npz``, with the user's frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.workflow import config_source


def read_reichstag(root: str | Path, vis_threshold: str = "0.1") -> list[Any]:
    """Pairs of an IMC-style scene folder (see module docstring); poses are world->camera."""
    import h5py

    from matchforge.dataset.indices import PairRecord

    root = Path(root)
    keys_file = root / "new-vis-pairs" / f"keys-th-{vis_threshold}.npy"
    if not keys_file.is_file():
        raise MatchforgeError("pair list not found", path=keys_file, fix="point `root` at a folder with new-vis-pairs/keys-th-<t>.npy")
    images = {p.stem: p for p in (root / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    calib: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def camera(stem: str) -> tuple[np.ndarray, np.ndarray]:
        if stem not in calib:
            path = root / "calibration" / f"calibration_{stem}.h5"
            if not path.is_file():
                raise MatchforgeError("calibration file missing", path=path, fix="every image needs calibration/calibration_<stem>.h5")
            with h5py.File(path, "r") as f:
                K = np.asarray(f["K"], dtype=np.float64)
                T = np.eye(4)
                T[:3, :3] = np.asarray(f["R"], dtype=np.float64)
                T[:3, 3] = np.asarray(f["T"], dtype=np.float64).ravel()
            calib[stem] = (K, T)
        return calib[stem]

    out = []
    for key in np.load(keys_file, allow_pickle=True):
        a, b = str(key).split("-")
        if a not in images or b not in images:
            raise MatchforgeError(f"pair {key} names an image that is missing", path=root / "images", fix="restore the images folder")
        (K0, T0), (K1, T1) = camera(a), camera(b)
        out.append(PairRecord(root.name, images[a], images[b], None, None, K0, K1, T0, T1, T1 @ np.linalg.inv(T0), float("nan")))
    return out


def testset_available(ts: Mapping[str, Any]) -> bool:
    """Whether the images a test set needs are present (MegaDepth/ScanNet need the user's data root)."""
    if ts["kind"] in ("megadepth", "scannet"):
        return bool(ts.get("data_root")) and Path(ts["data_root"]).is_dir()
    return True


def load_testset(ts: Mapping[str, Any], dataset_json: str | Path | None = None, name: str = "") -> list[Any]:
    """Pairs of test set ``ts`` (one entry of ``loftr.testsets``), truncated to ``max_pairs``."""
    from matchforge.dataset import indices

    kind = ts["kind"]

    def need(key: str) -> str:
        if not ts.get(key):
            raise MatchforgeError(f"test set '{name}' of kind {kind} needs option '{key}'", fix=f"set loftr.testsets.{name}.{key} in {config_source()}")
        return ts[key]

    if kind == "dataset":
        if dataset_json is None:
            need("dataset")
            raise MatchforgeError(f"test set '{name}' needs the dataset.json of dataset '{ts['dataset']}'", fix="pass --dataset")
        records = indices.read_dataset(dataset_json, ts.get("split", "test"), 0.0)
    elif kind == "reichstag":
        records = read_reichstag(need("root"), str(ts.get("vis_threshold", "0.1")))
    elif kind == "megadepth":
        if not testset_available(ts):
            raise MatchforgeError(f"MegaDepth images not found for test set '{name}'", path=ts.get("data_root"),
                                  fix="download the MegaDepth-1500 images (LoFTR README) and set data_root to their folder")
        records = indices.read_megadepth_list(need("npz_root"), need("list"), need("data_root"), 0.0)
    elif kind == "scannet":
        if not testset_available(ts):
            raise MatchforgeError(f"ScanNet frames not found for test set '{name}'", path=ts.get("data_root"),
                                  fix="download the ScanNet-1500 test frames (LoFTR README) and set data_root to their folder")
        records = indices.read_scannet_index(need("test_npz"), need("intrinsics_npz"), need("data_root"))
    else:
        raise MatchforgeError(f"unknown test set kind '{kind}'", fix="use dataset, reichstag, megadepth or scannet")
    if ts.get("max_pairs"):
        records = records[: int(ts["max_pairs"])]
    if not records:
        raise MatchforgeError(f"test set '{name}' has no pairs", path=dataset_json, fix="check the split / index files")
    return records
