"""Read pair indices: MegaDepth scene-info files (official LoFTR ones and ours) and ScanNet indices
(the ScanNet-1500 test index and LoFTR's ScanNet training indices).

Every reader returns a list of :class:`PairRecord` with the same conventions:

- ``K0``/``K1``: 3x3 float64 PINHOLE intrinsics in pixels, for the image at its **original** size
  (the size of the file on disk; the LoFTR loaders rescale keypoints back to it).
- ``T0``/``T1``: 4x4 float64 **world->camera** poses; ``T_0to1 = T1 @ inv(T0)`` maps points from
  camera 0's frame to camera 1's frame. Translations are in the index's units (SfM units for ours,
  MegaDepth's SfM units for MegaDepth, metres for ScanNet).
- ``overlap``: the overlap score stored in the index (D2-Net's for MegaDepth, ``score`` of LoFTR's
  ScanNet training indices; NaN where the index has none, i.e. ScanNet-1500).
- ``size0``/``size1``: the image size (w, h) ``K`` refers to, when it is not the size of the file on disk
  (ScanNet: K is for 640x480 frames, the exported colour images are 1296x968); ``None`` otherwise.
  Loaders resize such an image to that size first.
- Paths are joined onto ``data_root`` (an absolute path in the index stays absolute).

The overlap filter is the upstream loader's: a pair is kept when ``overlap > min_overlap``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.safe import load_array_file


def scene_of_subset(stem: str) -> str:
    """The scene of a scene-info file stem: ``0015_0.1_0.3`` (official) or ``sacre_coeur_train_0.1_0.3`` (a
    matchforge dataset's split) -> ``0015``, ``sacre_coeur``; other stems unchanged."""
    return re.sub(r"(?:_(?:train|val|test))?_\d+(?:\.\d+)?_\d+(?:\.\d+)?$", "", stem)


@dataclass
class PairRecord:
    """One image pair with everything needed to supervise or evaluate a matcher."""

    scene: str  # scene-info stem or ScanNet scene id
    image0: Path
    image1: Path
    depth0: Path | None
    depth1: Path | None
    K0: np.ndarray  # (3, 3) float64, pixels, original image size
    K1: np.ndarray
    T0: np.ndarray  # (4, 4) float64, world -> camera (ScanNet: identity)
    T1: np.ndarray  # (4, 4) float64, world -> camera (ScanNet: T_0to1)
    T_0to1: np.ndarray  # (4, 4) float64 = T1 @ inv(T0)
    overlap: float  # NaN when the index has none
    size0: tuple[int, int] | None = None  # (w, h) that K0 refers to; None = the image file's own size
    size1: tuple[int, int] | None = None


def read_imc(root: str | Path, vis_threshold: str) -> list[PairRecord]:
    """Co-visible pairs of an Image Matching Challenge (phototourism) scene folder: ``images/``, calibration
    files ``calibration/calibration_<stem>.h5`` (``K``, world->camera ``R``, ``T``) and the pair list
    ``new-vis-pairs/keys-th-<vis_threshold>.npy`` (``"stemA-stemB"``); no depth, no overlap (NaN)."""
    from matchforge.io.calibration import ImcScene, read_imc_pairs

    scene = ImcScene(root)
    out = []
    for a, b in read_imc_pairs(root, vis_threshold):
        (K0, T0), (K1, T1) = scene.camera(a), scene.camera(b)
        out.append(PairRecord(scene.root.name, scene.image(a), scene.image(b), None, None, K0, K1, T0, T1,
                              T1 @ np.linalg.inv(T0), float("nan")))
    return out


def load_scene_info(npz_path: str | Path) -> dict[str, Any]:
    """Load a scene-info file as a plain dict (works for the official pickled dicts and for ours).

    The official files (and ours) are pickled dicts with a ``.npz`` name; a real ``np.savez``
    archive (as written by some third-party scripts) is converted to a dict too.
    """
    npz_path = Path(npz_path)
    if not npz_path.is_file():
        raise MatchforgeError("scene-info file not found", fix="build it with `matchforge scene-info` "
                              "or check the npz root / list file", path=npz_path)
    data = load_array_file(npz_path, "scene-info file")
    if isinstance(data, dict) and isinstance(data.get("pair_infos"), np.ndarray):  # an np.savez archive
        data["pair_infos"] = list(data["pair_infos"])
    if not isinstance(data, dict):
        raise MatchforgeError(f"scene-info file holds a {type(data).__name__}, not a dict",
                              fix="rebuild it with `matchforge scene-info`", path=npz_path)
    missing = {"image_paths", "depth_paths", "intrinsics", "poses", "pair_infos"} - set(data)
    if missing:
        raise MatchforgeError(f"scene-info file lacks keys {sorted(missing)}",
                              fix="rebuild it with `matchforge scene-info`", path=npz_path)
    return data


def _join(root: Path, rel: Any) -> Path | None:
    if rel is None:
        return None
    return root / str(rel)


def _as_pose(T: Any) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape == (3, 4):
        T = np.vstack([T, [0.0, 0.0, 0.0, 1.0]])
    return T


def read_megadepth_scene_info(npz_path: str | Path, data_root: str | Path,
                              min_overlap: float) -> list[PairRecord]:
    """Pairs of one MegaDepth-format scene-info file whose overlap is ``> min_overlap``.

    ``data_root`` is the folder the file's ``image_paths``/``depth_paths`` are relative to
    (LoFTR's ``*_DATA_ROOT``). Pairs that point at an image without path, K or pose raise an error.
    """
    npz_path, data_root = Path(npz_path), Path(data_root)
    info = load_scene_info(npz_path)
    stem = npz_path.stem
    out: list[PairRecord] = []
    for entry in info["pair_infos"]:
        (i, j), overlap = entry[0], float(entry[1])
        if not overlap > min_overlap:
            continue
        i, j = int(i), int(j)
        rows = []
        for k in (i, j):
            if info["image_paths"][k] is None or info["intrinsics"][k] is None or info["poses"][k] is None:
                raise MatchforgeError(f"pair ({i}, {j}) refers to image {k}, which has no path, K or pose",
                                      fix="rebuild the scene-info file", path=npz_path)
            rows.append((_join(data_root, info["image_paths"][k]), _join(data_root, info["depth_paths"][k]),
                         np.asarray(info["intrinsics"][k], dtype=np.float64).reshape(3, 3),
                         _as_pose(info["poses"][k])))
        (im0, d0, K0, T0), (im1, d1, K1, T1) = rows
        out.append(PairRecord(stem, im0, im1, d0, d1, K0, K1, T0, T1, T1 @ np.linalg.inv(T0), overlap))
    return out


def read_list(list_path: str | Path) -> list[str]:
    """Scene-info stems listed in a ``trainvaltest_list`` file (blank lines and '#' comments skipped)."""
    list_path = Path(list_path)
    if not list_path.is_file():
        raise MatchforgeError("list file not found", fix="check the dataset's index/trainvaltest_list folder",
                              path=list_path)
    stems = []
    for line in list_path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            stems.append(line.removesuffix(".npz"))
    return stems


def read_megadepth_list(npz_root: str | Path, list_path: str | Path, data_root: str | Path,
                        min_overlap: float) -> list[PairRecord]:
    """Pairs of every scene-info stem named in ``list_path`` (files ``npz_root/<stem>.npz``)."""
    npz_root = Path(npz_root)
    out: list[PairRecord] = []
    for stem in read_list(list_path):
        out += read_megadepth_scene_info(npz_root / f"{stem}.npz", data_root, min_overlap)
    return out


SCANNET_SIZE = (640, 480)  # the frame size ScanNet's intrinsics.npz (and LoFTR's loader) refer to


def read_scannet_index(index_npz: str | Path, intrinsics_npz: str | Path, data_root: str | Path,
                       pose_dir: str | Path | None = None, min_overlap: float | None = None,
                       group: str | None = None) -> list[PairRecord]:
    """Pairs of a ScanNet index in LoFTR's format: the ScanNet-1500 test index or a training index.

    Every index holds ``name`` (N, 4) = (scene, sub-scene, frame0, frame1). The test index
    (``assets/scannet_test_1500/test.npz``) adds ``rel_pose`` (N, 12), the row-major 3x4 ``T_0to1``
    (metres): then ``T0`` is the identity and ``T1 = T_0to1`` (the SuperGlue pairs-file convention).
    Training indices (``scannet_indices/scene_data/train/*.npz``) add ``score`` (overlap; pairs with
    ``score > min_overlap`` are kept when ``min_overlap`` is given) and no poses: ``T0``/``T1`` come from
    ``pose_dir/<scene>/pose/<frame>.txt`` (ScanNet camera->world 4x4, inverted here to world->camera;
    ``pose_dir`` defaults to ``data_root``, as upstream), ``T_0to1 = T1 @ inv(T0)``. ``pose_dir`` given
    with a test index recomputes its poses the same way (upstream's ``*_POSE_ROOT``).

    ``intrinsics.npz`` maps ``sceneXXXX_YY`` to its 3x3 K for 640x480 frames (``size0/1``). Images are
    ``data_root/<scene>/color/<frame>.jpg``, depths ``data_root/<scene>/depth/<frame>.png`` (uint16 mm).
    ``group`` names the records' ``scene`` (the sampler's unit; default: the ScanNet scene id).
    """
    index_npz, intrinsics_npz, data_root = Path(index_npz), Path(intrinsics_npz), Path(data_root)
    for p in (index_npz, intrinsics_npz):
        if not p.is_file():
            raise MatchforgeError("ScanNet index file not found", path=p,
                                  fix="point at LoFTR's assets/scannet_test_1500 or at the scannet_indices of its training data")
    data = load_array_file(index_npz, "ScanNet index")
    names = np.asarray(data["name"])
    rel = np.asarray(data["rel_pose"], dtype=np.float64) if "rel_pose" in data else None
    score = np.asarray(data["score"], dtype=np.float64) if "score" in data else np.full(len(names), np.nan)
    intrinsics = {k: np.asarray(v, dtype=np.float64).reshape(3, 3)
                  for k, v in load_array_file(intrinsics_npz, "ScanNet intrinsics").items()}
    if rel is None and pose_dir is None:
        pose_dir = data_root
    out: list[PairRecord] = []
    for n, (scene, sub, f0, f1) in enumerate(names.astype(np.int64)):
        if min_overlap is not None and np.isfinite(score[n]) and not score[n] > min_overlap:
            continue
        scene_id = f"scene{scene:04d}_{sub:02d}"
        if scene_id not in intrinsics:
            raise MatchforgeError(f"no intrinsics for {scene_id}", fix="use the intrinsics.npz that ships with the index",
                                  path=intrinsics_npz)
        K = intrinsics[scene_id]
        if pose_dir is None:
            T0, T1 = np.eye(4), _as_pose(rel[n].reshape(3, 4))
        else:
            T0, T1 = (_scannet_pose(Path(pose_dir) / scene_id / "pose" / f"{f}.txt") for f in (f0, f1))
        base = data_root / scene_id
        out.append(PairRecord(group or scene_id, base / "color" / f"{f0}.jpg", base / "color" / f"{f1}.jpg",
                              base / "depth" / f"{f0}.png", base / "depth" / f"{f1}.png",
                              K.copy(), K.copy(), T0, T1, T1 @ np.linalg.inv(T0), float(score[n]),
                              SCANNET_SIZE, SCANNET_SIZE))
    return out


def read_scannet_list(npz_root: str | Path, list_path: str | Path, intrinsics_npz: str | Path, data_root: str | Path,
                      pose_dir: str | Path | None = None, min_overlap: float | None = None) -> list[PairRecord]:
    """Pairs of every index named in ``list_path`` (files ``npz_root/<name>.npz``), each its own sampler group."""
    out: list[PairRecord] = []
    for stem in read_list(list_path):
        out += read_scannet_index(Path(npz_root) / f"{stem}.npz", intrinsics_npz, data_root, pose_dir, min_overlap, group=stem)
    return out


def _scannet_pose(path: Path) -> np.ndarray:
    """World->camera 4x4 from a ScanNet ``pose/<frame>.txt`` (camera->world)."""
    if not path.is_file():
        raise MatchforgeError("ScanNet pose file not found", fix="point pose_dir at the folder holding "
                              "<scene>/pose/<frame>.txt, or leave it unset to use rel_pose", path=path)
    cam_to_world = np.loadtxt(path, dtype=np.float64).reshape(4, 4)
    if not np.isfinite(cam_to_world).all():
        raise MatchforgeError("ScanNet pose is not finite (an invalid frame)", fix="drop this pair", path=path)
    return np.linalg.inv(cam_to_world)


def read_dataset(dataset_json: str | Path, split: str, min_overlap: float) -> list[PairRecord]:
    """Pairs of one split ('train', 'val' or 'test') of a dataset built by ``matchforge dataset``.

    ``dataset_json`` is ``results/datasets/<name>/dataset.json``; its paths are relative to its folder.
    """
    dataset_json = Path(dataset_json)
    if not dataset_json.is_file():
        raise MatchforgeError("dataset.json not found", fix="build the dataset with `matchforge dataset`",
                              path=dataset_json)
    meta = json.loads(dataset_json.read_text())
    if split not in meta["splits"]:
        raise MatchforgeError(f"unknown split '{split}' (have {sorted(meta['splits'])})",
                              fix="use train, val or test", path=dataset_json)
    base = dataset_json.parent
    s = meta["splits"][split]
    return read_megadepth_list(base / meta["npz_root"], base / s["list"], base / s["data_root"], min_overlap)
